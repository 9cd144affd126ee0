package store

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// onBackends runs fn against a database on disk and one in memory
// (OpenMemory): both must behave the same.
func onBackends(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("disk", func(t *testing.T) {
		db, _ := openTestDB(t)
		fn(t, db)
	})
	t.Run("memory", func(t *testing.T) {
		db, err := OpenMemory()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, db)
	})
}

func openTestDB(t testing.TB) (*DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

// testChunks returns n chunk refs of distinct content, sizes 1..(n%997+1).
func testChunks(seed string, n int) []ChunkRef {
	out := make([]ChunkRef, n)
	for i := range out {
		out[i] = ChunkRef{CID: ChunkCID([]byte(fmt.Sprintf("%s/%d", seed, i))), Size: uint32(i%997 + 1)}
	}
	return out
}

func chunksSize(cs []ChunkRef) int64 {
	var n int64
	for _, c := range cs {
		n += int64(c.Size)
	}
	return n
}

// fullFileInfo sets every field of FileInfo to a non-zero value.
func fullFileInfo(path string, nChunks int) FileInfo {
	chunks := testChunks(path, nChunks)
	return FileInfo{
		Path:      path,
		Kind:      KindFile,
		Size:      chunksSize(chunks),
		Mode:      0o644,
		ModTime:   -1234567890123, // before 1970: signed encoding
		Inode:     1 << 40,
		Dev:       77,
		Chunks:    chunks,
		Version:   vv("alice", 3, "bob", 1<<33, "carol", 1),
		Author:    "bob",
		Seq:       1 << 33,
		LogHeads:  []cid.Cid{ChunkCID([]byte("head1")), ChunkCID([]byte("head2"))},
		Signature: []byte("signature bytes"),
	}
}

func mustCommit(t testing.TB, b *Batch) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t testing.TB, f *FolderIndex, path string) FileInfo {
	t.Helper()
	fi, ok, err := f.Get(path)
	if err != nil || !ok {
		t.Fatalf("Get(%q) = ok %v, err %v", path, ok, err)
	}
	return fi
}

func TestIndexRoundTripEveryField(t *testing.T) {
	onBackends(t, func(t *testing.T, db *DB) {
		f := db.Folder("folder-1")
		cases := []FileInfo{
			fullFileInfo("dir/file.bin", 3),
			fullFileInfo("many/chunks.bin", 4096),
			{Path: "dir", Kind: KindDir, Mode: 0o755, ModTime: 42, Version: vv("bob", 7), Author: "bob", Seq: 7},
			{Path: "link", Kind: KindSymlink, SymlinkTarget: "../elsewhere/ä target", ModTime: 1, Author: "bob", Seq: 8, Version: vv("bob", 8)},
			{Path: "gone.txt", Kind: KindFile, Deleted: true, ModTime: 5, Version: vv("alice", 2, "bob", 9), Author: "bob", Seq: 9},
			{Path: "empty", Kind: KindFile, Author: "bob", Seq: 10, Version: vv("bob", 10)},
		}
		b := f.Batch()
		for _, fi := range cases {
			b.Put(fi)
		}
		if b.Len() != len(cases) {
			t.Fatalf("Len = %d", b.Len())
		}
		mustCommit(t, b)
		if b.Len() != 0 {
			t.Fatalf("Len after commit = %d", b.Len())
		}
		for _, want := range cases {
			got := mustGet(t, f, want.Path)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip of %q:\n got %+v\nwant %+v", want.Path, got, want)
			}
		}
		if _, ok, err := f.Get("absent"); ok || err != nil {
			t.Fatalf("Get(absent) = %v, %v", ok, err)
		}
		// Another folder sees nothing, including one whose ID extends this one's.
		if _, ok, err := db.Folder("folder-10").Get("dir"); ok || err != nil {
			t.Fatalf("other folder Get = %v, %v", ok, err)
		}
	})
}

