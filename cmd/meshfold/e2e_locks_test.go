package main

// End-to-end tests of locks and share links with real processes.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfold/meshfold/node"
	"github.com/meshfold/meshfold/protocol/links"
)

// readOnly is nil when the file at p has no write bit.
func readOnly(p string) func() error {
	return func() error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o222 != 0 {
			return fmt.Errorf("%s has mode %v", p, st.Mode().Perm())
		}
		return nil
	}
}

func writable(p string) func() error {
	return func() error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o200 == 0 {
			return fmt.Errorf("%s has mode %v", p, st.Mode().Perm())
		}
		return nil
	}
}

// TestE2ELock: an editor's lock (granted by the owner's device as witness)
// makes the file read-only on the owner's device; the owner's edit there
// (root writes read-only files anyway) becomes a conflict copy, not an
// overwrite; the holder's edits still flow; unlock needs --force for someone
// else's lock, which the owner may use and an editor may not; unlocking gives
// the write bits back.
func TestE2ELock(t *testing.T) {
	a, b := startDaemon(t, "owner"), startDaemon(t, "editor")
	dirA, dirB := t.TempDir(), filepath.Join(t.TempDir(), "b")
	write(t, dirA, "doc.txt", "v1")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	joinFolder(t, a, id, b, dirB, "editor")
	waitUntil(t, "the editor's copy", hasContent(dirB, "doc.txt", "v1"))
	docA, docB := filepath.Join(dirA, "doc.txt"), filepath.Join(dirB, "doc.txt")

	out := b.cli("lock", docB, "--wait", "60s")
	if !strings.HasPrefix(out, "locked") || !strings.Contains(out, "by you") {
		t.Fatalf("lock said %q", out)
	}
	waitUntil(t, "the locked file read-only on the owner's device", readOnly(docA))
	if err := writable(docB)(); err != nil {
		t.Fatalf("the holder's own file: %v", err)
	}
	locks := a.status().Folders[0].Locks
	if len(locks) != 1 || locks[0].State != "granted" || locks[0].Mine || locks[0].Path != "doc.txt" || locks[0].Fence == 0 {
		t.Fatalf("owner's status locks %+v", locks)
	}
	if st := a.cli("status"); !strings.Contains(st, "locked   "+docA) {
		t.Fatalf("status does not show the lock:\n%s", st)
	}

	write(t, dirA, "doc.txt", "owner's edit under someone else's lock")
	var copyName string
	waitUntil(t, "the owner's edit kept as a conflict copy and v1 restored", func() error {
		if err := hasContent(dirA, "doc.txt", "v1")(); err != nil {
			return err
		}
		copies, _ := filepath.Glob(filepath.Join(dirA, "doc.sync-conflict-*.txt"))
		if len(copies) != 1 {
			return fmt.Errorf("%d conflict copies", len(copies))
		}
		copyName = filepath.Base(copies[0])
		return hasContent(dirA, copyName, "owner's edit under someone else's lock")()
	})
	waitUntil(t, "the restored file read-only again", readOnly(docA))
	waitUntil(t, "the conflict copy on the holder's device", hasContent(dirB, copyName, "owner's edit under someone else's lock"))
	if err := hasContent(dirB, "doc.txt", "v1")(); err != nil {
		t.Fatalf("the owner's edit overwrote the holder's file: %v", err)
	}

	write(t, dirB, "doc.txt", "holder's edit")
	waitUntil(t, "the holder's edit on the owner's device", hasContent(dirA, "doc.txt", "holder's edit"))
	waitUntil(t, "the updated file still read-only", readOnly(docA))

	if out, err := a.try("unlock", docA); err == nil || !strings.Contains(out, "--force") {
		t.Fatalf("unlock of someone else's lock without --force: %v %q", err, out)
	}
	if out := a.cli("unlock", docA, "--force"); !strings.HasPrefix(out, "Broke") {
		t.Fatalf("unlock --force said %q", out)
	}
	waitUntil(t, "write bits back after the break", writable(docA))
	if err := hasContent(dirA, "doc.txt", "holder's edit")(); err != nil {
		t.Fatal(err)
	}

	a.cli("lock", docA, "--wait", "60s")
	waitUntil(t, "the owner's lock read-only on the editor's device", readOnly(docB))
	out, err := b.try("unlock", docB, "--force")
	if err == nil || !strings.Contains(out, "only a manager") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("an editor broke a lock: %v %q", err, out)
	}
	if out := a.cli("unlock", docA); !strings.HasPrefix(out, "Released") {
		t.Fatalf("unlock said %q", out)
	}
	waitUntil(t, "write bits back on the editor's device", writable(docB))
	if out, err := a.try("lock", filepath.Join(t.TempDir(), "elsewhere.txt")); err == nil || !strings.Contains(out, "not inside any folder this device syncs") {
		t.Fatalf("lock outside every folder: %v %q", err, out)
	}
}

