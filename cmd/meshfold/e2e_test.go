package main

// End-to-end tests: real meshfold processes (the binary built from this
// package), real temporary folders, real libp2p connections on loopback.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfold/meshfold/node"
	"github.com/meshfold/meshfold/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// meshfoldBinary builds cmd/meshfold once per test run.
func meshfoldBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meshfold-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "meshfold")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// daemon is one meshfold process with its own home.
type daemon struct {
	t    *testing.T
	name string
	bin  string
	home string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func startDaemon(t *testing.T, name string) *daemon {
	t.Helper()
	d := &daemon{t: t, name: name, bin: meshfoldBinary(t), home: filepath.Join(t.TempDir(), name)}
	d.start()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("--- logs of %s:\n%s", d.name, d.logs.String())
		}
	})
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	os.Remove(filepath.Join(d.home, node.APIFile))
	d.logs = &bytes.Buffer{}
	d.cmd = exec.Command(d.bin, "run", "--home", d.home, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--log-format", "text", "--log-level", "info")
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	waitUntil(d.t, d.name+"'s control API", func() error {
		_, err := os.Stat(filepath.Join(d.home, node.APIFile))
		return err
	})
}

// stop ends the daemon gracefully; kill ends it as a crash would.
func (d *daemon) stop() { d.signal(syscall.SIGTERM) }
func (d *daemon) kill() { d.signal(syscall.SIGKILL) }

func (d *daemon) signal(sig syscall.Signal) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(sig)
	d.cmd.Wait()
	d.cmd = nil
}