func TestPutLocalAssignsSequencesAndVersions(t *testing.T) {
	onBackends(t, func(t *testing.T, db *DB) {
		f := db.Folder("f")
		b := f.Batch()
		a := b.PutLocal(FileInfo{Path: "a", Kind: KindFile, Version: vv("remote", 4)}, "me")
		a2 := b.PutLocal(FileInfo{Path: "b", Kind: KindDir}, "me")
		if a.Seq != 1 || a2.Seq != 2 || a.Author != "me" {
			t.Fatalf("sequences %d, %d, author %q", a.Seq, a2.Seq, a.Author)
		}
		if a.Version.Compare(vv("remote", 4, "me", 1)) != Equal {
			t.Fatalf("version %v", a.Version)
		}
		mustCommit(t, b)
		if got := mustGet(t, f, "a"); !reflect.DeepEqual(got, a) {
			t.Fatalf("stored %+v, PutLocal returned %+v", got, a)
		}
		// A second batch continues the sequence; so does a concurrent one.
		b1, b2 := f.Batch(), f.Batch()
		x := b1.PutLocal(FileInfo{Path: "a", Kind: KindFile}, "me")
		y := b2.PutLocal(FileInfo{Path: "c", Kind: KindFile}, "me")
		if x.Seq != 3 || y.Seq != 4 {
			t.Fatalf("sequences %d, %d, want 3, 4", x.Seq, y.Seq)
		}
		mustCommit(t, b2)
		mustCommit(t, b1)
		if s, err := f.Sequence("me"); err != nil || s != 4 {
			t.Fatalf("Sequence = %d, %v", s, err)
		}
		if s, err := f.Sequence("nobody"); err != nil || s != 0 {
			t.Fatalf("Sequence(nobody) = %d, %v", s, err)
		}
	})
}

