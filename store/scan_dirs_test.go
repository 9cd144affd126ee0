package store

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// TestWarmRescanFindsEveryChangeAmongManyFiles: the read-ahead walk must not
// cost a warm rescan any of the changes a stat shows. 10,000 unchanged files
// in 100 directories (more than maxReadAheadDirs, some nested) hide one
// touched file (same size and content, new mtime), one replaced by another
// inode with the same size and mtime, one chmod'ed, one deleted and one new
// one deep down; the rescan must report exactly those.
func TestWarmRescanFindsEveryChangeAmongManyFiles(t *testing.T) {
	root, idx := newTestFolder(t)
	const files = 10_000
	path := func(i int) string {
		if i%1000 == 0 { // some deeper directories too
			return fmt.Sprintf("d%02d/sub/f%05d", i/100, i)
		}
		return fmt.Sprintf("d%02d/f%05d", i/100, i)
	}
	// Written by a few goroutines: creating files waits on the file system
	// more than it computes.
	var g errgroup.Group
	g.SetLimit(8)
	for i := range files {
		g.Go(func() error {
			p := filepath.Join(root, filepath.FromSlash(path(i)))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			return os.WriteFile(p, fmt.Appendf(nil, "file %05d", i), 0o644)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	first := scanOK(t, ScanConfig{Root: root}, idx)
	entries := first.New // files and directories
	if first.Files != files {
		t.Fatalf("first scan saw %d files, want %d", first.Files, files)
	}
	if res := scanOK(t, ScanConfig{Root: root}, idx); res.Unchanged != entries || len(res.ChangedPaths) != 0 {
		t.Fatalf("rescan of an unchanged folder: %d unchanged (want %d), changed %v", res.Unchanged, entries, res.ChangedPaths)
	}
	// The next rescan compares with the entries this one kept in memory,
	// not with a new pass over the index: the changes below must show all
	// the same.
	if idx.scanKnown.Load() == nil {
		t.Fatal("an unchanged rescan did not keep its index entries for the next")
	}

	abs := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	touched, replaced, chmoded, deleted := path(4321), path(7000), path(9999), path(123)
	added := "d55/sub/deeper/new"

	st, err := os.Stat(abs(touched))
	if err != nil {
		t.Fatal(err)
	}
	later := st.ModTime().Add(time.Second)
	if err := os.Chtimes(abs(touched), later, later); err != nil {
		t.Fatal(err)
	}
	// Same size, same mtime, another inode: only the inode tells.
	st, err = os.Stat(abs(replaced))
	if err != nil {
		t.Fatal(err)
	}
	tmp := abs(replaced) + ".new"
	if err := os.WriteFile(tmp, []byte("FILE 07000"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, abs(replaced)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(abs(chmoded), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(abs(deleted)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, added, []byte("new"))

	res := scanOK(t, ScanConfig{Root: root}, idx)
	// New: the file and the two directories above it.
	checkCounts(t, res, 3, 3, 1, entries-4)
	want := []string{deleted, touched, replaced, chmoded, "d55/sub", "d55/sub/deeper", added}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(res.ChangedPaths))
	if !slices.Equal(got, want) {
		t.Fatalf("changed paths %v, want %v", got, want)
	}
	if idx.scanKnown.Load() != nil {
		t.Fatal("a rescan that recorded changes kept its (now stale) index entries")
	}
	if res.FilesHashed != 3 { // touched, replaced and added; the chmod keeps its chunks
		t.Fatalf("hashed %d files, want 3", res.FilesHashed)
	}
	fi := mustGet(t, idx, replaced)
	if fi.Size != 10 || !slices.EqualFunc(fi.Chunks, chunksOf(t, []byte("FILE 07000")), func(a, b ChunkRef) bool { return a.CID.Equals(b.CID) }) {
		t.Fatalf("replaced file indexed as %+v", fi)
	}
	if res := scanOK(t, ScanConfig{Root: root}, idx); len(res.ChangedPaths) != 0 {
		t.Fatalf("rescan after recording the changes found more: %v", res.ChangedPaths)
	}
}

// TestDFSLessIsTheWalkOrder: the loader's queue order (dfsLess) is the order
// a depth-first walk over sorted names visits directories, including names
// that sort around '/' ("a.b", "a-", "a0" against "a/...").
func TestDFSLessIsTheWalkOrder(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/z", "a/b/c", "a.b", "a-", "a0", "ab/c", "b", "a b", "a/a.", "a/a/x", "A"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var walked []string
	if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			walked = append(walked, filepath.ToSlash(rel))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sorted := slices.SortedFunc(slices.Values(walked), func(a, b string) int {
		if dfsLess(a, b) {
			return -1
		}
		if dfsLess(b, a) {
			return 1
		}
		return 0
	})
	if !slices.Equal(sorted, walked) {
		t.Fatalf("dfsLess order %v, walk order %v", sorted, walked)
	}
}
