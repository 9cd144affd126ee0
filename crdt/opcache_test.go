package crdt

import (
	"bytes"
	"errors"
	"testing"
)

// TestOpCacheShares: two replicas decoding through one OpCache share each
// op (decoded and verified once), end in the same state as a replica
// without the cache, and still refuse a forged op each time it comes
// (failures are not cached), while a refused op's good twin is accepted.
func TestOpCacheShares(t *testing.T) {
	founder, ed := newActor(t, "founder"), newActor(t, "editor")
	l := newTestFolder(t, founder)
	must(t, l, founder, Grant{Principal: UserPrincipal(ed.uid), Node: RootNode, Role: RoleEditor})
	must(t, l, ed, AddDevice{Cert: ed.cert})
	must(t, l, founder, CreateFolder{Parent: RootNode, Name: "docs"})
	raws := l.OpsSince(nil)

	c := NewOpCache()
	var reps []*Log
	for range 2 {
		r, err := New(raws[0], NewMemStore())
		if err != nil {
			t.Fatal(err)
		}
		r.UseOpCache(c)
		if res, err := r.Merge(raws[1:]); err != nil || len(res.Rejected) > 0 {
			t.Fatalf("merge: %v %v", err, res.Rejected)
		}
		reps = append(reps, r)
	}
	plain := fork(t, l)
	for _, raw := range raws[1:] {
		id := opCID(raw)
		a, _ := reps[0].Get(id)
		b, _ := reps[1].Get(id)
		if a != b {
			t.Fatalf("op %s decoded twice: the replicas do not share it", id)
		}
	}
	if len(c.ops) != len(raws)-1 {
		t.Fatalf("cache holds %d ops, want %d", len(c.ops), len(raws)-1)
	}
	for i, r := range reps {
		if !bytes.Equal(r.Digest(), plain.Digest()) {
			t.Fatalf("replica %d with the cache differs from one without", i)
		}
	}

	// A forged signature: refused by every replica, never cached.
	op, err := l.Build(ed.dev, CreateFolder{Parent: RootNode, Name: "x"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), op.Raw...)
	bad[len(bad)-1] ^= 1
	for i, r := range reps {
		res, err := r.Merge([][]byte{bad})
		if err != nil || len(res.Rejected) != 1 || !errors.Is(res.Rejected[0], ErrBadSignature) {
			t.Fatalf("replica %d: forged op: %v %v", i, err, res.Rejected)
		}
	}
	if len(c.ops) != len(raws)-1 {
		t.Fatal("a refused op was cached")
	}
	for i, r := range reps {
		if res, err := r.Merge([][]byte{op.Raw}); err != nil || res.Added != 1 {
			t.Fatalf("replica %d: the good op: %v %+v", i, err, res)
		}
	}

	// Load through the cache gives the same log.
	ld, err := LoadWith(reps[0].store, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ld.Digest(), reps[0].Digest()) || ld.Len() != reps[0].Len() {
		t.Fatal("LoadWith differs from the log it loaded")
	}
}