func collectSince(t *testing.T, f *FolderIndex, author DeviceID, from uint64) []string {
	t.Helper()
	var out []string
	var last uint64
	err := f.Since(author, from, func(fi FileInfo) error {
		if fi.Author != author || fi.Seq < from || fi.Seq <= last {
			t.Fatalf("Since gave %q seq %d by %q after seq %d", fi.Path, fi.Seq, fi.Author, last)
		}
		last = fi.Seq
		out = append(out, fmt.Sprintf("%s@%d", fi.Path, fi.Seq))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSinceReturnsCurrentVersionsAfterOverwritesAndDeletions(t *testing.T) {
	onBackends(t, func(t *testing.T, db *DB) {
		f := db.Folder("f")
		b := f.Batch()
		for _, p := range []string{"a", "b", "c", "d"} { // seq 1..4
			b.PutLocal(FileInfo{Path: p, Kind: KindFile}, "me")
		}
		mustCommit(t, b)
		b = f.Batch()
		b.PutLocal(FileInfo{Path: "b", Kind: KindFile, Size: 0, ModTime: 2}, "me") // 5 replaces 2
		b.PutLocal(FileInfo{Path: "a", Kind: KindFile, Deleted: true}, "me")       // 6 replaces 1: tombstone
		b.PutLocal(FileInfo{Path: "b", Kind: KindFile, ModTime: 3}, "me")          // 7 replaces 5 within the batch
		mustCommit(t, b)
		// A remote version replaces c (our seq 3).
		b = f.Batch()
		b.Put(FileInfo{Path: "c", Kind: KindFile, Author: "peer", Seq: 1, Version: vv("me", 3, "peer", 1)})
		mustCommit(t, b)

		if got, want := collectSince(t, f, "me", 0), []string{"d@4", "a@6", "b@7"}; !slices.Equal(got, want) {
			t.Fatalf("Since(me, 0) = %v, want %v", got, want)
		}
		if got, want := collectSince(t, f, "me", 5), []string{"a@6", "b@7"}; !slices.Equal(got, want) {
			t.Fatalf("Since(me, 5) = %v, want %v", got, want)
		}
		if got := collectSince(t, f, "me", 8); len(got) != 0 {
			t.Fatalf("Since(me, 8) = %v", got)
		}
		if got, want := collectSince(t, f, "peer", 1), []string{"c@1"}; !slices.Equal(got, want) {
			t.Fatalf("Since(peer, 1) = %v, want %v", got, want)
		}
		// The author "m" is a prefix of "me": its range holds none of me's entries.
		if got := collectSince(t, f, "m", 0); len(got) != 0 {
			t.Fatalf("Since(m) = %v", got)
		}
		// Our highest sequence stays 7 and the next local version is 8, even
		// though nothing current carries 7's predecessor numbers.
		if s, _ := f.Sequence("me"); s != 7 {
			t.Fatalf("Sequence = %d", s)
		}
		// The sequence record survives the replacement of our latest version by a
		// remote one: the next local sequence is not reused.
		b = f.Batch()
		b.Put(FileInfo{Path: "b", Kind: KindFile, Author: "peer", Seq: 2, Version: vv("me", 7, "peer", 2)})
		mustCommit(t, b)
		if s, _ := f.Sequence("me"); s != 7 {
			t.Fatalf("Sequence after remote replace = %d", s)
		}
		db2Seq := f.Batch().PutLocal(FileInfo{Path: "e", Kind: KindDir}, "me").Seq
		if db2Seq != 8 {
			t.Fatalf("next local seq = %d, want 8", db2Seq)
		}
		// An error from fn stops the scan and comes back unchanged.
		stop := errors.New("stop")
		n := 0
		if err := f.Since("me", 0, func(FileInfo) error { n++; return stop }); err != stop || n != 1 {
			t.Fatalf("Since with failing fn = %v after %d calls", err, n)
		}
	})
}

func TestSequenceIsFreshAfterReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := db.Folder("f")
	b := f.Batch()
	b.PutLocal(FileInfo{Path: "a", Kind: KindDir}, "me")
	b.PutLocal(FileInfo{Path: "b", Kind: KindDir}, "me")
	mustCommit(t, b)
	// A remote version replaces b (our 2): the sequence record keeps 2.
	b = f.Batch()
	b.Put(FileInfo{Path: "b", Kind: KindDir, Author: "peer", Seq: 1, Version: vv("me", 2, "peer", 1)})
	mustCommit(t, b)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Folder("f").Batch().PutLocal(FileInfo{Path: "c", Kind: KindDir}, "me").Seq; got != 3 {
		t.Fatalf("first local seq after reopen = %d, want 3", got)
	}
}

func TestWalkPrefix(t *testing.T) {
	onBackends(t, func(t *testing.T, db *DB) {
		f := db.Folder("f")
		paths := []string{"a", "a/b", "a/b/c", "a/b/d/e", "a/b.txt", "a/b!", "a/bc", "ab", "b", "z/a/b"}
		b := f.Batch()
		for _, p := range paths {
			b.PutLocal(FileInfo{Path: p, Kind: KindFile}, "me")
		}
		b.PutLocal(FileInfo{Path: "a/b/c", Kind: KindFile, Deleted: true}, "me")
		mustCommit(t, b)
		walk := func(prefix string) []string {
			var out []string
			if err := f.Walk(prefix, func(fi FileInfo) error { out = append(out, fi.Path); return nil }); err != nil {
				t.Fatal(err)
			}
			return out
		}
		all := slices.Clone(paths)
		slices.Sort(all)
		for _, c := range []struct {
			prefix string
			want   []string
		}{
			{"", all},
			{"a/b", []string{"a/b", "a/b/c", "a/b/d/e"}},
			{"a", []string{"a", "a/b", "a/b!", "a/b.txt", "a/b/c", "a/b/d/e", "a/bc"}},
			{"z", []string{"z/a/b"}},
			{"z/a/b", []string{"z/a/b"}},
			{"a/b/", []string{"a/b", "a/b/c", "a/b/d/e"}},
			{"/", all},
			{"nothing", nil},
		} {
			if got := walk(c.prefix); !slices.Equal(got, c.want) {
				t.Errorf("Walk(%q) = %v, want %v", c.prefix, got, c.want)
			}
		}
		// Tombstones are walked.
		var deleted []string
		f.Walk("", func(fi FileInfo) error {
			if fi.Deleted {
				deleted = append(deleted, fi.Path)
			}
			return nil
		})
		if !slices.Equal(deleted, []string{"a/b/c"}) {
			t.Fatalf("tombstones walked: %v", deleted)
		}
		stop := errors.New("stop")
		if err := f.Walk("a", func(FileInfo) error { return stop }); err != stop {
			t.Fatalf("Walk with failing fn = %v", err)
		}
	})
}

func locPaths(t *testing.T, f *FolderIndex, c cid.Cid) []ChunkLocation {
	t.Helper()
	locs, err := f.ChunkLocations(c)
	if err != nil {
		t.Fatal(err)
	}
	return locs
}

func TestChunkMapFollowsOverwrites(t *testing.T) {
	onBackends(t, func(t *testing.T, db *DB) {
		f := db.Folder("f")
		shared := ChunkRef{CID: ChunkCID([]byte("shared")), Size: 6}
		onlyA := ChunkRef{CID: ChunkCID([]byte("only in a")), Size: 9}
		newA := ChunkRef{CID: ChunkCID([]byte("new a")), Size: 5}
		b := f.Batch()
		b.PutLocal(FileInfo{Path: "a", Kind: KindFile, Size: 15, Chunks: []ChunkRef{onlyA, shared}}, "me")
		b.PutLocal(FileInfo{Path: "b", Kind: KindFile, Size: 6, Chunks: []ChunkRef{shared}}, "me")
		mustCommit(t, b)

		if got, want := locPaths(t, f, shared.CID), []ChunkLocation{{"a", 9, 6}, {"b", 0, 6}}; !slices.Equal(got, want) {
			t.Fatalf("shared chunk locations %v, want %v", got, want)
		}
		if loc, ok, err := f.ChunkLocation(onlyA.CID); !ok || err != nil || loc != (ChunkLocation{"a", 0, 9}) {
			t.Fatalf("ChunkLocation(onlyA) = %v, %v, %v", loc, ok, err)
		}
		// Overwrite a: its old chunks go, b keeps the shared one.
		b = f.Batch()
		b.PutLocal(FileInfo{Path: "a", Kind: KindFile, Size: 5, Chunks: []ChunkRef{newA}}, "me")
		mustCommit(t, b)
		if got, want := locPaths(t, f, shared.CID), []ChunkLocation{{"b", 0, 6}}; !slices.Equal(got, want) {
			t.Fatalf("after overwrite: shared at %v, want %v", got, want)
		}
		if _, ok, err := f.ChunkLocation(onlyA.CID); ok || err != nil {
			t.Fatalf("stale chunk still mapped: %v, %v", ok, err)
		}
		if got, want := locPaths(t, f, newA.CID), []ChunkLocation{{"a", 0, 5}}; !slices.Equal(got, want) {
			t.Fatalf("new chunk at %v, want %v", got, want)
		}
		// Delete b: the shared chunk is nowhere.
		b = f.Batch()
		b.PutLocal(FileInfo{Path: "b", Kind: KindFile, Deleted: true}, "me")
		mustCommit(t, b)
		if got := locPaths(t, f, shared.CID); len(got) != 0 {
			t.Fatalf("deleted file's chunk still mapped: %v", got)
		}
		// Within one batch: a version put and replaced leaves no entries behind.
		tmp := ChunkRef{CID: ChunkCID([]byte("transient")), Size: 3}
		b = f.Batch()
		b.PutLocal(FileInfo{Path: "t", Kind: KindFile, Size: 3, Chunks: []ChunkRef{tmp}}, "me")
		b.PutLocal(FileInfo{Path: "t", Kind: KindFile, Size: 5, Chunks: []ChunkRef{newA}}, "me")
		mustCommit(t, b)
		if got := locPaths(t, f, tmp.CID); len(got) != 0 {
			t.Fatalf("chunk of a version replaced in the same batch still mapped: %v", got)
		}
		if got := locPaths(t, f, newA.CID); len(got) != 2 {
			t.Fatalf("newA mapped at %v, want a and t", got)
		}
		// The same chunk in another folder is that folder's business.
		if got := locPaths(t, db.Folder("g"), newA.CID); len(got) != 0 {
			t.Fatalf("other folder sees %v", got)
		}
	})
}

func TestCommitRejectsInvalidVersionsAtomically(t *testing.T) {
	db, _ := openTestDB(t)
	f := db.Folder("f")
	bad := []FileInfo{
		{Path: "", Kind: KindFile, Author: "x", Seq: 1},
		{Path: "/abs", Kind: KindFile, Author: "x", Seq: 1},
		{Path: "k", Kind: 9, Author: "x", Seq: 1},
		{Path: "k", Kind: KindFile, Size: -1, Author: "x", Seq: 1},
		{Path: "k", Kind: KindFile, Seq: 1},
		{Path: "k", Kind: KindFile, Author: "x"},
		{Path: "k", Kind: KindFile, Author: "x", Seq: 1, Version: VersionVector{Counters: []Counter{{"b", 1}, {"a", 1}}}},
		{Path: "k", Kind: KindFile, Author: "x", Seq: 1, Chunks: []ChunkRef{{Size: 1}}},
		{Path: "k", Kind: KindFile, Author: "x", Seq: 1, Chunks: []ChunkRef{{CID: ChunkCID(nil), Size: 0}}},
	}
	for i, fi := range bad {
		b := f.Batch()
		b.PutLocal(FileInfo{Path: "good", Kind: KindDir}, "me")
		b.Put(fi)
		if err := b.Commit(); !errors.Is(err, ErrInvalidFileInfo) {
			t.Errorf("case %d: Commit = %v, want ErrInvalidFileInfo", i, err)
		}
		if _, ok, _ := f.Get("good"); ok {
			t.Fatalf("case %d: a failed commit wrote part of its batch", i)
		}
	}
	if _, _, err := db.Folder("").Get("x"); !errors.Is(err, ErrInvalidFolder) {
		t.Fatalf("empty folder ID: %v", err)
	}
	if err := db.Folder("").Batch().Commit(); !errors.Is(err, ErrInvalidFolder) {
		t.Fatalf("empty folder ID commit: %v", err)
	}
}

func TestReopenKeepsEverythingAndClosedFails(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := db.Folder("f")
	want := fullFileInfo("x/y", 50)
	b := f.Batch()
	b.Put(want)
	mustCommit(t, b)
	if err := db.LogStore("f").Put([]byte("op1"), []byte("raw op")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutPeerAddrs("peerA", [][]byte{[]byte("addr1")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Get("x/y"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if err := f.Walk("", func(FileInfo) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Walk after Close = %v, want ErrClosed", err)
	}
	if err := f.Since("bob", 0, func(FileInfo) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Since after Close = %v, want ErrClosed", err)
	}
	b = f.Batch()
	b.Put(fullFileInfo("z", 1))
	if err := b.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close = %v, want ErrClosed", err)
	}

	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f = db.Folder("f")
	if got := mustGet(t, f, "x/y"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen got %+v", got)
	}
	if got := collectSince(t, f, want.Author, 0); !slices.Equal(got, []string{fmt.Sprintf("x/y@%d", want.Seq)}) {
		t.Fatalf("Since after reopen = %v", got)
	}
	if got := locPaths(t, f, want.Chunks[49].CID); len(got) != 1 || got[0].Path != "x/y" {
		t.Fatalf("chunk map after reopen = %v", got)
	}
	if s, _ := f.Sequence(want.Author); s != want.Seq {
		t.Fatalf("Sequence after reopen = %d", s)
	}
	if raw, ok, err := db.LogStore("f").Get([]byte("op1")); !ok || err != nil || string(raw) != "raw op" {
		t.Fatalf("log op after reopen = %q, %v, %v", raw, ok, err)
	}
	if addrs, err := db.PeerAddrs("peerA"); err != nil || len(addrs) != 1 || string(addrs[0]) != "addr1" {
		t.Fatalf("peer after reopen = %q, %v", addrs, err)
	}
}

// TestConcurrentBatches commits from several goroutines at once while others
// read: every local version gets its own sequence number, and afterwards
// Since returns exactly the versions committed.
func TestConcurrentBatches(t *testing.T) {
	db, _ := openTestDB(t)
	f := db.Folder("f")
	const writers, batches, perBatch = 4, 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // a reader walking until the writers are done
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := f.Walk("", func(FileInfo) error { return nil }); err != nil {
				errs <- err
				return
			}
			if err := f.Since("me", 0, func(FileInfo) error { return nil }); err != nil {
				errs <- err
				return
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				b := f.Batch()
				for j := range perBatch {
					b.PutLocal(FileInfo{Path: fmt.Sprintf("w%d/b%d/f%d", w, i, j), Kind: KindFile}, "me")
				}
				if err := b.Commit(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-done
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	seen := map[uint64]bool{}
	err := f.Since("me", 0, func(fi FileInfo) error {
		if seen[fi.Seq] {
			t.Fatalf("sequence %d twice", fi.Seq)
		}
		seen[fi.Seq] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != writers*batches*perBatch {
		t.Fatalf("Since returned %d versions, want %d", len(seen), writers*batches*perBatch)
	}
	for s := uint64(1); s <= writers*batches*perBatch; s++ {
		if !seen[s] {
			t.Fatalf("sequence %d missing", s)
		}
	}
}
