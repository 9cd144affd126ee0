package main

// End-to-end tests of locks and share links with real processes.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if out, err := a.try("lock", filepath.Join(t.TempDir(), "elsewhere.txt")); err == nil || !strings.Contains(out, "not inside a synced folder") {
		t.Fatalf("lock outside every folder: %v %q", err, out)
	}
}
