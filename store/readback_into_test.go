package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// ReadChunkInto reads into the caller's buffer when the chunk fits (the
// result aliases it), into a new slice when it does not, and verifies
// either way.
func TestReadChunkIntoReusesTheBuffer(t *testing.T) {
	db, _ := openTestDB(t)
	root := t.TempDir()
	f := db.Folder("f")
	content := testContent(2*MaxChunkSize+99, 7)
	fi := indexFile(t, f, root, "data.bin", content)
	buf := make([]byte, MaxChunkSize)
	var off int64
	for _, c := range fi.Chunks {
		got, err := f.ReadChunkInto(root, c.CID, nil, buf[:0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, content[off:off+int64(c.Size)]) || &got[0] != &buf[0] {
			t.Fatalf("chunk at %d: wrong bytes or not read into the buffer", off)
		}
		small := make([]byte, 0, c.Size-1)
		got, err = f.ReadChunkInto(root, c.CID, nil, small)
		if err != nil || !bytes.Equal(got, content[off:off+int64(c.Size)]) {
			t.Fatalf("chunk at %d with a short buffer: %v", off, err)
		}
		off += int64(c.Size)
	}
	content[1] ^= 0xff
	if err := os.WriteFile(filepath.Join(root, "data.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadChunkInto(root, fi.Chunks[0].CID, nil, buf[:0]); !errors.Is(err, ErrChunkChanged) {
		t.Fatalf("changed file read into a buffer: %v, want ErrChunkChanged", err)
	}
}
