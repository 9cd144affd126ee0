package store

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

const testDevice DeviceID = "device-A"

// newTestFolder returns an empty folder on disk and the index of it in a real
// goleveldb database, both removed when the test ends.
func newTestFolder(t testing.TB) (string, *FolderIndex) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "folder")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return root, db.Folder("folder-1")
}

func scanOK(t testing.TB, cfg ScanConfig, idx *FolderIndex) ScanResult {
	t.Helper()
	if cfg.Device == "" {
		cfg.Device = testDevice
	}
	res, err := Scan(context.Background(), cfg, idx)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return res
}

func writeFile(t testing.TB, root, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunksOf is the chunk list the scanner must record for data.
func chunksOf(t testing.TB, data []byte) []ChunkRef {
	t.Helper()
	var out []ChunkRef
	if err := HashChunks(bytes.NewReader(data), func(c Chunk, _ []byte) error {
		out = append(out, ChunkRef{CID: c.CID, Size: uint32(c.Length)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// indexState returns every entry of the index by path.
func indexState(t testing.TB, idx *FolderIndex) map[string]FileInfo {
	t.Helper()
	out := map[string]FileInfo{}
	if err := idx.Walk("", func(fi FileInfo) error { out[fi.Path] = fi; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func livePaths(state map[string]FileInfo) []string {
	var out []string
	for p, fi := range state {
		if !fi.Deleted {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func sinceSeq(t testing.TB, idx *FolderIndex, from uint64) []string {
	t.Helper()
	var out []string
	if err := idx.Since(testDevice, from, func(fi FileInfo) error { out = append(out, fi.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func checkCounts(t testing.TB, res ScanResult, newN, changed, deleted, unchanged int) {
	t.Helper()
	if res.New != newN || res.Changed != changed || res.Deleted != deleted || res.Unchanged != unchanged {
		t.Fatalf("new/changed/deleted/unchanged = %d/%d/%d/%d, want %d/%d/%d/%d (errors %v)",
			res.New, res.Changed, res.Deleted, res.Unchanged, newN, changed, deleted, unchanged, res.Errors)
	}
}

func TestScanAddModifyDeleteAndSince(t *testing.T) {
	root, idx := newTestFolder(t)
	big := randomData(1, 3*MaxChunkSize+12345) // several chunks
	writeFile(t, root, "a.txt", []byte("hello"))
	writeFile(t, root, "dir/b.txt", []byte("bee"))
	writeFile(t, root, "dir/sub/c.bin", big)
	writeFile(t, root, "empty", nil)
	if err := os.Symlink("dir/b.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	cfg := ScanConfig{Root: root, Device: testDevice, Workers: 2}

	res := scanOK(t, cfg, idx)
	checkCounts(t, res, 7, 0, 0, 0)
	if res.Files != 4 || res.Dirs != 2 || res.Symlinks != 1 || len(res.Errors) != 0 {
		t.Fatalf("files/dirs/symlinks = %d/%d/%d errors %v", res.Files, res.Dirs, res.Symlinks, res.Errors)
	}
	if want := int64(5 + 3 + len(big)); res.BytesHashed != want {
		t.Fatalf("BytesHashed = %d, want %d", res.BytesHashed, want)
	}
	state := indexState(t, idx)
	if got, want := livePaths(state), []string{"a.txt", "dir", "dir/b.txt", "dir/sub", "dir/sub/c.bin", "empty", "link"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("indexed %v, want %v", got, want)
	}
	c := state["dir/sub/c.bin"]
	if c.Kind != KindFile || c.Size != int64(len(big)) || !reflect.DeepEqual(c.Chunks, chunksOf(t, big)) || len(c.Chunks) < 2 {
		t.Fatalf("c.bin recorded as %+v", c)
	}
	if l := state["link"]; l.Kind != KindSymlink || l.SymlinkTarget != "dir/b.txt" || len(l.Chunks) != 0 {
		t.Fatalf("link recorded as %+v", l)
	}
	if d := state["dir"]; d.Kind != KindDir || d.Author != testDevice || d.Version.Get(testDevice) == 0 {
		t.Fatalf("dir recorded as %+v", d)
	}
	if e := state["empty"]; e.Kind != KindFile || e.Size != 0 || len(e.Chunks) != 0 {
		t.Fatalf("empty file recorded as %+v", e)
	}
	seq1, err := idx.Sequence(testDevice)
	if err != nil || seq1 != 7 {
		t.Fatalf("Sequence = %d, %v; want 7", seq1, err)
	}

	// Warm rescan: nothing is read.
	res = scanOK(t, cfg, idx)
	checkCounts(t, res, 0, 0, 0, 7)
	if res.BytesHashed != 0 || res.FilesHashed != 0 {
		t.Fatalf("warm rescan hashed %d bytes in %d files", res.BytesHashed, res.FilesHashed)
	}
	if got := sinceSeq(t, idx, seq1+1); len(got) != 0 {
		t.Fatalf("warm rescan produced versions %v", got)
	}

	// Modify one file, delete a directory, add a file.
	writeFile(t, root, "a.txt", []byte("hello, world"))
	if err := os.RemoveAll(filepath.Join(root, "dir/sub")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, "new.txt", []byte("new"))
	res = scanOK(t, cfg, idx)
	checkCounts(t, res, 1, 1, 2, 4)
	if res.BytesHashed != int64(len("hello, world")+len("new")) {
		t.Fatalf("BytesHashed = %d: unchanged files were re-read", res.BytesHashed)
	}
	after := indexState(t, idx)
	if a := after["a.txt"]; a.Version.Compare(state["a.txt"].Version) != Newer || !reflect.DeepEqual(a.Chunks, chunksOf(t, []byte("hello, world"))) {
		t.Fatalf("modified a.txt recorded as %+v", a)
	}
	for _, p := range []string{"dir/sub", "dir/sub/c.bin"} {
		if d := after[p]; !d.Deleted || len(d.Chunks) != 0 || d.Version.Compare(state[p].Version) != Newer || d.Kind != state[p].Kind {
			t.Fatalf("deleted %s recorded as %+v", p, d)
		}
	}
	if got, want := sinceSeq(t, idx, seq1+1), []string{"a.txt", "dir/sub", "dir/sub/c.bin", "new.txt"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Since(seq1+1) = %v, want %v", got, want)
	}
	if got := slices.Sorted(slices.Values(res.ChangedPaths)); !reflect.DeepEqual(got, []string{"a.txt", "dir/sub", "dir/sub/c.bin", "new.txt"}) {
		t.Fatalf("ChangedPaths = %v", got)
	}

	// A tombstone stays a tombstone: no new version on the next scan.
	seq2, _ := idx.Sequence(testDevice)
	res = scanOK(t, cfg, idx)
	checkCounts(t, res, 0, 0, 0, 6)
	if seq3, _ := idx.Sequence(testDevice); seq3 != seq2 {
		t.Fatalf("rescan of an unchanged folder moved the sequence %d -> %d", seq2, seq3)
	}

	// Re-creating a deleted path is new again, and its version descends from the tombstone.
	writeFile(t, root, "dir/sub/c.bin", []byte("back"))
	res = scanOK(t, cfg, idx)
	checkCounts(t, res, 2, 0, 0, 6)
	if c := indexState(t, idx)["dir/sub/c.bin"]; c.Deleted || c.Version.Compare(after["dir/sub/c.bin"].Version) != Newer {
		t.Fatalf("re-created file recorded as %+v", c)
	}
}

func TestScanModeOnlyChangeKeepsChunksWithoutHashing(t *testing.T) {
	root, idx := newTestFolder(t)
	data := randomData(2, 100_000)
	writeFile(t, root, "f", data)
	cfg := ScanConfig{Root: root, Device: testDevice}
	scanOK(t, cfg, idx)
	if err := os.Chmod(filepath.Join(root, "f"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := scanOK(t, cfg, idx)
	checkCounts(t, res, 0, 1, 0, 0)
	if res.BytesHashed != 0 {
		t.Fatalf("mode change re-hashed %d bytes", res.BytesHashed)
	}
	if f := indexState(t, idx)["f"]; f.Mode != 0o600 || !reflect.DeepEqual(f.Chunks, chunksOf(t, data)) {
		t.Fatalf("f recorded as mode %o chunks %d", f.Mode, len(f.Chunks))
	}
}

func TestScanRename(t *testing.T) {
	root, idx := newTestFolder(t)
	data := randomData(3, 70_000)
	writeFile(t, root, "old.txt", data)
	cfg := ScanConfig{Root: root, Device: testDevice}
	scanOK(t, cfg, idx)
	if err := os.Rename(filepath.Join(root, "old.txt"), filepath.Join(root, "new.txt")); err != nil {
		t.Fatal(err)
	}
	res := scanOK(t, cfg, idx)
	checkCounts(t, res, 1, 0, 1, 0)
	state := indexState(t, idx)
	if !state["old.txt"].Deleted || state["new.txt"].Deleted || !reflect.DeepEqual(state["new.txt"].Chunks, chunksOf(t, data)) {
		t.Fatalf("after rename: old %+v new %+v", state["old.txt"], state["new.txt"])
	}
	loc, ok, err := idx.ChunkLocation(state["new.txt"].Chunks[0].CID)
	if err != nil || !ok || loc.Path != "new.txt" {
		t.Fatalf("chunk location after rename = %+v %v %v", loc, ok, err)
	}
}

func TestScanSymlinksAreNotFollowed(t *testing.T) {
	root, idx := newTestFolder(t)
	outside := t.TempDir()
	writeFile(t, outside, "secret.txt", []byte("outside the folder"))
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	cfg := ScanConfig{Root: root, Device: testDevice}
	res := scanOK(t, cfg, idx)
	checkCounts(t, res, 2, 0, 0, 0)
	state := indexState(t, idx)
	if got := livePaths(state); !reflect.DeepEqual(got, []string{"dangling", "out"}) {
		t.Fatalf("indexed %v", got)
	}
	if o := state["out"]; o.Kind != KindSymlink || o.SymlinkTarget != filepath.ToSlash(outside) || res.BytesHashed != 0 {
		t.Fatalf("out recorded as %+v, hashed %d", o, res.BytesHashed)
	}
	// Retargeting a link is a change.
	os.Remove(filepath.Join(root, "dangling"))
	if err := os.Symlink("elsewhere", filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	res = scanOK(t, cfg, idx)
	checkCounts(t, res, 0, 1, 0, 1)
	if d := indexState(t, idx)["dangling"]; d.SymlinkTarget != "elsewhere" {
		t.Fatalf("retargeted link recorded as %+v", d)
	}
}

func TestScanIgnored(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, IgnoreFileName, []byte("# comment\n*.log\nbuild/\n/rootonly.txt\n"))
	writeFile(t, root, "sub/"+IgnoreFileName, []byte("secret.txt\n"))
	for _, p := range []string{
		"keep.txt", "sub/keep.txt", "sub/deeper/rootonly.txt",
		"x.log", "sub/y.log", "build/out.o", "sub/build/out.o", "rootonly.txt", "sub/secret.txt", "sub/deeper/secret.txt",
		"~$report.docx", ".~lock.sheet.ods#", ".DS_Store", "sub/Thumbs.db", "desktop.ini",
		TempFilePrefix + "123", "sub/" + TempFilePrefix + "abc", MarkerName + "/state", MarkerName + "/deep/x",
	} {
		writeFile(t, root, p, []byte(p))
	}
	cfg := ScanConfig{Root: root, Device: testDevice}
	res := scanOK(t, cfg, idx)
	want := []string{IgnoreFileName, "keep.txt", "sub", "sub/" + IgnoreFileName, "sub/deeper", "sub/deeper/rootonly.txt", "sub/keep.txt"}
	if got := livePaths(indexState(t, idx)); !reflect.DeepEqual(got, want) {
		t.Fatalf("indexed %v, want %v", got, want)
	}
	if res.Ignored != 15 || len(res.Errors) != 0 {
		t.Fatalf("Ignored = %d (want 15), errors %v", res.Ignored, res.Errors)
	}

	// A path ignored after it was recorded is left alone, not tombstoned.
	writeFile(t, root, IgnoreFileName, []byte("*.log\nbuild/\n/rootonly.txt\nkeep.txt\n"))
	res = scanOK(t, cfg, idx)
	if res.Deleted != 0 {
		t.Fatalf("newly ignored path tombstoned: %+v", res)
	}
	if k := indexState(t, idx)["keep.txt"]; k.Deleted {
		t.Fatal("keep.txt tombstoned")
	}
	// Deleting an ignored file does not tombstone anything either.
	os.Remove(filepath.Join(root, "x.log"))
	if res = scanOK(t, cfg, idx); res.Deleted != 0 {
		t.Fatalf("deleted ignored file tombstoned: %+v", res)
	}
}

func TestIgnorer(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, IgnoreFileName, []byte("*.tmp\ncache/\n!keep.tmp\n"))
	writeFile(t, root, "a/"+IgnoreFileName, []byte("local\n"))
	ig := NewIgnorer(root)
	cases := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"x.tmp", false, true},
		{"d/x.tmp", false, true},
		{"keep.tmp", false, false},
		{"cache", true, true},
		{"cache/f", false, true},
		{"cache", false, false},
		{"a/local", false, true},
		{"a/b/local/f", false, true},
		{"local", false, false},
		{"b/" + MarkerName, true, true},
		{MarkerName + "/x", false, true},
		{"d/~$x.doc", false, true},
		{"THUMBS.DB", false, true},
		{"file.txt", false, false},
	}
	for _, c := range cases {
		if got := ig.Ignored(c.path, c.isDir); got != c.want {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", c.path, c.isDir, got, c.want)
		}
	}
	if errs := ig.takeErrors(); len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	writeFile(t, root, "big/"+IgnoreFileName, bytes.Repeat([]byte("x\n"), MaxIgnoreFileSize))
	ig.Ignored("big/x", false)
	if errs := ig.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], ErrIgnoreFileTooLarge) {
		t.Fatalf("oversized ignore file: errors %v", errs)
	}
}

func TestScanInvalidNames(t *testing.T) {
	root, idx := newTestFolder(t)
	bad := map[string]error{
		"a:b":       ErrAbsolutePath,
		"x:y":       ErrAbsolutePath,
		"q?.txt":    ErrReservedChar,
		"CON.txt":   ErrReservedName,
		"trailing.": ErrTrailingDotOrSpace,
		"space ":    ErrTrailingDotOrSpace,
		"nl\nname":  ErrControlChar,
		"bad\xff":   ErrInvalidUTF8,
		"d|ir":      ErrReservedChar,
	}
	for p := range bad {
		if p != "d|ir" {
			writeFile(t, root, p, []byte("x"))
		}
	}
	writeFile(t, root, "d|ir/inner.txt", []byte("below an invalid directory"))
	writeFile(t, root, "ok.txt", []byte("fine"))
	writeFile(t, root, "dir/fine.txt", []byte("fine"))
	res := scanOK(t, ScanConfig{Root: root, Device: testDevice}, idx)
	if got := livePaths(indexState(t, idx)); !reflect.DeepEqual(got, []string{"dir", "dir/fine.txt", "ok.txt"}) {
		t.Fatalf("indexed %v", got)
	}
	if len(res.Errors) != len(bad) {
		t.Fatalf("errors %v, want one per invalid name (%d)", res.Errors, len(bad))
	}
	for _, e := range res.Errors {
		want, ok := bad[e.Path]
		if !ok || !errors.Is(e, want) {
			t.Errorf("error %v for %q, want %v", e, e.Path, want)
		}
	}
	checkCounts(t, res, 3, 0, 0, 0)
}

func TestScanCaseCollisions(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, "Foo", []byte("1"))
	writeFile(t, root, "foo", []byte("2"))
	writeFile(t, root, "d/Straße", []byte("3"))
	writeFile(t, root, "d/STRASSE", []byte("4"))
	writeFile(t, root, "d/other", []byte("5"))
	res := scanOK(t, ScanConfig{Root: root, Device: testDevice}, idx)
	want := []CaseCollision{{Paths: []string{"Foo", "foo"}}, {Paths: []string{"d/STRASSE", "d/Straße"}}}
	got := slices.Clone(res.CaseCollisions)
	slices.SortFunc(got, func(a, b CaseCollision) int { return len(a.Paths[0]) - len(b.Paths[0]) })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CaseCollisions = %v, want %v", res.CaseCollisions, want)
	}
	if got := livePaths(indexState(t, idx)); len(got) != 6 {
		t.Fatalf("colliding entries must still be indexed: %v", got)
	}
	// An incremental scan of one of them reports the collision too.
	for _, touched := range [][]string{{"foo"}, {"Foo", "foo", "d/other"}} {
		res, err := ScanPaths(context.Background(), ScanConfig{Root: root, Device: testDevice}, idx, touched)
		if err != nil || !reflect.DeepEqual(res.CaseCollisions, []CaseCollision{{Paths: []string{"Foo", "foo"}}}) {
			t.Fatalf("ScanPaths(%v) collisions = %v, %v", touched, res.CaseCollisions, err)
		}
	}
}

func TestScanFileChangingDuringHashIsRetried(t *testing.T) {
	root, idx := newTestFolder(t)
	first := randomData(4, 50_000)
	final := randomData(5, 80_000)
	writeFile(t, root, "f", first)
	var attempts []int
	cfg := ScanConfig{Root: root, Device: testDevice, afterHash: func(rel string, attempt int) {
		attempts = append(attempts, attempt)
		if attempt == 1 {
			writeFile(t, root, "f", final)
		}
	}}
	res := scanOK(t, cfg, idx)
	checkCounts(t, res, 1, 0, 0, 0)
	if !reflect.DeepEqual(attempts, []int{1, 2}) {
		t.Fatalf("attempts %v, want [1 2]", attempts)
	}
	if res.BytesHashed != int64(len(first)+len(final)) {
		t.Fatalf("BytesHashed = %d", res.BytesHashed)
	}
	f := indexState(t, idx)["f"]
	if f.Size != int64(len(final)) || !reflect.DeepEqual(f.Chunks, chunksOf(t, final)) {
		t.Fatalf("recorded %d bytes / %d chunks, not the final content", f.Size, len(f.Chunks))
	}
}

func TestScanFileThatNeverSettlesKeepsOldEntry(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, "f", []byte("stable version"))
	writeFile(t, root, "other", []byte("o"))
	scanOK(t, ScanConfig{Root: root, Device: testDevice}, idx)
	before := indexState(t, idx)["f"]

	writeFile(t, root, "f", []byte("being rewritten"))
	n := 0
	cfg := ScanConfig{Root: root, Device: testDevice, afterHash: func(rel string, attempt int) {
		n++
		writeFile(t, root, rel, randomData(uint64(n), 100+n))
	}}
	res := scanOK(t, cfg, idx)
	if n != MaxHashAttempts || len(res.Errors) != 1 || res.Errors[0].Path != "f" || !errors.Is(res.Errors[0], ErrFileChanging) {
		t.Fatalf("after %d attempts errors = %v", n, res.Errors)
	}
	checkCounts(t, res, 0, 0, 0, 1)
	if after := indexState(t, idx)["f"]; !reflect.DeepEqual(after, before) {
		t.Fatalf("entry changed from %+v to %+v", before, after)
	}
}

func TestScanPathsIncremental(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, "a.txt", []byte("a"))
	writeFile(t, root, "untouched.txt", []byte("u"))
	writeFile(t, root, "gone/x", []byte("x"))
	writeFile(t, root, "gone/y/z", []byte("z"))
	cfg := ScanConfig{Root: root, Device: testDevice}
	scanOK(t, cfg, idx)

	writeFile(t, root, "a.txt", []byte("a changed"))
	writeFile(t, root, "untouched.txt", []byte("changed but not reported"))
	writeFile(t, root, "fresh/deep/n.txt", []byte("n"))
	if err := os.RemoveAll(filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	res, err := ScanPaths(context.Background(), cfg, idx, []string{"a.txt", "fresh/deep/n.txt", "gone", "gone/x", "./a.txt", "missing-never-indexed"})
	if err != nil {
		t.Fatal(err)
	}
	// fresh and fresh/deep are recorded as ancestors of the touched file.
	checkCounts(t, res, 3, 1, 4, 0)
	state := indexState(t, idx)
	if u := state["untouched.txt"]; !reflect.DeepEqual(u.Chunks, chunksOf(t, []byte("u"))) {
		t.Fatal("a path that was not touched was scanned")
	}
	for _, p := range []string{"gone", "gone/x", "gone/y", "gone/y/z"} {
		if !state[p].Deleted {
			t.Fatalf("%s not tombstoned", p)
		}
	}
	if f := state["fresh"]; f.Kind != KindDir || f.Deleted {
		t.Fatalf("ancestor fresh recorded as %+v", f)
	}

	// A touched directory is scanned recursively; an ignored path is skipped.
	writeFile(t, root, "fresh/deep/m.txt", []byte("m"))
	writeFile(t, root, "fresh/"+TempFilePrefix+"1", []byte("tmp"))
	res, err = ScanPaths(context.Background(), cfg, idx, []string{"fresh", "fresh/" + TempFilePrefix + "1"})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, res, 1, 0, 0, 3)

	// Invalid touched paths are per-path errors.
	res, err = ScanPaths(context.Background(), cfg, idx, []string{"CON"})
	if err != nil || len(res.Errors) != 1 || !errors.Is(res.Errors[0], ErrReservedName) {
		t.Fatalf("invalid touched path: %v, %v", res.Errors, err)
	}
}

func TestScanCommitsInBatches(t *testing.T) {
	root, idx := newTestFolder(t)
	for i := range 25 {
		writeFile(t, root, "d/f"+string(rune('a'+i)), []byte{byte(i)})
	}
	res := scanOK(t, ScanConfig{Root: root, Device: testDevice, BatchEntries: 4}, idx)
	checkCounts(t, res, 26, 0, 0, 0)
	if got := len(livePaths(indexState(t, idx))); got != 26 {
		t.Fatalf("indexed %d entries, want 26", got)
	}
	if seq, _ := idx.Sequence(testDevice); seq != 26 {
		t.Fatalf("sequence %d, want 26", seq)
	}
}

func TestScanRootErrors(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, "file", []byte("x"))
	for _, r := range []string{filepath.Join(root, "missing"), filepath.Join(root, "file")} {
		if _, err := Scan(context.Background(), ScanConfig{Root: r, Device: testDevice}, idx); !errors.Is(err, ErrRootNotDir) {
			t.Fatalf("Scan(%s) = %v, want ErrRootNotDir", r, err)
		}
	}
	if _, err := Scan(context.Background(), ScanConfig{Root: root}, idx); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("Scan without device = %v", err)
	}
}

func TestScanCanceled(t *testing.T) {
	root, idx := newTestFolder(t)
	for i := range 50 {
		writeFile(t, root, "f"+string(rune('a'+i)), randomData(uint64(i), 1000))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, ScanConfig{Root: root, Device: testDevice}, idx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled scan = %v", err)
	}
}

func TestScanFileVanishingDuringHashIsTombstoned(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, "f", []byte("v1"))
	writeFile(t, root, "new", []byte("n"))
	scanOK(t, ScanConfig{Root: root, Device: testDevice}, idx)
	writeFile(t, root, "f", []byte("v2, changed"))
	writeFile(t, root, "g", []byte("never indexed"))
	cfg := ScanConfig{Root: root, Device: testDevice, afterHash: func(rel string, _ int) {
		os.Remove(filepath.Join(root, rel))
	}}
	res := scanOK(t, cfg, idx)
	checkCounts(t, res, 0, 0, 1, 1)
	state := indexState(t, idx)
	if !state["f"].Deleted {
		t.Fatalf("f vanished while hashed but is %+v", state["f"])
	}
	if _, ok := state["g"]; ok || len(res.Errors) != 0 {
		t.Fatalf("g recorded or errors %v", res.Errors)
	}
}

func TestScanRefusesChangesToGuardedSharedVersions(t *testing.T) {
	root := t.TempDir()
	idx := openTestIndex(t, "f")
	for _, p := range []string{"shared.txt", "gone.txt", "mine.txt"} {
		os.WriteFile(filepath.Join(root, p), []byte("v1 "+p), 0o644)
	}
	cfg := ScanConfig{Root: root, Device: "viewer"}
	if _, err := Scan(context.Background(), cfg, idx); err != nil {
		t.Fatal(err)
	}
	// Mark two versions as shared (signed), as the sync layer does.
	b := idx.Batch()
	for _, p := range []string{"shared.txt", "gone.txt"} {
		fi, _, _ := idx.Get(p)
		fi.Signature = []byte("sig")
		b.Put(fi)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	before, _, _ := idx.Get("shared.txt")
	os.WriteFile(filepath.Join(root, "shared.txt"), []byte("edited by a viewer"), 0o644)
	os.WriteFile(filepath.Join(root, "mine.txt"), []byte("edited, never shared"), 0o644)
	os.Remove(filepath.Join(root, "gone.txt"))
	cfg.MayChange = func(string) bool { return false }
	res, err := Scan(context.Background(), cfg, idx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Refused)
	if !slices.Equal(res.Refused, []string{"gone.txt", "shared.txt"}) || res.Changed != 1 || res.Deleted != 0 {
		t.Fatalf("refused %v, changed %d, deleted %d", res.Refused, res.Changed, res.Deleted)
	}
	after, _, _ := idx.Get("shared.txt")
	if after.Seq != before.Seq || string(after.Signature) != "sig" {
		t.Fatal("the shared version was replaced")
	}
	if g, _, _ := idx.Get("gone.txt"); g.Deleted {
		t.Fatal("the shared version was tombstoned")
	}
}

func TestScanWithoutMarkerRecordsNoDeletion(t *testing.T) {
	root := t.TempDir()
	idx := openTestIndex(t, "f")
	os.Mkdir(filepath.Join(root, MarkerName), 0o755)
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("a"), 0o644)
	cfg := ScanConfig{Root: root, Device: "d", RequireMarker: true}
	if _, err := Scan(context.Background(), cfg, idx); err != nil {
		t.Fatal(err)
	}
	// The disk is unmounted: the directory is there, empty.
	os.RemoveAll(filepath.Join(root, MarkerName))
	os.Remove(filepath.Join(root, "a.txt"))
	if _, err := Scan(context.Background(), cfg, idx); !errors.Is(err, ErrMarkerMissing) {
		t.Fatalf("scan without marker: %v", err)
	}
	if _, err := ScanPaths(context.Background(), cfg, idx, []string{"a.txt"}); !errors.Is(err, ErrMarkerMissing) {
		t.Fatalf("incremental scan without marker: %v", err)
	}
	if fi, _, _ := idx.Get("a.txt"); fi.Deleted {
		t.Fatal("a deletion was recorded")
	}
}
