package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/store"
)

// mapFetcher serves chunks from memory: a stand-in for peers in this unit
// test of the executor (the sync tests use real peers). corrupt makes it flip
// a byte of every chunk it serves.
type mapFetcher struct {
	mu      sync.Mutex
	chunks  map[string][]byte
	asked   int
	corrupt bool
}

func (m *mapFetcher) add(data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	store.HashChunks(bytes.NewReader(data), func(c store.Chunk, b []byte) error {
		m.chunks[c.CID.KeyString()] = bytes.Clone(b)
		return nil
	})
}

func (m *mapFetcher) Fetch(ctx context.Context, want []cid.Cid, deliver func(cid.Cid, []byte) error) error {
	for _, c := range want {
		m.mu.Lock()
		data, ok := m.chunks[c.KeyString()]
		m.asked++
		m.mu.Unlock()
		if !ok {
			return fmt.Errorf("no peer has %s", c)
		}
		if m.corrupt {
			data = bytes.Clone(data)
			data[0] ^= 1
		}
		if err := deliver(c, data); err != nil {
			return err
		}
	}
	return nil
}

type applyEnv struct {
	t       *testing.T
	dir     string
	idx     *store.FolderIndex
	fetcher *mapFetcher
	app     *Applier
}

func newApplyEnv(t *testing.T) *applyEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	e := &applyEnv{t: t, dir: dir, idx: db.Folder("folder"), fetcher: &mapFetcher{chunks: map[string][]byte{}}}
	e.app = &Applier{Root: root, Index: e.idx, Fetcher: e.fetcher}
	return e
}