// cli runs a meshfold command against this daemon's home.
func (d *daemon) cli(args ...string) string {
	d.t.Helper()
	out, err := d.try(args...)
	if err != nil {
		d.t.Fatalf("%s: meshfold %s: %v\n%s", d.name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func (d *daemon) try(args ...string) (string, error) {
	out, err := exec.Command(d.bin, append(args, "--home", d.home)...).CombinedOutput()
	return string(out), err
}

func (d *daemon) status() node.StatusReport {
	d.t.Helper()
	var r node.StatusReport
	if err := json.Unmarshal([]byte(d.cli("status", "--json")), &r); err != nil {
		d.t.Fatal(err)
	}
	return r
}

func waitUntil(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

// tree hashes every file under dir (the marker excluded), by relative path.
func tree(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if d.Name() == store.MarkerName {
				return filepath.SkipDir
			}
			if rel != "." {
				out[rel+"/"] = "dir"
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:8])
		return nil
	})
	return out, err
}

// sameTrees is nil when every dir holds the same tree.
func sameTrees(dirs ...string) error {
	first, err := tree(dirs[0])
	if err != nil {
		return err
	}
	for _, d := range dirs[1:] {
		other, err := tree(d)
		if err != nil {
			return err
		}
		if fmt.Sprint(first) != fmt.Sprint(other) {
			return fmt.Errorf("trees differ:\n%s: %v\n%s: %v", dirs[0], keys(first), d, keys(other))
		}
	}
	return nil
}

func keys(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func hasContent(dir, rel, want string) func() error {
	return func() error {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		if string(b) != want {
			return fmt.Errorf("%s holds %q", rel, b)
		}
		return nil
	}
}

// share makes owner's folder id joinable by joiner into dir with role.
func joinFolder(t *testing.T, inviter *daemon, id string, joiner *daemon, dir, role string) {
	t.Helper()
	key := inviter.cli("invite", id, "--role", role)
	joiner.cli("join", key, dir)
}

func folderID(t *testing.T, d *daemon) string {
	t.Helper()
	r := d.status()
	if len(r.Folders) != 1 {
		t.Fatalf("%s syncs %d folders", d.name, len(r.Folders))
	}
	return r.Folders[0].ID
}

var conflictName = regexp.MustCompile(`^doc\.sync-conflict-\d{8}-\d{6}-[A-Za-z0-9]+\.txt$`)

func TestE2EThreeDevicesSync(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	dirA, dirB, dirC := t.TempDir(), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	write(t, dirA, "doc.txt", "version 1")
	write(t, dirA, "photos/cat.jpg", strings.Repeat("meow", 100_000))
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	joinFolder(t, a, id, b, dirB, "editor")
	joinFolder(t, a, id, c, dirC, "editor")
	all := []string{dirA, dirB, dirC}
	waitUntil(t, "the initial sync", func() error { return sameTrees(all...) })

	// Changes made on any device reach the others: create, modify, rename, delete.
	write(t, dirB, "from-b/notes.txt", "written on b")
	waitUntil(t, "b's new file everywhere", func() error {
		if err := hasContent(dirC, "from-b/notes.txt", "written on b")(); err != nil {
			return err
		}
		return sameTrees(all...)
	})
	write(t, dirC, "doc.txt", "version 2 from c")
	waitUntil(t, "c's edit everywhere", func() error {
		if err := hasContent(dirA, "doc.txt", "version 2 from c")(); err != nil {
			return err
		}
		return sameTrees(all...)
	})
	if err := os.Rename(filepath.Join(dirA, "photos", "cat.jpg"), filepath.Join(dirA, "photos", "kitten.jpg")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a's rename everywhere", func() error {
		if _, err := os.Stat(filepath.Join(dirB, "photos", "kitten.jpg")); err != nil {
			return err
		}
		return sameTrees(all...)
	})
	os.Remove(filepath.Join(dirB, "from-b", "notes.txt"))
	waitUntil(t, "b's delete everywhere", func() error {
		if _, err := os.Stat(filepath.Join(dirA, "from-b", "notes.txt")); err == nil {
			return fmt.Errorf("still on a")
		}
		return sameTrees(all...)
	})

	// Concurrent edits: c edits while offline, a edits meanwhile; when c
	// comes back, one version keeps the name and exactly one conflict copy
	// exists on every device.
	c.stop()
	write(t, dirC, "doc.txt", "offline edit on c")
	write(t, dirA, "doc.txt", "edit on a while c is away")
	waitUntil(t, "a's edit on b", hasContent(dirB, "doc.txt", "edit on a while c is away"))
	c.start()
	waitUntil(t, "the conflict resolved everywhere", func() error {
		for _, d := range all {
			entries, err := os.ReadDir(d)
			if err != nil {
				return err
			}
			n := 0
			for _, e := range entries {
				if conflictName.MatchString(e.Name()) {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("%s has %d conflict copies", d, n)
			}
		}
		return sameTrees(all...)
	})
	for _, d := range all {
		copies, _ := filepath.Glob(filepath.Join(d, "doc.sync-conflict-*"))
		winner, _ := os.ReadFile(filepath.Join(d, "doc.txt"))
		loser, _ := os.ReadFile(copies[0])
		got := []string{string(winner), string(loser)}
		slices.Sort(got)
		if want := []string{"edit on a while c is away", "offline edit on c"}; !slices.Equal(got, want) {
			t.Fatalf("%s: name and conflict copy hold %q, want both edits %q", d, got, want)
		}
	}
}

func TestE2ERestartMidTransferResumes(t *testing.T) {
	a, b := startDaemon(t, "a"), startDaemon(t, "b")
	dirA, dirB := t.TempDir(), filepath.Join(t.TempDir(), "b")
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 192<<20)
	for i := 0; i < len(big); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			big[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.WriteFile(filepath.Join(dirA, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	write(t, dirA, "small.txt", "small")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	joinFolder(t, a, id, b, dirB, "viewer")
	// Kill b as soon as a download is under way (its temporary file exists).
	caught := false
	deadline := time.Now().Add(60 * time.Second)
	for !caught && time.Now().Before(deadline) {
		tmps, _ := filepath.Glob(filepath.Join(dirB, store.TempFilePrefix+"*"))
		if len(tmps) > 0 {
			b.kill()
			caught = true
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !caught {
		t.Fatal("never saw the download in progress; cannot test the restart")
	}
	if _, err := os.Stat(filepath.Join(dirB, "big.bin")); err == nil {
		t.Fatal("big.bin complete before the kill; the test did not interrupt the transfer")
	}
	b.start()
	waitUntil(t, "the resumed transfer", func() error { return sameTrees(dirA, dirB) })
	if tmps, _ := filepath.Glob(filepath.Join(dirB, store.TempFilePrefix+"*")); len(tmps) != 0 {
		t.Fatalf("unfinished downloads left behind: %v", tmps)
	}
}

// TestE2ETransitive: a and c never connect; both sync with b, and changes
// travel through b in both directions.
func TestE2ETransitive(t *testing.T) {
	a, b, c := startDaemon(t, "a"), startDaemon(t, "b"), startDaemon(t, "c")
	dirA, dirB, dirC := t.TempDir(), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	write(t, dirA, "start.txt", "from a")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	joinFolder(t, a, id, b, dirB, "manager")
	joinFolder(t, b, id, c, dirC, "editor") // c learns only b's addresses
	waitUntil(t, "a's file on c", hasContent(dirC, "start.txt", "from a"))
	write(t, dirC, "reply.txt", "from c")
	waitUntil(t, "c's file on a", hasContent(dirA, "reply.txt", "from c"))
	for _, pair := range [][2]*daemon{{a, c}, {c, a}} {
		other := pair[1].status().Device
		if slices.Contains(pair[0].status().Connected, other) {
			t.Fatalf("%s connected to %s directly; the test needs them apart", pair[0].name, pair[1].name)
		}
	}
}

// TestE2EReadOnlyMemberEditDoesNotSpread: a viewer's edit stays on the
// viewer's device as a conflict copy, the file there goes back to the shared
// version, and no other device ever sees the edit.
func TestE2EReadOnlyMemberEditDoesNotSpread(t *testing.T) {
	a, v := startDaemon(t, "a"), startDaemon(t, "viewer")
	dirA, dirV := t.TempDir(), filepath.Join(t.TempDir(), "v")
	write(t, dirA, "report.txt", "the shared report")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	joinFolder(t, a, id, v, dirV, "viewer")
	waitUntil(t, "the viewer's copy", hasContent(dirV, "report.txt", "the shared report"))

	write(t, dirV, "report.txt", "the viewer's edit")
	waitUntil(t, "the shared version restored on the viewer's device", func() error {
		if err := hasContent(dirV, "report.txt", "the shared report")(); err != nil {
			return err
		}
		copies, _ := filepath.Glob(filepath.Join(dirV, "report.sync-conflict-*.txt"))
		if len(copies) != 1 {
			return fmt.Errorf("%d conflict copies", len(copies))
		}
		b, _ := os.ReadFile(copies[0])
		if string(b) != "the viewer's edit" {
			return fmt.Errorf("the conflict copy holds %q", b)
		}
		return nil
	})
	// A later change by the owner reaches the viewer: by then the viewer's
	// edit and its copy would have reached the owner if they were shared.
	write(t, dirA, "later.txt", "after the edit")
	waitUntil(t, "the owner's later change on the viewer", hasContent(dirV, "later.txt", "after the edit"))
	waitUntil(t, "the viewer's state seen by the owner", func() error {
		for _, f := range a.status().Folders {
			if f.Peers == 1 {
				return nil
			}
		}
		return fmt.Errorf("owner does not see the viewer")
	})
	if err := hasContent(dirA, "report.txt", "the shared report")(); err != nil {
		t.Fatalf("the viewer's edit spread: %v", err)
	}
	if copies, _ := filepath.Glob(filepath.Join(dirA, "report.sync-conflict-*")); len(copies) != 0 {
		t.Fatalf("the viewer's conflict copy spread: %v", copies)
	}
	if f := v.status().Folders[0]; f.Unshared == 0 {
		t.Fatalf("the viewer's status does not report the unshared change: %+v", f)
	}
}
