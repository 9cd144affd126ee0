package store

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestIndexAgainstModel applies random batches of local and remote versions,
// overwrites and tombstones to the index and to a plain map, and after every
// commit checks that Get, Walk, Since, Sequence and the chunk map answer
// exactly what the map says.
func TestIndexAgainstModel(t *testing.T) {
	onBackends(t, func(t *testing.T, db *DB) {
		r := rand.New(rand.NewPCG(7, 11))
		f := db.Folder("model")
		paths := []string{"a", "a/b", "a/b/c", "b", "c.txt", "d/e", "d/f", "z"}
		pool := make([]ChunkRef, 12)
		for i := range pool {
			pool[i] = ChunkRef{CID: ChunkCID([]byte{byte(i)}), Size: uint32(1 + i*100)}
		}
		authors := []DeviceID{"me", "p1", "p2"}
		model := map[string]FileInfo{}
		highest := map[DeviceID]uint64{}
		remoteSeq := map[DeviceID]uint64{}

		for round := range 150 {
			b := f.Batch()
			for range 1 + r.IntN(5) {
				fi := FileInfo{Path: paths[r.IntN(len(paths))], Kind: KindFile, ModTime: int64(round)}
				switch r.IntN(4) {
				case 0:
					fi.Deleted = true
				case 1:
					fi.Kind = KindDir
				default:
					for range r.IntN(4) {
						c := pool[r.IntN(len(pool))]
						fi.Chunks = append(fi.Chunks, c)
						fi.Size += int64(c.Size)
					}
				}
				fi.Version = model[fi.Path].Version
				a := authors[r.IntN(len(authors))]
				if a == "me" {
					fi = b.PutLocal(fi, "me")
				} else {
					remoteSeq[a]++
					fi.Author, fi.Seq = a, remoteSeq[a]
					fi.Version = fi.Version.Update(a, fi.Seq)
					b.Put(fi)
				}
				model[fi.Path] = fi
				highest[fi.Author] = max(highest[fi.Author], fi.Seq)
			}
			mustCommit(t, b)
			checkModel(t, f, model, highest, authors, pool)
		}
	})
}

func checkModel(t *testing.T, f *FolderIndex, model map[string]FileInfo, highest map[DeviceID]uint64, authors []DeviceID, pool []ChunkRef) {
	t.Helper()
	for p, want := range model {
		if got := mustGet(t, f, p); !reflect.DeepEqual(got, want) {
			t.Fatalf("Get(%q) = %+v, want %+v", p, got, want)
		}
	}
	var walked []string
	if err := f.Walk("", func(fi FileInfo) error { walked = append(walked, fi.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(maps.Keys(model)); !slices.Equal(walked, want) {
		t.Fatalf("Walk = %v, want %v", walked, want)
	}
	for _, a := range authors {
		for _, from := range []uint64{0, highest[a] / 2, highest[a], highest[a] + 1} {
			var want []string
			for _, fi := range slices.SortedFunc(maps.Values(model), func(x, y FileInfo) int { return cmp.Compare(x.Seq, y.Seq) }) {
				if fi.Author == a && fi.Seq >= from {
					want = append(want, fmt.Sprintf("%s@%d", fi.Path, fi.Seq))
				}
			}
			var got []string
			if err := f.Since(a, from, func(fi FileInfo) error {
				got = append(got, fmt.Sprintf("%s@%d", fi.Path, fi.Seq))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Since(%s, %d) = %v, want %v", a, from, got, want)
			}
		}
		if s, err := f.Sequence(a); err != nil || s != highest[a] {
			t.Fatalf("Sequence(%s) = %d, %v, want %d", a, s, err, highest[a])
		}
	}
	for _, c := range pool {
		want := map[string]ChunkLocation{}
		for p, fi := range model {
			if fi.Deleted || fi.Kind != KindFile {
				continue
			}
			var off int64
			for _, ch := range fi.Chunks {
				if ch.CID.Equals(c.CID) {
					want[p] = ChunkLocation{Path: p, Offset: off, Length: ch.Size} // the last occurrence is recorded
				}
				off += int64(ch.Size)
			}
		}
		got, err := f.ChunkLocations(c.CID)
		if err != nil {
			t.Fatal(err)
		}
		wantList := slices.SortedFunc(maps.Values(want), func(x, y ChunkLocation) int { return cmp.Compare(x.Path, y.Path) })
		if !slices.Equal(got, wantList) {
			t.Fatalf("ChunkLocations(%s) = %v, want %v", c.CID, got, wantList)
		}
	}
	if locs, err := f.ChunkLocations(cid.Undef); err != nil || len(locs) != 0 {
		t.Fatalf("ChunkLocations(Undef) = %v, %v", locs, err)
	}
}