// remote builds the version a peer would announce for content at p.
func remoteVersion(t *testing.T, p string, content []byte, dev string, seq uint64) store.FileInfo {
	t.Helper()
	fi := store.FileInfo{Path: p, Kind: store.KindFile, Size: int64(len(content)), Mode: 0o640,
		ModTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano(), Author: store.DeviceID(dev), Seq: seq}
	fi.Version = fi.Version.Update(store.DeviceID(dev), seq)
	if err := store.HashChunks(bytes.NewReader(content), func(c store.Chunk, _ []byte) error {
		fi.Chunks = append(fi.Chunks, store.ChunkRef{CID: c.CID, Size: uint32(c.Length)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return fi
}

func (e *applyEnv) scan() store.ScanResult {
	e.t.Helper()
	res, err := store.Scan(context.Background(), store.ScanConfig{Root: e.dir, Device: "local"}, e.idx)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *applyEnv) apply(actions ...plan.Action) ApplyResult {
	e.t.Helper()
	res, err := e.app.Apply(context.Background(), actions)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *applyEnv) read(p string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, p))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestApplyFetchWritesVerifiedFileAndScanSeesNoChange(t *testing.T) {
	e := newApplyEnv(t)
	content := randomBytes(1, 3<<20)
	e.fetcher.add(content)
	want := remoteVersion(t, "sub/dir/file.bin", content, "B", 1)
	res := e.apply(plan.Action{Op: plan.Fetch, Want: want})
	if !bytes.Equal(e.read(want.Path), content) {
		t.Fatal("content differs")
	}
	if res.BytesFetched != int64(len(content)) || len(res.Skipped) != 0 {
		t.Fatalf("result %+v", res)
	}
	st, _ := os.Stat(filepath.Join(e.dir, want.Path))
	if st.Mode().Perm() != 0o640 || st.ModTime().UnixNano() != want.ModTime {
		t.Fatalf("mode %v mtime %v", st.Mode().Perm(), st.ModTime())
	}
	got, ok, _ := e.idx.Get(want.Path)
	if !ok || got.Author != "B" || got.Seq != 1 || got.Inode == 0 {
		t.Fatalf("index entry %+v", got)
	}
	// The scanner sees what was applied as unchanged: no new local version.
	if r := e.scan(); r.New+r.Changed != 2 || r.BytesHashed != 0 { // the two new parent directories only
		t.Fatalf("scan after apply: %+v", r)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.dir, "sub/dir")); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestApplyCopiesChunksAlreadyOnDisk(t *testing.T) {
	e := newApplyEnv(t)
	base := randomBytes(2, 4<<20)
	os.WriteFile(filepath.Join(e.dir, "original.bin"), base, 0o644)
	e.scan()
	edited := append(bytes.Clone(base), randomBytes(3, 1<<20)...) // appended 1 MiB
	e.fetcher.add(edited)
	res := e.apply(plan.Action{Op: plan.Fetch, Want: remoteVersion(t, "copy.bin", edited, "B", 1)})
	if !bytes.Equal(e.read("copy.bin"), edited) {
		t.Fatal("content differs")
	}
	if res.BytesCopied < 3<<20 || res.BytesFetched > 2<<20 {
		t.Fatalf("copied %d, fetched %d: local chunks were not reused", res.BytesCopied, res.BytesFetched)
	}
}

func TestApplyRepeatedChunks(t *testing.T) {
	e := newApplyEnv(t)
	content := make([]byte, 5<<20) // zeros: the same 1 MiB chunk five times
	e.fetcher.add(content)
	want := remoteVersion(t, "zeros", content, "B", 1)
	if len(want.Chunks) != 5 {
		t.Fatalf("want 5 chunks, got %d", len(want.Chunks))
	}
	res := e.apply(plan.Action{Op: plan.Fetch, Want: want})
	if !bytes.Equal(e.read("zeros"), content) || res.BytesFetched != 1<<20 {
		t.Fatalf("fetched %d bytes for one distinct chunk", res.BytesFetched)
	}
}

func TestApplyNeverOverwritesAnUnscannedLocalChange(t *testing.T) {
	e := newApplyEnv(t)
	os.WriteFile(filepath.Join(e.dir, "doc.txt"), []byte("v1"), 0o644)
	e.scan()
	// The user saves again; the scan has not run yet when the remote version arrives.
	os.WriteFile(filepath.Join(e.dir, "doc.txt"), []byte("my unsaved work, longer"), 0o644)
	remote := []byte("their version")
	e.fetcher.add(remote)
	res := e.apply(plan.Action{Op: plan.Fetch, Want: remoteVersion(t, "doc.txt", remote, "B", 5)})
	if len(res.Skipped) != 1 || !errors.Is(res.Skipped[0].Err, ErrLocalChange) {
		t.Fatalf("result %+v", res)
	}
	if string(e.read("doc.txt")) != "my unsaved work, longer" {
		t.Fatal("local change overwritten")
	}
	// A file that appeared locally at the path is protected the same way.
	os.WriteFile(filepath.Join(e.dir, "new.txt"), []byte("mine"), 0o644)
	res = e.apply(plan.Action{Op: plan.Fetch, Want: remoteVersion(t, "new.txt", remote, "B", 6)})
	if len(res.Skipped) != 1 || string(e.read("new.txt")) != "mine" {
		t.Fatalf("unscanned new file overwritten: %+v", res)
	}
}

func TestApplyConflictCopyKeepsLocalVersion(t *testing.T) {
	e := newApplyEnv(t)
	os.WriteFile(filepath.Join(e.dir, "plan.txt"), []byte("local edit"), 0o644)
	e.scan()
	remote := []byte("remote edit wins")
	e.fetcher.add(remote)
	copyName := "plan.sync-conflict-20260102-030405-local.txt"
	e.apply(plan.Action{Op: plan.ConflictCopy, Want: remoteVersion(t, "plan.txt", remote, "B", 2), CopyName: copyName})
	if string(e.read("plan.txt")) != "remote edit wins" || string(e.read(copyName)) != "local edit" {
		t.Fatal("conflict not resolved into winner + copy")
	}
	if r := e.scan(); r.New != 1 { // the copy is a new local file that will sync
		t.Fatalf("scan after conflict: %+v", r)
	}
}

func TestApplyMoveAndDelete(t *testing.T) {
	e := newApplyEnv(t)
	content := randomBytes(4, 1<<20)
	os.WriteFile(filepath.Join(e.dir, "old.bin"), content, 0o644)
	os.WriteFile(filepath.Join(e.dir, "gone.txt"), []byte("x"), 0o644)
	e.scan()
	oldFI, _, _ := e.idx.Get("old.bin")
	goneFI, _, _ := e.idx.Get("gone.txt")
	moved := remoteVersion(t, "dir/new.bin", content, "B", 3)
	tomb := func(fi store.FileInfo, seq uint64) store.FileInfo {
		fi.Deleted, fi.Chunks, fi.Size, fi.Author, fi.Seq = true, nil, 0, "B", seq
		fi.Version = fi.Version.Update("B", seq)
		return fi
	}
	e.apply(
		plan.Action{Op: plan.Move, Want: moved, From: "old.bin"},
		plan.Action{Op: plan.Record, Want: tomb(oldFI, 4)},
		plan.Action{Op: plan.Delete, Want: tomb(goneFI, 5)},
	)
	if e.fetcher.asked != 0 {
		t.Fatalf("a move fetched %d chunks", e.fetcher.asked)
	}
	if !bytes.Equal(e.read("dir/new.bin"), content) {
		t.Fatal("moved content differs")
	}
	for _, p := range []string{"old.bin", "gone.txt"} {
		if _, err := os.Lstat(filepath.Join(e.dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still exists", p)
		}
		if fi, _, _ := e.idx.Get(p); !fi.Deleted {
			t.Fatalf("%s not recorded as deleted", p)
		}
	}
}

func TestApplyRejectsCorruptChunksAndLeavesNothing(t *testing.T) {
	e := newApplyEnv(t)
	content := randomBytes(5, 2<<20)
	e.fetcher.add(content)
	e.fetcher.corrupt = true
	res := e.apply(plan.Action{Op: plan.Fetch, Want: remoteVersion(t, "f.bin", content, "B", 1)})
	if len(res.Skipped) != 1 || !errors.Is(res.Skipped[0].Err, store.ErrChunkMismatch) {
		t.Fatalf("result %+v", res)
	}
	entries, _ := os.ReadDir(e.dir)
	if len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if _, ok, _ := e.idx.Get("f.bin"); ok {
		t.Fatal("a version whose bytes never arrived was recorded")
	}
}

func TestApplyStaysInsideTheFolder(t *testing.T) {
	e := newApplyEnv(t)
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(e.dir, "escape"))
	e.scan()
	content := []byte("payload")
	e.fetcher.add(content)
	for _, p := range []string{"../evil", "escape/evil", "/abs/evil"} {
		res, _ := e.app.Apply(context.Background(), []plan.Action{{Op: plan.Fetch, Want: remoteVersion(t, p, content, "B", 1)}})
		if len(res.Skipped) != 1 {
			t.Fatalf("%s: %+v", p, res)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside the folder: %v", entries)
	}
}

// TestConflictCopiesNeverReplaceEachOther: the same device losing twice on
// one path within one second gets two copies, not one overwritten (found by
// the simulator: invitation-replay seed 2).
func TestConflictCopiesNeverReplaceEachOther(t *testing.T) {
	e := newApplyEnv(t)
	copyName := "plan.sync-conflict-20260102-030405-local.txt"
	for i, local := range []string{"first local edit", "second local edit"} {
		os.WriteFile(filepath.Join(e.dir, "plan.txt"), []byte(local), 0o644)
		e.scan()
		remote := []byte(fmt.Sprintf("remote edit %d", i))
		e.fetcher.add(remote)
		res := e.apply(plan.Action{Op: plan.ConflictCopy, Want: remoteVersion(t, "plan.txt", remote, "B", uint64(i+2)), CopyName: copyName})
		if len(res.Skipped) != 0 {
			t.Fatalf("round %d: %+v", i, res.Skipped)
		}
	}
	if string(e.read(copyName)) != "first local edit" {
		t.Fatalf("first copy holds %q", e.read(copyName))
	}
	if got := string(e.read("plan.sync-conflict-20260102-030405-local-2.txt")); got != "second local edit" {
		t.Fatalf("second copy holds %q", got)
	}
}
