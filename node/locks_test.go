package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/protocol/index"
	"github.com/meshfold/meshfold/store"
)

// TestApplyKeepCopyLeavesThePath: a version that lost to a lock is written
// beside its path under the copy name; the path and its index record stay.
func TestApplyKeepCopyLeavesThePath(t *testing.T) {
	e := newApplyEnv(t)
	os.WriteFile(filepath.Join(e.dir, "doc.txt"), []byte("the holder's"), 0o644)
	e.scan()
	before, _, _ := e.idx.Get("doc.txt")
	intruder := []byte("written against the lock")
	e.fetcher.add(intruder)
	v := remoteVersion(t, "doc.txt", intruder, "B", 3)
	name := plan.ConflictName("doc.txt", v.ModTime, "B")
	res := e.apply(plan.Action{Op: plan.KeepCopy, Want: v, CopyName: name})
	if res.Applied != 1 || len(res.Skipped) != 0 {
		t.Fatalf("result %+v", res)
	}
	if got := e.read(name); string(got) != string(intruder) {
		t.Fatalf("copy holds %q", got)
	}
	if got := e.read("doc.txt"); string(got) != "the holder's" {
		t.Fatalf("the locked path was overwritten: %q", got)
	}
	after, _, _ := e.idx.Get("doc.txt")
	if after.Seq != before.Seq || after.Author != before.Author {
		t.Fatalf("the path's record changed: %+v", after)
	}
	if _, ok, _ := e.idx.Get(name); ok {
		t.Fatal("the copy was recorded before a scan found it")
	}
	// Applying the same action again keeps the one copy.
	if res := e.apply(plan.Action{Op: plan.KeepCopy, Want: v, CopyName: name}); len(res.Skipped) != 0 {
		t.Fatalf("second apply %+v", res)
	}
	if copies, _ := filepath.Glob(filepath.Join(e.dir, "doc.sync-conflict-*")); len(copies) != 1 {
		t.Fatalf("copies %v", copies)
	}
}

// TestLockedFileIsReadOnlyAndForeignVersionBecomesCopy: real nodes. a (owner,
// so its device is the witness) locks doc.txt: b's file turns read-only, and
// b's scans do not read the chmod as a change. A version of doc.txt that b
// signs anyway under the lock (a client ignoring the lock) reaches a as a
// conflict copy beside the file, never replacing it. Releasing gives b its
// write bits back.
func TestLockedFileIsReadOnlyAndForeignVersionBecomesCopy(t *testing.T) {
	a := testNode(t, "a")
	b := testNode(t, "b", a.AddrInfo())
	dirA, dirB := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dirA, "doc.txt"), []byte("original"), 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	fb := share(t, a, fa, b, crdt.RoleEditor, dirB)
	eventually(t, "doc.txt on b", fileIs(dirB, "doc.txt", []byte("original")))
	os.WriteFile(filepath.Join(dirB, "scratch.txt"), []byte("the intruder's bytes"), 0o644)
	eventually(t, "scratch.txt on a", fileIs(dirA, "scratch.txt", []byte("the intruder's bytes")))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	li, err := a.Lock(ctx, filepath.Join(dirA, "doc.txt"), 0)
	if err != nil || li.State != LockGranted || !li.Mine || li.Fence != 1 || li.Quorum != 1 {
		t.Fatalf("lock %+v %v", li, err)
	}
	eventually(t, "the grant on b", func() error {
		if l := fb.lockInfos("doc.txt"); len(l) != 1 || l[0].State != LockGranted || l[0].Mine {
			return fmt.Errorf("b sees %+v", l)
		}
		return nil
	})
	if _, err := b.Lock(ctx, filepath.Join(dirB, "doc.txt"), 0); !errors.Is(err, ErrLockedByOther) {
		t.Fatalf("b locking a held file: %v", err)
	}
	docB := filepath.Join(dirB, "doc.txt")
	eventually(t, "doc.txt read-only on b", func() error {
		st, err := os.Stat(docB)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o222 != 0 {
			return fmt.Errorf("mode %v", st.Mode().Perm())
		}
		return nil
	})
	seqBefore, _ := fb.idx.Sequence(store.DeviceID(b.ID()))
	if _, err := store.Scan(context.Background(), store.ScanConfig{Root: dirB, Device: store.DeviceID(b.ID()), LocalMode: fb.localMode}, fb.idx); err != nil {
		t.Fatal(err)
	}
	if seq, _ := fb.idx.Sequence(store.DeviceID(b.ID())); seq != seqBefore {
		t.Fatalf("the lock's chmod was recorded as b's change (seq %d -> %d)", seqBefore, seq)
	}

	// b signs a version of doc.txt under the lock, bypassing its own guard.
	fb.diskMu.Lock()
	doc, _, _ := fb.idx.Get("doc.txt")
	scratch, _, _ := fb.idx.Get("scratch.txt")
	self := store.DeviceID(b.ID())
	seq, _ := fb.idx.Sequence(self)
	forged := doc
	forged.Chunks, forged.Size, forged.ModTime = scratch.Chunks, scratch.Size, time.Now().UnixNano()
	forged.Author, forged.Seq, forged.Version = self, seq+1, doc.Version.Update(self, seq+1)
	fb.logMu.Lock()
	forged.LogHeads = fb.rlog.Heads()
	fb.logMu.Unlock()
	if forged.Signature, err = index.SignVersion(fb.id, forged, b.key); err != nil {
		t.Fatal(err)
	}
	batch := fb.idx.Batch()
	batch.Put(forged)
	if err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	fb.diskMu.Unlock()
	fb.wake()

	copyName := plan.ConflictName("doc.txt", forged.ModTime, ShortID(b.ID()))
	eventually(t, "the forged version kept as a copy on a", fileIs(dirA, copyName, []byte("the intruder's bytes")))
	if err := fileIs(dirA, "doc.txt", []byte("original"))(); err != nil {
		t.Fatalf("the locked file was overwritten on the holder's device: %v", err)
	}

	if _, err := a.Unlock(filepath.Join(dirA, "doc.txt"), false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b's write bits back", func() error {
		st, err := os.Stat(docB)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o200 == 0 {
			return fmt.Errorf("mode %v", st.Mode().Perm())
		}
		return nil
	})
}

