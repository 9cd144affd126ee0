package crdt

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestPendingAndMissing: ops whose parents are missing wait; Missing names
// what to fetch; the buffer is bounded; arrival order does not matter.
func TestPendingAndMissing(t *testing.T) {
	l, f, _ := team(t, RoleEditor)
	base := fork(t, l)
	var ops []*Op
	for i := 0; i < 5; i++ {
		ops = append(ops, must(t, l, f, CreateFolder{Name: string(rune('a' + i))}))
	}
	r := fork(t, base)
	// Deliver the last op first: it waits and its parent is missing.
	res, err := r.Merge([][]byte{ops[4].Raw})
	if err != nil || res.Pending != 1 || res.Added != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if miss := r.Missing(); len(miss) != 1 || !miss[0].Equals(ops[3].ID) {
		t.Fatalf("missing %v", miss)
	}
	// Deliver the rest backwards, with a duplicate.
	res, err = r.Merge([][]byte{ops[3].Raw, ops[2].Raw, ops[1].Raw, ops[1].Raw, ops[0].Raw})
	if err != nil || res.Pending != 0 || res.Added != 5 || len(res.Rejected) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if len(r.Missing()) != 0 || string(r.Digest()) != string(l.Digest()) {
		t.Fatal("not converged")
	}
	// OpsSince gives exactly what a peer at older heads lacks.
	since := l.OpsSince(base.Heads())
	if len(since) != 5 {
		t.Fatalf("ops since: %d", len(since))
	}
	if len(l.OpsSince(l.Heads())) != 0 {
		t.Fatal("ops since own heads")
	}
}

func TestPendingBound(t *testing.T) {
	for _, c := range []struct {
		name        string
		ops, bytes  int
		wantPending int
	}{
		{"op count", 50, MaxPendingBytes, 50},
		{"bytes", MaxPendingOps, 40 * 250, 0}, // wantPending computed below
	} {
		t.Run(c.name, func(t *testing.T) {
			l, f, _ := team(t)
			r := fork(t, l)
			r.maxPendingOps, r.maxPendingBytes = c.ops, c.bytes
			first := must(t, l, f, CreateFolder{Name: "first"})
			var raws [][]byte
			size := 0
			for i := 0; i < 60; i++ {
				op := must(t, l, f, CreateFolder{Name: "n"})
				raws = append(raws, op.Raw)
				if size+len(op.Raw) <= c.bytes {
					size += len(op.Raw)
				}
			}
			want := c.wantPending
			if want == 0 {
				want = 0
				total := 0
				for _, raw := range raws {
					if total+len(raw) > c.bytes {
						break
					}
					total += len(raw)
					want++
				}
			}
			res, err := r.Merge(raws)
			if err != nil {
				t.Fatal(err)
			}
			if res.Pending != want || len(res.Rejected) != len(raws)-want {
				t.Fatalf("pending %d rejected %d, want %d pending", res.Pending, len(res.Rejected), want)
			}
			for _, e := range res.Rejected {
				if !errors.Is(e, ErrPendingFull) {
					t.Fatal(e)
				}
			}
			if _, err := r.Merge([][]byte{first.Raw}); err != nil {
				t.Fatal(err)
			}
			if r.Pending() != 0 || r.Len() != l.Len()-(len(raws)-want) {
				t.Fatalf("after unblocking: pending %d len %d/%d", r.Pending(), r.Len(), l.Len())
			}
			// The refused ones arrive again and now fit.
			if _, err := r.Merge(raws); err != nil || string(r.Digest()) != string(l.Digest()) {
				t.Fatalf("not converged: %v", err)
			}
			if miss := r.Missing(); len(miss) != 0 {
				t.Fatalf("missing %v", miss)
			}
		})
	}
}

