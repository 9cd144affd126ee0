package store

import (
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
