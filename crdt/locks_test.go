package crdt

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
)

// lockTeam is a folder with three witness devices (of the founder) and two editors.
func lockTeam(t *testing.T) (l *Log, f *actor, ws []*actor, a, b *actor) {
	t.Helper()
	l, f, m := team(t, RoleEditor, RoleEditor)
	var ids []UserID
	for _, n := range []string{"w1", "w2", "w3"} {
		w := f.secondDevice(t, n)
		must(t, l, w, AddDevice{Cert: w.cert})
		ws = append(ws, w)
		ids = append(ids, w.did)
	}
	must(t, l, f, DeclareWitnesses{Devices: ids})
	return l, f, ws, m[0], m[1]
}

func ack(t *testing.T, l *Log, w *actor, req *Op) *Op {
	t.Helper()
	return must(t, l, w, LockAck{Request: RefOf(req.ID)})
}

// TestLocks: majority of witnesses grants; fences strictly increase; a
// witness acks one live request per file; release, break and majority expiry
// end a lock; losing edit rights ends it too.
func TestLocks(t *testing.T) {
	l, f, ws, a, b := lockTeam(t)
	ra := must(t, l, a, LockRequest{Path: "doc.odt", LeaseSecs: 600})
	rb := must(t, l, b, LockRequest{Path: "doc.odt", LeaseSecs: 600})
	ack(t, l, ws[0], ra)
	if _, ok := l.LockHolder("doc.odt"); ok {
		t.Fatal("granted with 1 of 3 acks")
	}
	ack(t, l, ws[1], ra)
	h, ok := l.LockHolder("doc.odt")
	if !ok || h.User != a.uid || h.Fence != 1 {
		t.Fatalf("holder %+v %v", h, ok)
	}
	if !l.Can(a.uid, ActionWrite, "doc.odt") || l.Can(b.uid, ActionWrite, "doc.odt") || !l.Can(b.uid, ActionRead, "doc.odt") {
		t.Fatal("locked file is not read-only for others")
	}
	if err := refused(t, l, ws[0], LockAck{Request: RefOf(rb.ID)}); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("second live ack: %v", err)
	}
	ack(t, l, ws[2], rb) // a minority for b: no grant while a holds it
	if h, _ := l.LockHolder("doc.odt"); h.User != a.uid {
		t.Fatal("second grant while held")
	}
	must(t, l, a, LockRelease{Request: RefOf(ra.ID)})
	if _, ok := l.LockHolder("doc.odt"); ok {
		t.Fatal("released lock still held")
	}
	ack(t, l, ws[0], rb)
	h, ok = l.LockHolder("doc.odt")
	if !ok || h.User != b.uid || h.Fence != 2 {
		t.Fatalf("holder %+v", h)
	}
	// Expiry: a witness's own clock turns into ops; a majority ends the lock.
	if got := l.ExpiredLeases(h.Time + 601*1000); len(got) != 1 || got[0].ID != h.ID {
		t.Fatalf("expired leases %+v", got)
	}
	must(t, l, ws[0], LockExpire{Request: h.ID})
	if _, ok := l.LockHolder("doc.odt"); !ok {
		t.Fatal("one witness's expiry ended the lock")
	}
	must(t, l, ws[2], LockExpire{Request: h.ID})
	if _, ok := l.LockHolder("doc.odt"); ok {
		t.Fatal("majority expiry did not end the lock")
	}
	// Break by a manager; editors may not break.
	rc := must(t, l, a, LockRequest{Path: "doc.odt", LeaseSecs: 60})
	ack(t, l, ws[0], rc)
	ack(t, l, ws[2], rc)
	if h, _ := l.LockHolder("doc.odt"); h.Fence != 3 {
		t.Fatalf("fence %d, want 3", h.Fence)
	}
	refused(t, l, b, LockBreak{Request: RefOf(rc.ID)})
	must(t, l, f, LockBreak{Request: RefOf(rc.ID)})
	if _, ok := l.LockHolder("doc.odt"); ok {
		t.Fatal("broken lock still held")
	}
	// Losing edit rights releases the lock.
	rd := must(t, l, b, LockRequest{Path: "doc.odt", LeaseSecs: 60})
	ack(t, l, ws[1], rd)
	ack(t, l, ws[2], rd)
	if _, ok := l.LockHolder("doc.odt"); !ok {
		t.Fatal("not granted")
	}
	must(t, l, f, ChangeRole{Principal: UserPrincipal(b.uid), Role: RoleViewer})
	if _, ok := l.LockHolder("doc.odt"); ok {
		t.Fatal("holder without edit right still holds")
	}
	// Non-witnesses cannot ack.
	re := must(t, l, a, LockRequest{Path: "other", LeaseSecs: 60})
	refused(t, l, a, LockAck{Request: RefOf(re.ID)})
}

// TestVersionVerdict: Accept / Reject / Quarantine / ConflictCopy for
// incoming file versions.
func TestVersionVerdict(t *testing.T) {
	l, f, ws, a, b := lockTeam(t)
	viewer := newActor(t, "viewer")
	must(t, l, f, Grant{Principal: UserPrincipal(viewer.uid), Role: RoleViewer})
	must(t, l, viewer, AddDevice{Cert: viewer.cert})
	heads0 := l.Heads()
	check := func(who *actor, heads []cid.Cid, path string, fence uint64, want Verdict) {
		t.Helper()
		got, err := l.VersionVerdict(who.did, heads, path, fence)
		if err != nil || got != want {
			t.Fatalf("%s %s fence %d: %v %v, want %v", who.name, path, fence, got, err, want)
		}
	}
	check(a, heads0, "x.txt", 0, VerdictAccept)
	check(viewer, heads0, "x.txt", 0, VerdictReject)

	// a is revoked on another replica; a's version at the old heads is
	// concurrent with the revocation: quarantined.
	r := fork(t, l)
	must(t, r, f, Revoke{Principal: UserPrincipal(a.uid)})
	converge(t, l, r)
	check(a, heads0, "x.txt", 0, VerdictQuarantine)
	check(a, l.Heads(), "x.txt", 0, VerdictReject)
	check(b, heads0, "x.txt", 0, VerdictAccept)

	// b locks doc; a version of doc by someone else made with the lock in
	// its past is a conflict copy; b's own with the fence is accepted.
	must(t, l, f, Grant{Principal: UserPrincipal(a.uid), Role: RoleEditor})
	rq := must(t, l, b, LockRequest{Path: "doc", LeaseSecs: 60})
	ack(t, l, ws[0], rq)
	ack(t, l, ws[1], rq)
	locked := l.Heads()
	check(a, locked, "doc", 0, VerdictConflictCopy)
	check(b, locked, "doc", 1, VerdictAccept)
	check(b, locked, "doc", 0, VerdictConflictCopy)
	check(a, locked, "doc", 1, VerdictConflictCopy)
	check(a, locked, "other", 0, VerdictAccept)
	// Released: versions made after it are fine; b's fence is now stale.
	must(t, l, b, LockRelease{Request: RefOf(rq.ID)})
	check(a, l.Heads(), "doc", 0, VerdictAccept)
	check(b, l.Heads(), "doc", 1, VerdictConflictCopy)
	// A version written before the lock was granted, not knowing it, is
	// concurrent with nothing: accepted.
	check(b, heads0, "doc", 0, VerdictAccept)
	if _, err := l.VersionVerdict(a.did, []cid.Cid{opCID([]byte("nowhere"))}, "doc", 0); !errors.Is(err, ErrUnknownHeads) {
		t.Fatalf("unknown heads: %v", err)
	}
}
