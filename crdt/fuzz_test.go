package crdt

import (
	"bytes"
	"testing"
)

// everyKind builds a log holding at least one valid op of every kind and
// returns it with its encoded ops: the seed corpus of the fuzz tests.
func everyKind(tb testing.TB) (*Log, [][]byte) {
	tb.Helper()
	f := newActor(tb, "founder")
	l := newTestFolder(tb, f)
	m, x, y := newActor(tb, "m"), newActor(tb, "x"), newActor(tb, "y")
	must(tb, l, f, Grant{Principal: UserPrincipal(m.uid), Role: RoleManager})
	must(tb, l, m, AddDevice{Cert: m.cert})
	d2 := m.secondDevice(tb, "2")
	must(tb, l, d2, AddDevice{Cert: d2.cert})
	must(tb, l, m, RemoveDevice{Device: d2.did})
	g := RefOf(must(tb, l, f, CreateGroup{Name: "g"}).ID)
	must(tb, l, f, AddGroupMember{Group: g, User: x.uid})
	must(tb, l, f, RemoveGroupMember{Group: g, User: x.uid})
	n := mkdir(tb, l, f, RootNode, "n")
	must(tb, l, f, MoveFolder{Node: n, NewParent: RootNode, NewName: "n2"})
	must(tb, l, f, Restrict{Node: n})
	must(tb, l, f, Unrestrict{Node: n})
	must(tb, l, m, Grant{Principal: UserPrincipal(x.uid), Node: n, Role: RoleEditor})
	must(tb, l, m, ChangeRole{Principal: UserPrincipal(x.uid), Node: n, Role: RoleViewer})
	must(tb, l, m, Revoke{Principal: UserPrincipal(x.uid), Node: n})
	must(tb, l, f, SetPolicy{Policy: PolicyManagers})
	key := seededKey(tb, "invite:fz")
	inv := RefOf(must(tb, l, m, CreateInvite{Key: inviteKeyBytes(tb, "fz"), Role: RoleEditor, MaxUses: 2}).ID)
	proof, err := InviteProof(key, l.Folder(), inv, x.cert)
	if err != nil {
		tb.Fatal(err)
	}
	must(tb, l, x, Join{Invite: inv, Cert: x.cert, Proof: proof})
	must(tb, l, m, RevokeInvite{Invite: inv})
	ry := RefOf(must(tb, l, y, RequestAccess{Cert: y.cert, Role: RoleViewer, Note: "hi"}).ID)
	must(tb, l, m, Approve{Request: ry, Role: RoleViewer})
	z := newActor(tb, "z")
	rz := RefOf(must(tb, l, z, RequestAccess{Cert: z.cert, Role: RoleViewer}).ID)
	must(tb, l, m, Deny{Request: rz})
	must(tb, l, f, DeclareWitnesses{Devices: []UserID{f.did}})
	lk := RefOf(must(tb, l, x, LockRequest{Path: "a/b", LeaseSecs: 30}).ID)
	must(tb, l, f, LockAck{Request: lk})
	must(tb, l, f, LockExpire{Request: lk})
	lk2 := RefOf(must(tb, l, x, LockRequest{Path: "a/b", LeaseSecs: 30}).ID)
	must(tb, l, f, LockAck{Request: lk2})
	must(tb, l, f, LockBreak{Request: lk2})
	lk3 := RefOf(must(tb, l, x, LockRequest{Path: "a/b", LeaseSecs: 30}).ID)
	must(tb, l, x, LockRelease{Request: lk3})
	lnk := RefOf(must(tb, l, m, CreateLink{Path: "n2", Role: RoleViewer, DownloadLimit: 3}).ID)
	must(tb, l, m, SuspendLink{Link: lnk})
	must(tb, l, m, ResumeLink{Link: lnk})
	must(tb, l, x, LinkDownload{Link: lnk})
	must(tb, l, m, RevokeLink{Link: lnk})
	must(tb, l, y, Renounce{Node: RootNode})
	must(tb, l, f, DeleteFolder{Node: n})
	must(tb, l, f, DeleteShare{})
	return l, l.OpsSince(nil)
}

func TestEveryKindCovered(t *testing.T) {
	_, raws := everyKind(t)
	seen := map[Kind]bool{}
	for _, raw := range raws {
		op, err := DecodeOp(raw)
		if err != nil {
			t.Fatal(err)
		}
		seen[op.Kind] = true
	}
	for k := range kindNames {
		if !seen[k] {
			t.Errorf("no %s op in the corpus", k)
		}
	}
}

// FuzzDecodeOp: any bytes either fail to decode with an error or decode to an
// op whose canonical encoding is exactly the input.
func FuzzDecodeOp(f *testing.F) {
	_, raws := everyKind(f)
	for _, raw := range raws {
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		op, err := DecodeOp(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(op.Raw, raw) || !op.ID.Equals(opCID(raw)) {
			t.Fatal("decoded op does not keep its bytes and ID")
		}
		again, err := DecodeOp(op.Raw)
		if err != nil || !again.ID.Equals(op.ID) || again.Kind != op.Kind {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

// FuzzMerge: a log fed arbitrary bytes never panics, and its state changes
// only if an op was added.
func FuzzMerge(f *testing.F) {
	_, raws := everyKind(f)
	for _, raw := range raws[1:] {
		f.Add(raw)
	}
	var l *Log
	var before []byte
	f.Fuzz(func(t *testing.T, raw []byte) {
		if l == nil {
			l, _ = everyKindCached(t)
			before = l.Digest()
		}
		res, err := l.Merge([][]byte{raw})
		if err != nil {
			t.Fatal(err)
		}
		if res.Added > 0 || res.Pending > 0 {
			l = nil // changed: start from a fresh log next time
			return
		}
		if !bytes.Equal(before, l.Digest()) {
			t.Fatal("state changed without an added op")
		}
	})
}

var fuzzCache [][]byte

// everyKindCached rebuilds the corpus log from its ops (cheaper than signing).
func everyKindCached(t *testing.T) (*Log, [][]byte) {
	if fuzzCache == nil {
		_, fuzzCache = everyKind(t)
	}
	l, err := New(fuzzCache[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Merge(fuzzCache[1:4]); err != nil {
		t.Fatal(err)
	}
	return l, fuzzCache
}

// FuzzLoad: a store holding arbitrary bytes gives an error or a log, never a panic.
func FuzzLoad(f *testing.F) {
	_, raws := everyKind(f)
	f.Add(raws[0], raws[1])
	f.Add([]byte{0xa0}, raws[2])
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := NewMemStore()
		_ = s.Put([]byte("a"), a)
		_ = s.Put([]byte("b"), b)
		l, err := Load(s)
		if err == nil && l.Len() < 1 {
			t.Fatal("loaded an empty log")
		}
	})
}
