package main

// End-to-end tests of the daemon's own flows with real processes: the global
// pause, folder list/pause/resume/remove, per-path status, the event stream,
// the config file, metrics, and bad input.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfold/meshfold/node"
)

// failsWith runs a meshfold command that must fail with exit code code and a
// one-line message containing want.
func failsWith(t *testing.T, d *daemon, code int, want string, args ...string) {
	t.Helper()
	out, err := d.try(args...)
	checkFailure(t, strings.Join(args, " "), out, err, code, want)
}

func checkFailure(t *testing.T, what, out string, err error, code int, want string) {
	t.Helper()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != code {
		t.Fatalf("meshfold %s: %v, want exit code %d\n%s", what, err, code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[0], want) {
		t.Fatalf("meshfold %s: message %q, want one containing %q", what, lines[0], want)
	}
	if len(lines) > 1 && !(code == exitUsage && len(lines) == 2 && strings.HasPrefix(lines[1], "Run 'meshfold --help'")) {
		t.Fatalf("meshfold %s: the message is not one line:\n%s", what, out)
	}
}

func folderOf(t *testing.T, d *daemon, id string) node.FolderReport {
	t.Helper()
	for _, f := range d.status().Folders {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("%s does not sync %s", d.name, id)
	return node.FolderReport{}
}

// TestE2EPauseAllResumeAll: a change made while b is paused (on a, and on b
// itself) crosses only after 'resume --all'; the pause survives b's restart.
// c, which never pauses, is the witness that a's change did travel.
func TestE2EPauseAllResumeAll(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	dirA, dirB, dirC := t.TempDir(), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	write(t, dirA, "first.txt", "first")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	joinFolder(t, a, id, b, dirB, "editor")
	joinFolder(t, a, id, c, dirC, "editor")
	waitUntil(t, "the first file on b", hasContent(dirB, "first.txt", "first"))

	if out := b.cli("pause", "--all"); !strings.Contains(out, "All folders paused") {
		t.Fatalf("pause --all said %q", out)
	}
	b.stop()
	b.start()
	if r := b.status(); !r.PausedAll || r.Folders[0].State != "paused" {
		t.Fatalf("after a restart b is not paused: %+v", r)
	}
	write(t, dirA, "from-a.txt", "made while b is paused")
	write(t, dirB, "from-b.txt", "made on b while paused")
	waitUntil(t, "a's change on c", hasContent(dirC, "from-a.txt", "made while b is paused"))
	if _, err := os.Stat(filepath.Join(dirB, "from-a.txt")); err == nil {
		t.Fatal("a's change reached b while b was paused")
	}
	if _, err := os.Stat(filepath.Join(dirA, "from-b.txt")); err == nil {
		t.Fatal("b's change left b while b was paused")
	}
	b.cli("resume", "--all")
	waitUntil(t, "a's change on b after resume", hasContent(dirB, "from-a.txt", "made while b is paused"))
	waitUntil(t, "b's change on a after resume", hasContent(dirA, "from-b.txt", "made on b while paused"))
	if r := b.status(); r.PausedAll || r.Folders[0].Paused {
		t.Fatalf("still paused after resume --all: %+v", r)
	}
}

// TestE2EFolderCommands: list, pause/resume by path and ID suffix, per-path
// status, the event stream, and remove keeping the files.
func TestE2EFolderCommands(t *testing.T) {
	a := startDaemon(t, "a")
	dir := t.TempDir()
	write(t, dir, "docs/report.txt", "the report")

	// status --watch --json: a snapshot first, then the new folder.
	watch := exec.Command(a.bin, "status", "--watch", "--json", "--home", a.home)
	var watchErr bytes.Buffer
	watch.Stderr = &watchErr
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	watchDone := false
	defer func() {
		if !watchDone {
			watch.Process.Kill()
			watch.Wait()
		}
	}()
	events := make(chan node.Event, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e node.Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
		close(events)
	}()
	waitEvent := func(what string, match func(node.Event) bool) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("status --watch ended before %s", what)
				}
				if match(e) {
					return
				}
			case <-timeout:
				t.Fatalf("status --watch never showed %s", what)
			}
		}
	}
	waitEvent("the snapshot", func(e node.Event) bool { return e.Type == node.EventSnapshot && e.Snapshot != nil })

	a.cli("folder", "add", dir)
	id := folderID(t, a)
	waitEvent("the new folder", func(e node.Event) bool { return e.Type == node.EventFolderAdded && e.Folder.ID == id })

	var list []node.FolderReport
	if err := json.Unmarshal([]byte(a.cli("folder", "list", "--json")), &list); err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("folder list --json = %v, %v", list, err)
	}
	if out := a.cli("folder", "list"); !strings.Contains(out, id) || !strings.Contains(out, dir) {
		t.Fatalf("folder list = %q", out)
	}
	waitUntil(t, "the report synced", func() error {
		var p node.PathReport
		if err := json.Unmarshal([]byte(a.cli("status", filepath.Join(dir, "docs", "report.txt"), "--json")), &p); err != nil {
			return err
		}
		if p.State != node.PathSynced || p.Path != "docs/report.txt" || p.Folder != id {
			return fmt.Errorf("path status %+v", p)
		}
		return nil
	})

	a.cli("pause", dir) // by local directory
	waitEvent("the pause", func(e node.Event) bool { return e.Type == node.EventFolderState && e.Folder.State == "paused" })
	if out := a.cli("status", filepath.Join(dir, "docs")); !strings.HasPrefix(out, "paused") {
		t.Fatalf("status of a path in a paused folder = %q", out)
	}
	if out := a.cli("status"); !strings.Contains(out, "paused") || strings.Contains(out, "\033[") {
		t.Fatalf("status (piped: no colour) = %q", out)
	}
	// On a terminal (script gives the command a pty): colour and symbols,
	// none with NO_COLOR; the invitation key comes with a QR code.
	if out := onTerminal(t, a, "NO_COLOR=", "status"); !strings.Contains(out, "\033[90m‖ paused") {
		t.Fatalf("status on a terminal = %q", out)
	}
	if out := onTerminal(t, a, "NO_COLOR=1", "status"); strings.Contains(out, "\033[") || !strings.Contains(out, "paused") {
		t.Fatalf("status on a terminal with NO_COLOR = %q", out)
	}
	a.cli("resume", id[len(id)-8:]) // by ID suffix
	if f := folderOf(t, a, id); f.Paused {
		t.Fatal("still paused after resume")
	}

	qr := onTerminal(t, a, "", "invite", id)
	if !strings.Contains(qr, "mfinv1-") || !strings.Contains(qr, "█") {
		t.Fatalf("invite on a terminal shows no QR code:\n%s", qr)
	}
	if piped := a.cli("invite", id); strings.Contains(piped, "█") || strings.Count(piped, "\n") != 0 {
		t.Fatalf("invite into a pipe printed more than the key:\n%s", piped)
	}
	if js := a.cli("invite", id, "--json"); strings.Contains(js, "█") {
		t.Fatal("invite --json printed a QR code")
	}

	// Bad names and paths.
	failsWith(t, a, exitFailure, "unknown folder", "pause", "no-such-folder")
	failsWith(t, a, exitFailure, "unknown folder", "folder", "remove", "zzzzzz")
	failsWith(t, a, exitFailure, "not inside any folder", "status", t.TempDir())
	failsWith(t, a, exitUsage, "needs a folder or --all", "pause")
	failsWith(t, a, exitUsage, "needs a folder or --all", "resume", id, "--all")

	out := a.cli("folder", "remove", id)
	if !strings.Contains(out, "files stay on disk") {
		t.Fatalf("folder remove said %q", out)
	}
	if err := hasContent(dir, "docs/report.txt", "the report")(); err != nil {
		t.Fatalf("remove touched the files: %v", err)
	}
	if r := a.status(); len(r.Folders) != 0 {
		t.Fatalf("still synced after remove: %+v", r.Folders)
	}
	raw, _ := os.ReadFile(filepath.Join(a.home, node.FoldersFile))
	if strings.Contains(string(raw), id) {
		t.Fatalf("%s still names the folder", node.FoldersFile)
	}
	waitEvent("the removal", func(e node.Event) bool { return e.Type == node.EventFolderRemoved && e.Folder.ID == id })
	// The directory can be shared again, as a new folder.
	a.cli("folder", "add", dir)
	if newID := folderID(t, a); newID == id {
		t.Fatal("re-adding gave the old folder ID")
	}

	// When the daemon stops, status --watch ends with a one-line error.
	a.stop()
	for range events { // drain until the watcher's output closes
	}
	err = watch.Wait()
	watchDone = true
	checkFailure(t, "status --watch after the daemon stopped", watchErr.String(), err, exitFailure, "the daemon closed the event stream")
}