// TestLockRefusals: paths outside every folder, directories, leases too
// long, unlocking with no lock, and an editor breaking an owner's lock.
func TestLockRefusals(t *testing.T) {
	a := testNode(t, "a")
	b := testNode(t, "b", a.AddrInfo())
	dirA, dirB := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dirA, "doc.txt"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dirA, "sub"), 0o755)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	share(t, a, fa, b, crdt.RoleEditor, dirB)
	ctx := context.Background()
	cases := map[string]struct {
		path  string
		lease time.Duration
		want  string
	}{
		"outside":    {filepath.Join(t.TempDir(), "x"), 0, "not inside any folder this device syncs"},
		"the root":   {dirA, 0, "not inside any folder this device syncs"},
		"the marker": {filepath.Join(dirA, store.MarkerName, "x"), 0, "not a file meshfold syncs"},
		"directory":  {filepath.Join(dirA, "sub"), 0, "only an existing file"},
		"long lease": {filepath.Join(dirA, "doc.txt"), 9 * time.Hour, "at most 8 hours"},
	}
	for name, c := range cases {
		if _, err := a.Lock(ctx, c.path, c.lease); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := a.Unlock(filepath.Join(dirA, "doc.txt"), false); err == nil || !strings.Contains(err.Error(), "no lock") {
		t.Errorf("unlock without a lock: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if li, err := a.Lock(wctx, filepath.Join(dirA, "doc.txt"), time.Hour); err != nil || li.State != LockGranted || li.LeaseSecs != 3600 {
		t.Fatalf("lock %+v %v", li, err)
	}
	fb := b.mustFolder(t)
	eventually(t, "the lock on b", func() error {
		if len(fb.lockInfos("doc.txt")) != 1 {
			return fmt.Errorf("b sees no lock")
		}
		return nil
	})
	if _, err := b.Unlock(filepath.Join(dirB, "doc.txt"), false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("editor unlocking the owner's lock: %v", err)
	}
	if _, err := b.Unlock(filepath.Join(dirB, "doc.txt"), true); err == nil || !strings.Contains(err.Error(), "only a manager") {
		t.Errorf("editor breaking the owner's lock: %v", err)
	}
	// Share links are for those who manage access.
	eventually(t, "doc.txt on b", fileIs(dirB, "doc.txt", []byte("x")))
	if _, err := b.CreateLink(ctx, filepath.Join(dirB, "doc.txt"), LinkOptions{}); !errors.Is(err, ErrMayNotLink) {
		t.Errorf("an editor created a share link: %v", err)
	}
}

func (n *Node) mustFolder(t *testing.T) *Folder {
	t.Helper()
	fs := n.folderList()
	if len(fs) != 1 {
		t.Fatalf("%d folders", len(fs))
	}
	return fs[0]
}

// openNode opens and starts a node on home; the caller closes it.
func openNode(t *testing.T, home string, bootstrap ...peer.AddrInfo) *Node {
	t.Helper()
	n, err := Open(Config{Home: home, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: bootstrap, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLockEndedWhileDownAndPending: a lock that ends while b's daemon is down
// gives b its write bits back after the restart, and the restart's scan does
// not take the missing bits for b's change (no version, no conflict copy).
// With the only witness offline, a request stays pending.
func TestLockEndedWhileDownAndPending(t *testing.T) {
	a := openNode(t, filepath.Join(t.TempDir(), "a"))
	aClosed := false
	defer func() {
		if !aClosed {
			a.Close()
		}
	}()
	homeB := filepath.Join(t.TempDir(), "b")
	b := openNode(t, homeB, a.AddrInfo())
	dirA, dirB := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dirA, "doc.txt"), []byte("original"), 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	share(t, a, fa, b, crdt.RoleEditor, dirB)
	eventually(t, "doc.txt on b", fileIs(dirB, "doc.txt", []byte("original")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Lock(ctx, filepath.Join(dirA, "doc.txt"), 0); err != nil {
		t.Fatal(err)
	}
	docB := filepath.Join(dirB, "doc.txt")
	mode := func(want os.FileMode) func() error {
		return func() error {
			st, err := os.Stat(docB)
			if err != nil {
				return err
			}
			if st.Mode().Perm() != want {
				return fmt.Errorf("mode %v, want %v", st.Mode().Perm(), want)
			}
			return nil
		}
	}
	eventually(t, "doc.txt read-only on b", mode(0o444))
	b.Close()
	if _, err := a.Unlock(filepath.Join(dirA, "doc.txt"), false); err != nil {
		t.Fatal(err)
	}
	b = openNode(t, homeB, a.AddrInfo())
	defer b.Close()
	eventually(t, "b's write bits back after the restart", mode(0o644))
	fb := b.mustFolder(t)
	if seq, _ := fb.idx.Sequence(store.DeviceID(b.ID())); seq != 0 {
		t.Fatalf("b recorded %d versions of its own", seq)
	}
	if copies, _ := filepath.Glob(filepath.Join(dirB, "*sync-conflict*")); len(copies) != 0 {
		t.Fatalf("conflict copies %v", copies)
	}

	a.Close()
	aClosed = true
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	li, err := b.Lock(short, docB, 0)
	if err != nil || li.State != LockPending || !li.Mine || li.Acks != 0 || li.Quorum != 1 {
		t.Fatalf("lock with the witness offline: %+v %v", li, err)
	}
	if err := writable(docB); err != nil {
		t.Fatal(err)
	}
}

func writable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o200 == 0 {
		return fmt.Errorf("%s is read-only", p)
	}
	return nil
}

// TestLeaseRenewedWhileHolderRuns: a witness keeps a lock whose holder's
// device it heard from within the lease, and expires it (LockExpire, a
// majority of one here) once the holder has been quiet for longer.
func TestLeaseRenewedWhileHolderRuns(t *testing.T) {
	a := testNode(t, "a")
	b := openNode(t, filepath.Join(t.TempDir(), "b"), a.AddrInfo())
	bClosed := false
	defer func() {
		if !bClosed {
			b.Close()
		}
	}()
	dirA, dirB := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dirA, "doc.txt"), []byte("x"), 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	share(t, a, fa, b, crdt.RoleEditor, dirB)
	eventually(t, "doc.txt on b", fileIs(dirB, "doc.txt", []byte("x")))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if li, err := b.Lock(ctx, filepath.Join(dirB, "doc.txt"), 5*time.Second); err != nil || li.State != LockGranted {
		t.Fatalf("lock %+v %v", li, err)
	}
	eventually(t, "the grant on a", func() error {
		if l := fa.lockInfos("doc.txt"); len(l) != 1 || l[0].State != LockGranted {
			return fmt.Errorf("a sees %+v", l)
		}
		return nil
	})
	b.Close() // the holder goes quiet
	bClosed = true
	defer lockExpiryGrace.Store(lockExpiryGrace.Load())
	lockExpiryGrace.Store(0)
	set := func(ago time.Duration) {
		fa.locks.mu.Lock()
		for id := range fa.locks.grantSeen {
			fa.locks.grantSeen[id] = time.Now().Add(-ago)
		}
		fa.locks.heard[b.ID()] = time.Now().Add(-ago)
		fa.locks.mu.Unlock()
	}
	fa.witness() // notes when it saw the grant
	set(0)
	fa.witness()
	if l := fa.lockInfos("doc.txt"); len(l) != 1 || l[0].State != LockGranted {
		t.Fatalf("expired although the holder was just heard: %+v", l)
	}
	set(10 * time.Second)
	fa.witness()
	if l := fa.lockInfos("doc.txt"); len(l) != 0 {
		t.Fatalf("not expired after the holder was quiet for twice the lease: %+v", l)
	}
}
