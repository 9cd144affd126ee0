package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// indexFile writes content to root/path, cuts it with HashChunks and records
// it in f as a local version, as the scanner would.
func indexFile(t *testing.T, f *FolderIndex, root, path string, content []byte) FileInfo {
	t.Helper()
	full := filepath.Join(root, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, content, 0o644); err != nil {
		t.Fatal(err)
	}
	var chunks []ChunkRef
	if err := HashChunks(bytes.NewReader(content), func(c Chunk, _ []byte) error {
		chunks = append(chunks, ChunkRef{CID: c.CID, Size: uint32(c.Length)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := f.Batch()
	fi := b.PutLocal(FileInfo{Path: path, Kind: KindFile, Size: int64(len(content)), Chunks: chunks}, "me")
	mustCommit(t, b)
	return fi
}

// staleRecorder collects the paths reported to a stale handler.
type staleRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (r *staleRecorder) record(p string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, p)
}

func (r *staleRecorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.paths)
}

func testContent(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func TestReadChunkVerifiesAndReportsChangedFiles(t *testing.T) {
	db, _ := openTestDB(t)
	root := t.TempDir()
	f := db.Folder("f")
	var stale staleRecorder
	f.SetStaleHandler(stale.record)

	content := testContent(2*MaxChunkSize+1234, 1) // at least three chunks whatever the chunker
	fi := indexFile(t, f, root, "dir/data.bin", content)
	if len(fi.Chunks) < 2 {
		t.Fatalf("want several chunks, got %d", len(fi.Chunks))
	}
	var off int64
	for _, c := range fi.Chunks {
		got, err := f.ReadChunk(root, c.CID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, content[off:off+int64(c.Size)]) {
			t.Fatalf("chunk at %d: wrong bytes", off)
		}
		off += int64(c.Size)
	}
	if len(stale.get()) != 0 {
		t.Fatalf("stale reported for an unchanged file: %v", stale.get())
	}

	// Change one byte of the second chunk behind the index's back.
	changed := slices.Clone(content)
	changed[int(fi.Chunks[0].Size)+10] ^= 0xff
	full := filepath.Join(root, "dir", "data.bin")
	if err := os.WriteFile(full, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := f.ReadChunk(root, fi.Chunks[1].CID)
	var cc *ChunkChangedError
	if !errors.As(err, &cc) || !errors.Is(err, ErrChunkChanged) || !errors.Is(err, ErrChunkMismatch) {
		t.Fatalf("ReadChunk of a modified chunk = %v, want *ChunkChangedError wrapping ErrChunkChanged and ErrChunkMismatch", err)
	}
	if cc.Path != "dir/data.bin" || !cc.CID.Equals(fi.Chunks[1].CID) {
		t.Fatalf("error names %q %s", cc.Path, cc.CID)
	}
	if got := stale.get(); !slices.Equal(got, []string{"dir/data.bin"}) {
		t.Fatalf("stale handler got %v", got)
	}
	// The first chunk is still intact and still served.
	if _, err := f.ReadChunk(root, fi.Chunks[0].CID); err != nil {
		t.Fatalf("intact chunk: %v", err)
	}

	// Truncated: a short read.
	if err := os.Truncate(full, int64(fi.Chunks[0].Size)+5); err != nil {
		t.Fatal(err)
	}
	last := fi.Chunks[len(fi.Chunks)-1].CID
	if _, err := f.ReadChunk(root, last); !errors.Is(err, ErrChunkChanged) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadChunk past the end = %v", err)
	}
	// Removed.
	if err := os.Remove(full); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadChunk(root, fi.Chunks[0].CID); !errors.Is(err, ErrChunkChanged) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadChunk of a removed file = %v", err)
	}
	if got := len(stale.get()); got != 3 {
		t.Fatalf("stale handler called %d times, want 3", got)
	}
	// Unknown chunk.
	if _, err := f.ReadChunk(root, ChunkCID([]byte("never indexed"))); !errors.Is(err, ErrChunkNotFound) {
		t.Fatalf("unknown chunk = %v", err)
	}
	// Without a handler nothing is called, the error is the same.
	f.SetStaleHandler(nil)
	if _, err := f.ReadChunk(root, fi.Chunks[0].CID); !errors.Is(err, ErrChunkChanged) {
		t.Fatalf("without handler: %v", err)
	}
	if got := len(stale.get()); got != 3 {
		t.Fatalf("removed handler still called")
	}
}

func TestReadChunkFallsBackToAnotherFileHoldingIt(t *testing.T) {
	db, _ := openTestDB(t)
	root := t.TempDir()
	f := db.Folder("f")
	var stale staleRecorder
	f.SetStaleHandler(stale.record)
	content := testContent(1000, 2)
	a := indexFile(t, f, root, "a.txt", content)
	indexFile(t, f, root, "b.txt", content)
	// a.txt (bytewise first) changes behind our back; b.txt still holds it.
	if err := os.WriteFile(filepath.Join(root, "a.txt"), testContent(1000, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := f.ReadChunk(root, a.Chunks[0].CID)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ReadChunk = %v (%d bytes)", err, len(got))
	}
	if got := stale.get(); !slices.Equal(got, []string{"a.txt"}) {
		t.Fatalf("stale = %v", got)
	}
}

func TestReadChunkDoesNotFollowSymlinksOutOfRoot(t *testing.T) {
	db, _ := openTestDB(t)
	root := t.TempDir()
	outside := t.TempDir()
	f := db.Folder("f")
	content := testContent(500, 4)
	fi := indexFile(t, f, root, "sub/file", content)
	// Replace the directory by a symlink to a place outside the root that
	// holds the same bytes: the read must not go there.
	if err := os.WriteFile(filepath.Join(outside, "file"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "sub")); err != nil {
		t.Fatal(err)
	}
	var stale staleRecorder
	f.SetStaleHandler(stale.record)
	if data, err := f.ReadChunk(root, fi.Chunks[0].CID); !errors.Is(err, ErrChunkChanged) {
		t.Fatalf("read through a symlink out of the root: %d bytes, err %v", len(data), err)
	}
	if got := stale.get(); !slices.Equal(got, []string{"sub/file"}) {
		t.Fatalf("stale = %v", got)
	}
	// A missing root is not a changed file.
	var stale2 staleRecorder
	f.SetStaleHandler(stale2.record)
	if _, err := f.ReadChunk(filepath.Join(root, "unmounted"), fi.Chunks[0].CID); err == nil || errors.Is(err, ErrChunkChanged) {
		t.Fatalf("missing root: %v", err)
	}
	if got := stale2.get(); len(got) != 0 {
		t.Fatalf("missing root reported stale paths %v", got)
	}
}

func TestReadChunkFromHonoursTheFilter(t *testing.T) {
	root := t.TempDir()
	idx := openTestIndex(t, "f")
	data := []byte("secret design")
	for _, p := range []string{"design/a.txt", "public/b.txt"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Scan(context.Background(), ScanConfig{Root: root, Device: "d"}, idx); err != nil {
		t.Fatal(err)
	}
	c := ChunkCID(data)
	onlyDesign := func(p string) bool { return strings.HasPrefix(p, "design/") }
	if got, err := idx.ReadChunkFrom(root, c, onlyDesign); err != nil || string(got) != string(data) {
		t.Fatalf("allowed read: %q %v", got, err)
	}
	if _, err := idx.ReadChunkFrom(root, c, func(string) bool { return false }); !errors.Is(err, ErrChunkNotAllowed) {
		t.Fatalf("refused read: %v", err)
	}
}