// freePort finds a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startConfigured starts a daemon with no flag but --home (and extra args):
// everything else comes from the home's config file.
func startConfigured(t *testing.T, name, home string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, name: name, bin: meshfoldBinary(t), home: home, logs: &bytes.Buffer{}}
	d.cmd = exec.Command(d.bin, append([]string{"run", "--home", home}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("--- logs of %s:\n%s", name, d.logs.String())
		}
	})
	waitUntil(t, name+"'s control API", func() error {
		_, err := os.Stat(filepath.Join(home, node.APIFile))
		return err
	})
	return d
}

// TestE2EConfigFile: the config file sets the listen and API addresses and
// shares a folder; metrics scrape on that API address without a token; a
// fresh home gets the commented default file; a bad key stops the daemon.
func TestE2EConfigFile(t *testing.T) {
	home := filepath.Join(t.TempDir(), "conf")
	dir := filepath.Join(t.TempDir(), "shared")
	os.MkdirAll(home, 0o700)
	p2pPort, apiPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf("listen = [\"/ip4/127.0.0.1/tcp/%d\"]\napi = \"127.0.0.1:%d\"\nmdns = false\nfolders = [%q]\nlog_format = \"json\"\n", p2pPort, apiPort, dir)
	if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startConfigured(t, "conf", home)
	var info node.APIInfo
	raw, _ := os.ReadFile(filepath.Join(home, node.APIFile))
	if err := json.Unmarshal(raw, &info); err != nil || info.Addr != fmt.Sprintf("127.0.0.1:%d", apiPort) {
		t.Fatalf("API at %q (%v), want the config's port %d", info.Addr, err, apiPort)
	}
	r := d.status()
	if len(r.Addrs) != 1 || r.Addrs[0] != fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2pPort) {
		t.Fatalf("listening on %v, want only the config's address", r.Addrs)
	}
	if len(r.Folders) != 1 || r.Folders[0].Root != dir {
		t.Fatalf("folders %+v, want the config's %s", r.Folders, dir)
	}
	resp, err := http.Get("http://" + info.Addr + node.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "meshfold_folders 1") {
		t.Fatalf("metrics: %s\n%.500s", resp.Status, body)
	}

	// A flag overrides the file.
	d.stop()
	flagPort := freePort(t)
	os.Remove(filepath.Join(home, node.APIFile))
	d = startConfigured(t, "conf2", home, "--api", fmt.Sprintf("127.0.0.1:%d", flagPort))
	raw, _ = os.ReadFile(filepath.Join(home, node.APIFile))
	json.Unmarshal(raw, &info)
	if info.Addr != fmt.Sprintf("127.0.0.1:%d", flagPort) {
		t.Fatalf("API at %s, want the --api flag's port %d", info.Addr, flagPort)
	}
	d.stop()

	// A fresh home gets the commented default file.
	fresh := startDaemon(t, "fresh")
	got, err := os.ReadFile(filepath.Join(fresh.home, ConfigFile))
	if err != nil || string(got) != defaultConfigText() {
		t.Fatalf("fresh home config: %v\n%s", err, got)
	}

	// A bad key stops the daemon with a one-line error naming it.
	bad := filepath.Join(t.TempDir(), "bad")
	os.MkdirAll(bad, 0o700)
	os.WriteFile(filepath.Join(bad, ConfigFile), []byte("mdns = \"yes\"\n"), 0o600)
	out, err := exec.Command(meshfoldBinary(t), "run", "--home", bad).CombinedOutput()
	checkFailure(t, "run with a bad config", string(out), err, exitUsage, `key "mdns": want true or false`)
	os.WriteFile(filepath.Join(bad, ConfigFile), []byte("listen_addrs = []\n"), 0o600)
	out, err = exec.Command(meshfoldBinary(t), "run", "--home", bad).CombinedOutput()
	checkFailure(t, "run with an unknown key", string(out), err, exitUsage, `unknown key "listen_addrs"`)
}