// runMF runs the meshfold binary with stdin, returning stdout and stderr apart.
func runMF(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(meshfoldBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return strings.TrimSpace(out.String()), strings.TrimSpace(errOut.String()), err
}

// refusedWith asserts a failed command printed one line containing want.
func refusedWith(t *testing.T, what string, stderr string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(stderr, want) || strings.Contains(stderr, "\n") {
		t.Fatalf("%s: err %v, stderr %q, want one line with %q", what, err, stderr, want)
	}
}

func linkToken(t *testing.T, d *daemon, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runMF(t, stdin, append(append([]string{"link", "create"}, args...), "--home", d.home)...)
	if err != nil || !strings.HasPrefix(out, "mflink1-") {
		t.Fatalf("link create %v: %v %q %q", args, err, out, errOut)
	}
	return out
}

func linkList(t *testing.T, d *daemon) []node.LinkInfo {
	t.Helper()
	var list []node.LinkInfo
	if err := json.Unmarshal([]byte(d.cli("link", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	return list
}

// TestE2EShareLink: a link with a password and a download limit (wrong
// password refused, limit reached refused), suspended / resumed / revoked,
// expired, tampered, rate-limited; a file outside every folder shared through
// "My shares"; and a download served by another member's device while the
// link's creator is offline.
func TestE2EShareLink(t *testing.T) {
	a, b := startDaemon(t, "owner"), startDaemon(t, "member")
	dirA, dirB := t.TempDir(), filepath.Join(t.TempDir(), "b")
	write(t, dirA, "report.txt", "the quarterly report")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	joinFolder(t, a, id, b, dirB, "editor")
	waitUntil(t, "the member's copy", hasContent(dirB, "report.txt", "the quarterly report"))
	report := filepath.Join(dirA, "report.txt")
	dl := t.TempDir()

	tok := linkToken(t, a, "s3cret\n", report, "--password-stdin", "--max-downloads", "2")
	_, errOut, err := runMF(t, "wrong\n", "get", tok, filepath.Join(dl, "x"), "--password-stdin")
	refusedWith(t, "wrong password", errOut, err, "wrong password")
	for i := 1; i <= 2; i++ {
		dest := filepath.Join(dl, fmt.Sprintf("copy%d.txt", i))
		if out, errOut, err := runMF(t, "s3cret\n", "get", tok, dest, "--password-stdin"); err != nil || !strings.HasPrefix(out, "Saved") {
			t.Fatalf("download %d: %v %q %q", i, err, out, errOut)
		}
		if err := hasContent(dl, filepath.Base(dest), "the quarterly report")(); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, err = runMF(t, "s3cret\n", "get", tok, filepath.Join(dl, "copy3.txt"), "--password-stdin")
	refusedWith(t, "third download", errOut, err, "download limit")
	if _, err := os.Stat(filepath.Join(dl, "copy3.txt")); err == nil {
		t.Fatal("a refused download left a file")
	}

	open := linkToken(t, a, "", report)
	list := linkList(t, a)
	if len(list) != 2 {
		t.Fatalf("link list: %+v", list)
	}
	for _, li := range list {
		if li.DownloadLimit == 2 && (li.State != "used up" || li.Downloads != 2) {
			t.Fatalf("the used-up link is listed as %+v", li)
		}
	}
	a.cli("link", "suspend", open)
	_, errOut, err = runMF(t, "", "get", open, filepath.Join(dl, "s.txt"))
	refusedWith(t, "suspended link", errOut, err, "suspended")
	a.cli("link", "resume", open)
	if _, errOut, err := runMF(t, "", "get", open, filepath.Join(dl, "s.txt")); err != nil {
		t.Fatalf("resumed link: %v %q", err, errOut)
	}
	a.cli("link", "revoke", open)
	_, errOut, err = runMF(t, "", "get", open, filepath.Join(dl, "r.txt"))
	refusedWith(t, "revoked link", errOut, err, "revoked")

	soon := linkToken(t, a, "", report, "--expires", "1s")
	waitUntil(t, "the link to expire", func() error {
		_, errOut, err := runMF(t, "", "get", soon, filepath.Join(dl, "e.txt"))
		if err == nil {
			os.Remove(filepath.Join(dl, "e.txt"))
			return fmt.Errorf("still served")
		}
		if !strings.Contains(errOut, "expired") {
			return fmt.Errorf("refused otherwise: %s", errOut)
		}
		return nil
	})
	tampered := []byte(soon)
	tampered[len(tampered)/2] ^= 1
	_, errOut, err = runMF(t, "", "get", string(tampered))
	refusedWith(t, "tampered token", errOut, err, "not a valid link token")

	guarded := linkToken(t, a, "right\n", report, "--password-stdin")
	for i := 0; i < 5; i++ {
		_, errOut, err := runMF(t, "guess\n", "get", guarded, filepath.Join(dl, "g.txt"), "--password-stdin")
		refusedWith(t, "a guessed password", errOut, err, "wrong password")
	}
	_, errOut, err = runMF(t, "right\n", "get", guarded, filepath.Join(dl, "g.txt"), "--password-stdin")
	refusedWith(t, "after five wrong passwords", errOut, err, "too many wrong passwords")

	outside := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(outside, []byte("not in any folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	mine := linkToken(t, a, "", outside)
	if err := hasContent(filepath.Join(a.home, "My shares"), "notes.txt", "not in any folder")(); err != nil {
		t.Fatalf("My shares: %v", err)
	}
	if _, errOut, err := runMF(t, "", "get", mine, dl); err != nil {
		t.Fatalf("My shares link: %v %q", err, errOut)
	}
	if err := hasContent(dl, "notes.txt", "not in any folder")(); err != nil {
		t.Fatal(err)
	}

	// The member's device serves the link while the creator is offline.
	waitUntil(t, "the owner connected to the member", func() error {
		for _, f := range a.status().Folders {
			if f.ID == id && f.Peers > 0 {
				return nil
			}
		}
		return fmt.Errorf("no peer yet")
	})
	var created node.LinkInfo
	if err := json.Unmarshal([]byte(a.cli("link", "create", report, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	served, servedID := created.Token, created.ID
	if tok, err := links.ParseToken(served); err != nil || len(tok.Addrs) != 2 {
		t.Fatalf("the token names %d devices (%v), want the creator's and the member's", len(tok.Addrs), err)
	}
	waitUntil(t, "the link on the member's device", func() error {
		var all []node.LinkInfo
		if err := json.Unmarshal([]byte(b.cli("link", "list", "--all", "--json")), &all); err != nil {
			return err
		}
		for _, li := range all {
			if li.ID == servedID && !li.Mine {
				return nil
			}
		}
		return fmt.Errorf("the member knows %d links", len(all))
	})
	a.stop()
	if _, errOut, err := runMF(t, "", "get", served, filepath.Join(dl, "via-member.txt")); err != nil {
		t.Fatalf("download with the creator offline: %v %q", err, errOut)
	}
	if err := hasContent(dl, "via-member.txt", "the quarterly report")(); err != nil {
		t.Fatal(err)
	}
}
