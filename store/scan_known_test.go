package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestKnownSetBehavesLikeAMap: knownSet replaced a map[string]known with
// take as look-up-and-delete; random sequences of add (in and out of order),
// put, take and remaining must give what the map gave.
func TestKnownSetBehavesLikeAMap(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var ks knownSet
		ref := map[string]known{}
		paths, names := make([]string, 200), 100
		if seed%5 == 0 { // several blocks of knownBlock entries
			paths, names = make([]string, 3*knownBlock), 2*knownBlock
		}
		for i := range paths {
			paths[i] = fmt.Sprintf("d%d/f%05d", rng.IntN(5), rng.IntN(names))
			if rng.IntN(10) == 0 {
				paths[i] = fmt.Sprintf("d%d", rng.IntN(5)) // a directory before or after its entries
			}
		}
		// The index pass: one or several sorted runs (several touched paths).
		unique := slices.Compact(slices.Sorted(slices.Values(paths)))
		runs := [][]string{unique}
		if seed%2 == 1 {
			cut := len(unique) / 2
			runs = [][]string{unique[cut:], unique[:cut]}
		}
		for _, run := range runs {
			for _, p := range run {
				v := known{size: int64(len(p)), inode: rng.Uint64()}
				ks.add(p, v)
				ref[p] = v
			}
		}
		for range 2 * len(paths) {
			p := paths[rng.IntN(len(paths))]
			if rng.IntN(4) == 0 {
				p += "x" // not in the index
			}
			switch rng.IntN(5) {
			case 0:
				v := known{size: -1, inode: rng.Uint64()}
				ks.put(p, v)
				ref[p] = v
			default:
				got, ok := ks.take(p)
				want, wantOK := ref[p]
				delete(ref, p)
				if ok != wantOK || got != want {
					t.Fatalf("seed %d: take(%q) = %+v %v, want %+v %v", seed, p, got, ok, want, wantOK)
				}
			}
		}
		rest := map[string]known{}
		ks.remaining(func(p string, v known) {
			if _, dup := rest[p]; dup {
				t.Fatalf("seed %d: remaining lists %q twice", seed, p)
			}
			rest[p] = v
		})
		if !maps.Equal(rest, ref) {
			t.Fatalf("seed %d: remaining %v, want %v", seed, rest, ref)
		}
	}
}

// TestKnownLoadMatchesWalkHeaders: the scan's index pass decodes records in
// place; what it loads must be what WalkHeaders returns, entry for entry,
// and a corrupt header must fail the scan with ErrCorrupt as it fails Walk.
func TestKnownLoadMatchesWalkHeaders(t *testing.T) {
	db, _ := openTestDB(t)
	f := db.Folder("f")
	b := f.Batch()
	var want []knownEntry
	for i := range 3000 { // several arena blocks of paths and knownBlock entries
		fi := FileInfo{Path: fmt.Sprintf("d%02d/%s-%05d", i%37, string(rune('a'+i%26)), i), Kind: KindFile,
			Size: int64(i), Mode: 0o644, ModTime: int64(i) * 1e9, Inode: uint64(i + 7), Dev: 3,
			Deleted: i%11 == 0}
		switch i % 5 {
		case 1:
			fi.Kind, fi.Size = KindSymlink, 0
			fi.SymlinkTarget = fmt.Sprintf("../t%d", i)
		case 2:
			fi.Kind, fi.Size = KindDir, 0
		}
		b.PutLocal(fi, testDevice)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "d05", "d10"} {
		want = want[:0]
		if err := f.WalkHeaders(prefix, func(fi FileInfo) error {
			want = append(want, knownEntry{path: fi.Path, known: known{kind: fi.Kind, deleted: fi.Deleted, size: fi.Size,
				modTime: fi.ModTime, inode: fi.Inode, mode: fi.Mode, target: fi.SymlinkTarget}})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var ks knownSet
		if err := ks.load(f, prefix); err != nil {
			t.Fatal(err)
		}
		var got []knownEntry
		for _, blk := range ks.blocks {
			got = append(got, blk...)
		}
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("prefix %q: load gave %d entries, WalkHeaders %d (or they differ)", prefix, len(got), len(want))
		}
	}

	// A corrupt header fails the load (and so the scan) with ErrCorrupt.
	key := fileKey(f.filePfx, "d05/f-00005")
	good, err := db.ldb.Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := f.Get("d05/f-00005")
	other.Path = "d05/g"
	moved, err := encodeFileInfo(&other)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{"truncated": good[:5], "wrong path": moved, "unknown version": append([]byte{9}, good[1:]...)} {
		if err := db.ldb.Put(key, v, nil); err != nil {
			t.Fatal(err)
		}
		var ks knownSet
		if err := ks.load(f, ""); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s record: load = %v, want ErrCorrupt", name, err)
		}
		_, err := Scan(context.Background(), ScanConfig{Root: t.TempDir(), Device: testDevice}, f)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s record: scan = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestKeptKnownFollowsIndexWrites: a full rescan reuses the entries the last
// one kept only while nothing was written to the index since; a version
// another device stored in between (here for a path that is not on disk)
// must be seen, and tombstoned, by the next rescan.
func TestKeptKnownFollowsIndexWrites(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, "a", []byte("a"))
	writeFile(t, root, "d/b", []byte("b"))
	cfg := ScanConfig{Root: root}
	scanOK(t, cfg, idx)
	if res := scanOK(t, cfg, idx); res.Unchanged != 3 || idx.scanKnown.Load() == nil {
		t.Fatalf("warm rescan: %d unchanged, kept %v", res.Unchanged, idx.scanKnown.Load() != nil)
	}
	b := idx.Batch()
	b.Put(FileInfo{Path: "d/remote", Kind: KindFile, Size: 1, Mode: 0o644, Author: "other", Seq: 1,
		Version: VersionVector{}.Update("other", 1), Chunks: chunksOf(t, []byte("r"))})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	res := scanOK(t, cfg, idx)
	if res.Deleted != 1 || !slices.Equal(res.ChangedPaths, []string{"d/remote"}) {
		t.Fatalf("rescan after another device's version: deleted %d, changed %v; want d/remote tombstoned", res.Deleted, res.ChangedPaths)
	}
	if fi := mustGet(t, idx, "d/remote"); !fi.Deleted {
		t.Fatalf("d/remote indexed as %+v, want a tombstone", fi)
	}
	// Kept again by the next unchanged rescan, and reused by the one after.
	for range 2 {
		if res := scanOK(t, cfg, idx); res.Unchanged != 3 || len(res.ChangedPaths) != 0 {
			t.Fatalf("rescan: %d unchanged, changed %v", res.Unchanged, res.ChangedPaths)
		}
	}
	if idx.scanKnown.Load() == nil {
		t.Fatal("unchanged rescans did not keep their entries")
	}
}