// TestForgedAndBroken: forged signatures, wrong folders, bad Lamport times and
// broken author chains are refused and leave the state alone.
func TestForgedAndBroken(t *testing.T) {
	l, f, m := team(t, RoleEditor)
	other := newTestFolder(t, newActor(t, "elsewhere"))
	good, err := l.Build(m[0].dev, LockRequest{Path: "f", LeaseSecs: 9}, 0)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), good.Raw...)
	forged[len(forged)-3] ^= 1
	// An op claiming another device as author, signed by m[0].
	impostor, err := signOp(m[0].dev, l.Folder(), 99, l.Heads(), good.Lamport, 0, CreateFolder{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	imp := impostorOp(t, impostor, f)
	wrongFolder, err := other.Build(m[0].dev, CreateFolder{Name: "x"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	badLamport, err := BuildOp(m[0].dev, l.Folder(), 1, nil, 0, CreateFolder{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	heads := l.Heads()
	var parents []*Op
	for _, h := range heads {
		op, _ := l.Get(h)
		parents = append(parents, op)
	}
	badSeq, err := BuildOp(m[0].dev, l.Folder(), 7, parents, 0, CreateFolder{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	lamportLie, err := signOp(m[0].dev, l.Folder(), 2, heads, good.Lamport+5, 0, CreateFolder{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	before := l.Digest()
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"flipped signature bit", forged, ErrBadSignature},
		{"author is not the signer", imp, ErrBadSignature},
		{"other folder", wrongFolder.Raw, ErrWrongFolder},
		{"no parents", badLamport.Raw, ErrMalformed},
		{"sequence gap", badSeq.Raw, ErrBadSeq},
		{"lamport lie", lamportLie.Raw, ErrBadLamport},
		{"garbage", []byte{0xa1, 0x01}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := l.Merge([][]byte{c.raw})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rejected) != 1 || !errors.Is(res.Rejected[0], c.want) {
				t.Fatalf("rejected %v, want %v", res.Rejected, c.want)
			}
		})
	}
	if string(l.Digest()) != string(before) {
		t.Fatal("refused ops changed the state")
	}
}

// impostorOp re-encodes op with the author field set to another device,
// keeping the original signature.
func impostorOp(t *testing.T, op *Op, as *actor) []byte {
	t.Helper()
	var w wireOp
	if err := decMode.Unmarshal(op.Raw, &w); err != nil {
		t.Fatal(err)
	}
	w.Author = []byte(as.did)
	raw, err := encMode.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestEquivocation: two ops with one author sequence are reported; both
// branches are kept and past valid ops stay valid; an op by that device that
// has both in its past is refused.
func TestEquivocation(t *testing.T) {
	l, _, m := team(t, RoleOrganizer)
	r := fork(t, l)
	a := must(t, l, m[0], CreateFolder{Name: "left"})
	b := must(t, r, m[0], CreateFolder{Name: "right"})
	if a.Seq != b.Seq {
		t.Fatal("test setup: sequences differ")
	}
	converge(t, l, r)
	forks := l.Forks()
	if len(forks) != 1 || forks[0].Device != m[0].did || forks[0].Seq != a.Seq {
		t.Fatalf("forks %+v", forks)
	}
	if status(t, l, a) != nil || status(t, l, b) != nil {
		t.Fatal("fork branches voided")
	}
	if _, err := l.Append(m[0].dev, CreateFolder{Name: "after"}, 0); !errors.Is(err, ErrEquivocated) {
		t.Fatalf("op after fork: %v", err)
	}
}

// TestLoadAndDelete: a log rebuilt from its store equals the original;
// nothing is valid after the share is deleted.
func TestLoadAndDelete(t *testing.T) {
	store := NewMemStore()
	f := newActor(t, "f")
	l, err := NewFolder(f.dev, Genesis{Name: "s", Founders: []DeviceCert{f.cert}}, 0, store)
	if err != nil {
		t.Fatal(err)
	}
	x := newActor(t, "x")
	must(t, l, f, Grant{Principal: UserPrincipal(x.uid), Role: RoleEditor})
	must(t, l, f, CreateFolder{Name: "a"})
	back, err := Load(store)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.Digest()) != string(l.Digest()) || !back.Folder().Equals(l.Folder()) || back.Len() != 3 {
		t.Fatal("loaded log differs")
	}
	if _, err := Load(NewMemStore()); !errors.Is(err, ErrNoGenesis) {
		t.Fatalf("empty store: %v", err)
	}
	must(t, l, f, DeleteShare{})
	if !l.Deleted() || l.Can(f.uid, ActionRead, "") || len(l.Members("")) != 0 {
		t.Fatal("deleted share still grants")
	}
	if err := refused(t, l, f, CreateFolder{Name: "b"}); !errors.Is(err, ErrShareDeleted) {
		t.Fatalf("after delete: %v", err)
	}
}

// TestOpIDIsBlake3Multihash: an op's ID is the standard CIDv1 (dag-cbor) of
// the BLAKE3-256 multihash of its bytes, as go-multihash computes it.
func TestOpIDIsBlake3Multihash(t *testing.T) {
	l, _, _ := team(t, RoleViewer)
	for _, raw := range append(l.OpsSince(nil), nil, make([]byte, 5000)) {
		h, err := mh.Sum(raw, mh.BLAKE3, 32)
		if err != nil {
			t.Fatal(err)
		}
		if want := cid.NewCidV1(cid.DagCBOR, h); !opCID(raw).Equals(want) {
			t.Fatalf("ID %s, want %s", opCID(raw), want)
		}
	}
}
