package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corruptFixture is a folder with one committed file, whose stored records
// the tests overwrite directly through goleveldb.
type corruptFixture struct {
	db   *DB
	f    *FolderIndex
	fi   FileInfo
	root string
}

func newCorruptFixture(t *testing.T) *corruptFixture {
	db, _ := openTestDB(t)
	f := db.Folder("f")
	root := t.TempDir()
	fi := indexFile(t, f, root, "x", testContent(5000, 9))
	return &corruptFixture{db: db, f: f, fi: fi, root: root}
}

func (c *corruptFixture) raw(t *testing.T, key []byte) []byte {
	t.Helper()
	v, err := c.db.ldb.Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (c *corruptFixture) put(t *testing.T, key, value []byte) {
	t.Helper()
	if err := c.db.ldb.Put(key, value, nil); err != nil {
		t.Fatal(err)
	}
}

// reads runs every read of the folder and returns their errors.
func (c *corruptFixture) reads() map[string]error {
	errs := map[string]error{}
	_, _, errs["Get"] = c.f.Get(c.fi.Path)
	errs["Walk"] = c.f.Walk("", func(FileInfo) error { return nil })
	errs["Since"] = c.f.Since(c.fi.Author, 0, func(FileInfo) error { return nil })
	_, _, errs["ChunkLocation"] = c.f.ChunkLocation(c.fi.Chunks[0].CID)
	_, errs["Sequence"] = c.f.Sequence(c.fi.Author)
	return errs
}

// wantCorrupt fails unless every named read failed with ErrCorrupt, and
// every other read either succeeded or failed with ErrCorrupt.
func wantCorrupt(t *testing.T, what string, errs map[string]error, must ...string) {
	t.Helper()
	for name, err := range errs {
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %s failed without ErrCorrupt: %v", what, name, err)
		}
	}
	for _, name := range must {
		if !errors.Is(errs[name], ErrCorrupt) {
			t.Fatalf("%s: %s = %v, want ErrCorrupt", what, name, errs[name])
		}
	}
}

func TestCorruptFileRecords(t *testing.T) {
	c := newCorruptFixture(t)
	key := fileKey(c.f.filePfx, c.fi.Path)
	good := c.raw(t, key)
	for n := range len(good) {
		c.put(t, key, good[:n])
		wantCorrupt(t, "truncated file record", c.reads(), "Get", "Walk", "Since")
	}
	detected := 0
	for i := range good {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			v := bytes.Clone(good)
			v[i] ^= x
			c.put(t, key, v)
			errs := c.reads()
			wantCorrupt(t, "flipped file record", errs)
			if errs["Get"] != nil {
				detected++
			}
		}
	}
	t.Logf("%d of %d single-byte flips of a %d-byte record detected (the rest decode to another valid record)", detected, 3*len(good), len(good))
	unknown := bytes.Clone(good)
	unknown[0] = 2 // a format version this code does not know
	c.put(t, key, unknown)
	wantCorrupt(t, "unknown format version", c.reads(), "Get", "Walk", "Since")
	// A record stored under another path than the one it names.
	other := c.fi
	other.Path = "y"
	v, err := encodeFileInfo(&other)
	if err != nil {
		t.Fatal(err)
	}
	c.put(t, key, v)
	wantCorrupt(t, "record under the wrong path", c.reads(), "Get", "Walk", "Since")
	// Committing over a corrupt record fails cleanly instead of leaving its
	// index entries behind.
	c.put(t, key, good[:3])
	b := c.f.Batch()
	b.PutLocal(FileInfo{Path: c.fi.Path, Kind: KindDir}, "me")
	if err := b.Commit(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("commit over a corrupt record = %v", err)
	}
	c.put(t, key, good)
	wantCorrupt(t, "restored", c.reads())
	for name, err := range c.reads() {
		if err != nil {
			t.Fatalf("restored record: %s: %v", name, err)
		}
	}
}

