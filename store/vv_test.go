package store

import (
	"math/rand/v2"
	"testing"
)

func vv(pairs ...any) VersionVector {
	var v VersionVector
	for i := 0; i < len(pairs); i += 2 {
		v = v.Update(DeviceID(pairs[i].(string)), uint64(pairs[i+1].(int)))
	}
	return v
}

func TestVersionVectorCompare(t *testing.T) {
	cases := []struct {
		name string
		a, b VersionVector
		want Ordering
	}{
		{"both empty", vv(), vv(), Equal},
		{"same", vv("a", 1, "b", 2), vv("b", 2, "a", 1), Equal},
		{"one more change", vv("a", 2), vv("a", 1), Newer},
		{"one fewer change", vv("a", 1), vv("a", 2), Older},
		{"extra device", vv("a", 1, "b", 1), vv("a", 1), Newer},
		{"missing device", vv("a", 1), vv("a", 1, "b", 1), Older},
		{"disjoint", vv("a", 1), vv("b", 1), Concurrent},
		{"crossed", vv("a", 2, "b", 1), vv("a", 1, "b", 2), Concurrent},
		{"empty vs something", vv(), vv("z", 3), Older},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.a.Compare(c.b); got != c.want {
				t.Fatalf("Compare = %v, want %v", got, c.want)
			}
		})
	}
}

func TestVersionVectorUpdateKeepsCanonicalForm(t *testing.T) {
	v := vv("c", 1, "a", 1, "b", 1).Update("b", 0)
	if !v.Valid() || len(v.Counters) != 2 || v.Get("b") != 0 || v.Get("c") != 1 {
		t.Fatalf("unexpected vector %+v", v)
	}
	if (VersionVector{Counters: []Counter{{"b", 1}, {"a", 1}}}).Valid() {
		t.Fatal("unsorted vector reported valid")
	}
	if (VersionVector{Counters: []Counter{{"a", 0}}}).Valid() {
		t.Fatal("zero counter reported valid")
	}
}

// TestVersionVectorMergeProperties checks Merge against its definition on random
// vectors: the merge is newer-or-equal to both inputs, commutative, and every
// counter is the maximum of the two.
func TestVersionVectorMergeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	devs := []DeviceID{"a", "b", "c", "d"}
	random := func() VersionVector {
		var v VersionVector
		for _, d := range devs {
			if r.IntN(2) == 0 {
				v = v.Update(d, uint64(r.IntN(4)))
			}
		}
		return v
	}
	for range 2000 {
		a, b := random(), random()
		m := a.Merge(b)
		if !m.Valid() {
			t.Fatalf("merge of %v and %v not canonical: %v", a, b, m)
		}
		if o := m.Compare(a); o != Newer && o != Equal {
			t.Fatalf("merge %v not >= %v", m, a)
		}
		if m.Compare(b.Merge(a)) != Equal {
			t.Fatalf("merge not commutative for %v, %v", a, b)
		}
		for _, d := range devs {
			if m.Get(d) != max(a.Get(d), b.Get(d)) {
				t.Fatalf("merge counter for %s wrong", d)
			}
		}
		// Compare is antisymmetric.
		want := map[Ordering]Ordering{Equal: Equal, Newer: Older, Older: Newer, Concurrent: Concurrent}
		if b.Compare(a) != want[a.Compare(b)] {
			t.Fatalf("Compare not antisymmetric for %v, %v", a, b)
		}
	}
}