// TestE2EBadInput: a second daemon on a home, a home that cannot be created,
// malformed, tampered, expired and revoked invitation keys.
func TestE2EBadInput(t *testing.T) {
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	bin := meshfoldBinary(t)

	out, err := exec.Command(bin, "run", "--home", a.home, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns").CombinedOutput()
	checkFailure(t, "run on a home in use", string(out), err, exitFailure, "in use by another meshfold process")
	if _, err := os.Stat(filepath.Join(a.home, node.APIFile)); err != nil {
		t.Fatal("the refused second daemon removed the first one's API file")
	}
	a.cli("status") // the first daemon still answers

	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, []byte("x"), 0o600)
	out, err = exec.Command(bin, "run", "--home", filepath.Join(file, "home"), "--no-mdns").CombinedOutput()
	checkFailure(t, "run with a home under a file", string(out), err, exitFailure, "the node home is not usable")

	out, err = exec.Command(bin, "status", "--home", filepath.Join(t.TempDir(), "none")).CombinedOutput()
	checkFailure(t, "status with no daemon", string(out), err, exitFailure, "no meshfold daemon is running")

	dirA := t.TempDir()
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	failsWith(t, b, exitFailure, "not a valid invitation key", "join", "mfinv1-nonsense", t.TempDir())
	key := a.cli("invite", id, "--role", "viewer")
	mid := len(key) / 2
	flip := map[byte]byte{'a': 'b', 'b': 'a'}[key[mid]]
	if flip == 0 {
		flip = 'a'
	}
	tampered := key[:mid] + string(flip) + key[mid+1:]
	failsWith(t, b, exitFailure, "not a valid invitation key", "join", tampered, t.TempDir())

	revoked := a.cli("invite", id, "--role", "editor")
	a.cli("invite", "revoke", revoked)
	failsWith(t, b, exitFailure, "unknown, revoked or used up", "join", revoked, t.TempDir())
	failsWith(t, a, exitFailure, "not a valid invitation key", "invite", "revoke", "mfinv1-zz")

	made := time.Now()
	expiring := a.cli("invite", id, "--role", "editor", "--expires", "1s")
	waitUntil(t, "the invitation's expiry", func() error {
		if time.Since(made) <= 1500*time.Millisecond {
			return errors.New("not expired yet")
		}
		return nil
	})
	failsWith(t, b, exitFailure, "expired", "join", expiring, t.TempDir())
	failsWith(t, a, exitFailure, "unknown folder", "invite", "nope", "--role", "viewer")

	// The good key still works after all that.
	dirB := filepath.Join(t.TempDir(), "b")
	b.cli("join", key, dirB)
	if r := b.status(); len(r.Folders) != 1 {
		t.Fatalf("b after joining: %+v", r.Folders)
	}
}

// onTerminal runs a meshfold command with a pseudo-terminal as its output
// (util-linux script), with env ("NAME=value", may be "") set.
func onTerminal(t *testing.T, d *daemon, env string, args ...string) string {
	t.Helper()
	quoted := []string{d.bin}
	for _, a := range append(args, "--home", d.home) {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	cmd := exec.Command("script", "-qec", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=xterm")
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script %v: %v\n%s", args, err, out)
	}
	return string(out)
}