func TestCorruptIndexEntries(t *testing.T) {
	c := newCorruptFixture(t)
	seqK := seqKey(c.f.seqPfx, c.fi.Author, c.fi.Seq)
	goodSeq := c.raw(t, seqK)
	for _, v := range [][]byte{nil, {1}, {0, 'x'}, {1, '/', 'x'}, encodePathRecord("nowhere")} {
		c.put(t, seqK, v)
		wantCorrupt(t, "author index value "+string(v), c.reads(), "Since")
	}
	c.put(t, seqK, goodSeq)

	chunkK := chunkKey(c.f.chunkPfx, c.fi.Chunks[0].CID.KeyString(), c.fi.Path)
	goodLoc := c.raw(t, chunkK)
	for n := range len(goodLoc) {
		c.put(t, chunkK, goodLoc[:n])
		wantCorrupt(t, "truncated chunk location", c.reads(), "ChunkLocation")
		var stale staleRecorder
		c.f.SetStaleHandler(stale.record)
		if _, err := c.f.ReadChunk(c.root, c.fi.Chunks[0].CID); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ReadChunk with a corrupt location = %v", err)
		}
		if len(stale.get()) != 0 {
			t.Fatal("corrupt index reported as a changed file")
		}
	}
	c.put(t, chunkK, goodLoc)

	metaK := metaKey(c.f.metaPfx, c.fi.Author)
	goodMeta := c.raw(t, metaK)
	for n := range len(goodMeta) {
		c.put(t, metaK, goodMeta[:n])
		wantCorrupt(t, "truncated sequence record", c.reads(), "Sequence")
		b := c.f.Batch()
		b.PutLocal(FileInfo{Path: "new", Kind: KindDir}, c.fi.Author)
		if err := b.Commit(); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("PutLocal over a corrupt sequence record: Commit = %v", err)
		}
	}
	c.put(t, metaK, goodMeta)

	// Malformed keys inside each range.
	bad := [][]byte{
		fileKey(c.f.filePfx, ""),                                     // no path
		append(seqPrefix(c.f.seqPfx, c.fi.Author), 0xff, 0xff, 0xff), // short sequence
		chunkPrefix(c.f.chunkPfx, c.fi.Chunks[0].CID.KeyString()),    // no path
	}
	for i, k := range bad {
		c.put(t, k, []byte{1, 'x'})
		wantCorrupt(t, "malformed key", c.reads(), []string{"Walk", "Since", "ChunkLocation"}[i])
		if err := c.db.ldb.Delete(k, nil); err != nil {
			t.Fatal(err)
		}
	}
	for name, err := range c.reads() {
		if err != nil {
			t.Fatalf("after cleanup: %s: %v", name, err)
		}
	}
}

func TestCorruptLogAndPeerRecords(t *testing.T) {
	db, _ := openTestDB(t)
	ls := db.LogStore("f")
	if err := ls.Put([]byte("op"), []byte("raw")); err != nil {
		t.Fatal(err)
	}
	k := append(folderPrefix(ksLogOp, "f"), "op"...)
	for _, v := range [][]byte{nil, {1}, {7, 'r'}} {
		if err := db.ldb.Put(k, v, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ls.Get([]byte("op")); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get of corrupt op %x = %v", v, err)
		}
		if err := ls.ForEach(func(_, _ []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ForEach over corrupt op %x = %v", v, err)
		}
	}
	if err := db.PutPeerAddrs("p", [][]byte{[]byte("a1"), []byte("a2")}); err != nil {
		t.Fatal(err)
	}
	pk := []byte{ksPeer, 'p'}
	good, _ := db.ldb.Get(pk, nil)
	for n := range len(good) {
		if err := db.ldb.Put(pk, good[:n], nil); err != nil {
			t.Fatal(err)
		}
		if _, err := db.PeerAddrs("p"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("PeerAddrs of truncated record (%d bytes) = %v", n, err)
		}
		if err := db.ForEachPeer(func(string, [][]byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ForEachPeer over truncated record = %v", err)
		}
	}
}

// TestCorruptTableFile damages goleveldb's own files on disk: the block
// checksum failure comes back as ErrCorrupt, not as a goleveldb type and not
// as a panic.
func TestCorruptTableFile(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := db.Folder("f")
	b := f.Batch()
	for i := range 200 {
		b.Put(fullFileInfo("file/"+strings.Repeat("p", i%50)+string(rune('a'+i%26))+string(rune('a'+i/26)), 20))
	}
	mustCommit(t, b)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening replays the journal into a table file.
	if db, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.ldb"))
	if len(tables) == 0 {
		t.Fatal("no table file written")
	}
	for _, name := range tables {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i := 100; i < len(data)/2; i += 97 {
			data[i] ^= 0x55
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err = Open(dir)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open of a damaged database = %v", err)
		}
		t.Logf("Open: %v", err)
		return
	}
	defer db.Close()
	err = db.Folder("f").Walk("", func(FileInfo) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Walk over damaged table = %v, want ErrCorrupt", err)
	}
	t.Logf("Walk: %v", err)
}
