package crdt

import (
	"errors"
	"fmt"
	"testing"
)

// fenceLedger remembers, per file and fence, the first request a holder saw
// holding it (the simulation's "fences never reused" check, on one test).
type fenceLedger map[string]LockID

func (fl fenceLedger) see(t *testing.T, where string, l *Log, path string) {
	t.Helper()
	h, ok := l.LockHolder(path)
	if !ok {
		return
	}
	k := fmt.Sprintf("%s|%d", path, h.Fence)
	if first, ok := fl[k]; ok && first != h.ID {
		t.Fatalf("%s: %s held with fence %d by request %s, which request %s held before", where, path, h.Fence, h.ID, first)
	}
	fl[k] = h.ID
}

// TestLockFenceSurvivesLateRelease is the lock-contention-partition seed 323
// in miniature. A requester, cut off, withdraws its request (LockRelease)
// while, elsewhere, the witnesses complete its quorum; the grant is seen,
// ends, and a second request is granted and held with the next fence. When
// the withdrawal arrives it sorts before the quorum's last ack, which then
// acks an ended request: in the converged order the first request was
// never granted. Fences numbered by grant order then renumber the second
// grant (2 -> 1) and hand fence 2 to the third: one fence, two holders.
// Fences fixed by the request's epoch (1 + the highest epoch of a request
// for the file in its causal past) do not move.
func TestLockFenceSurvivesLateRelease(t *testing.T) {
	l, _, ws, a, b := lockTeam(t)
	const p = "doc.odt"
	seen := fenceLedger{}
	ra := must(t, l, a, LockRequest{Path: p, LeaseSecs: 60})
	isolated := fork(t, l) // a's replica, cut off right after its request
	ack(t, l, ws[0], ra)
	quorum := ack(t, l, ws[1], ra)
	seen.see(t, "main, ra granted", l, p)
	if h, ok := l.LockHolder(p); !ok || h.ID != RefOf(ra.ID) || h.Fence != 1 {
		t.Fatalf("ra: holder %+v %v, want ra with fence 1", h, ok)
	}
	must(t, l, ws[0], LockExpire{Request: RefOf(ra.ID)})
	must(t, l, ws[1], LockExpire{Request: RefOf(ra.ID)})
	rb := must(t, l, b, LockRequest{Path: p, LeaseSecs: 60})
	ack(t, l, ws[0], rb)
	ack(t, l, ws[1], rb)
	seen.see(t, "main, rb granted", l, p)
	hb, ok := l.LockHolder(p)
	if !ok || hb.ID != RefOf(rb.ID) || hb.Fence != 2 {
		t.Fatalf("rb: holder %+v %v, want rb with fence 2", hb, ok)
	}
	must(t, l, b, LockRelease{Request: RefOf(rb.ID)})

	// a withdraws on its own replica, not knowing of the grant.
	rel := must(t, isolated, a, LockRelease{Request: RefOf(ra.ID)})
	if rel.Lamport >= quorum.Lamport {
		t.Fatalf("test setup: the withdrawal (Lamport %d) must sort before the quorum's last ack (%d)", rel.Lamport, quorum.Lamport)
	}
	sync(t, l, isolated)
	for _, lk := range l.Snapshot().Locks {
		if lk.ID == RefOf(rb.ID) && (!lk.Granted || lk.Fence != 2) {
			t.Fatalf("after the late release rb is granted=%v with fence %d; its holder acted on fence 2", lk.Granted, lk.Fence)
		}
	}
	rc := must(t, l, a, LockRequest{Path: p, LeaseSecs: 60})
	ack(t, l, ws[1], rc)
	ack(t, l, ws[2], rc)
	seen.see(t, "converged, rc granted", l, p)
	if h, ok := l.LockHolder(p); !ok || h.ID != RefOf(rc.ID) || h.Fence <= 2 {
		t.Fatalf("rc: holder %+v %v, want rc with a fence above 2", h, ok)
	}
	for _, r := range []*Log{l, isolated} {
		if r != l {
			sync(t, l, r)
		}
		seen.see(t, "replica", r, p)
	}
}

// TestLockEpochAcks: a witness acks a request only if its epoch is above
// every epoch it acked for the file before, so two requests with one epoch
// (made concurrently) never both get a quorum, even after the first ends.
func TestLockEpochAcks(t *testing.T) {
	l, _, ws, a, b := lockTeam(t)
	const p = "doc.odt"
	r2 := fork(t, l)
	ra := must(t, l, a, LockRequest{Path: p, LeaseSecs: 60})
	rb := must(t, r2, b, LockRequest{Path: p, LeaseSecs: 60}) // concurrent: the same epoch
	sync(t, l, r2)
	ack(t, l, ws[0], ra)
	ack(t, l, ws[1], ra)
	if h, ok := l.LockHolder(p); !ok || h.ID != RefOf(ra.ID) || h.Fence != 1 {
		t.Fatalf("ra: holder %+v %v", h, ok)
	}
	must(t, l, a, LockRelease{Request: RefOf(ra.ID)})
	if err := refused(t, l, ws[0], LockAck{Request: RefOf(rb.ID)}); !errors.Is(err, ErrLockStale) {
		t.Fatalf("ack of an epoch the witness already acked: %v, want ErrLockStale", err)
	}
	ack(t, l, ws[2], rb) // w3 acked nothing: fine, but one ack is no quorum
	if _, ok := l.LockHolder(p); ok {
		t.Fatal("granted without a quorum")
	}
	// b asks again, after seeing both: epoch 2, which everyone may ack.
	must(t, l, b, LockRelease{Request: RefOf(rb.ID)})
	rb2 := must(t, l, b, LockRequest{Path: p, LeaseSecs: 60})
	ack(t, l, ws[0], rb2)
	ack(t, l, ws[2], rb2)
	if h, ok := l.LockHolder(p); !ok || h.ID != RefOf(rb2.ID) || h.Fence != 2 {
		t.Fatalf("rb2: holder %+v %v, want fence 2", h, ok)
	}
}

// TestLockEpochIgnoresVoidedRequests: a request's epoch counts every lock
// request in its causal past, valid or not. A request voided later (its
// requester's edit right was revoked concurrently, D1) must not lower the
// epochs, and so the fences, of the requests made after it: b held fence 2
// before the revocation arrived.
func TestLockEpochIgnoresVoidedRequests(t *testing.T) {
	l, f, ws, a, b := lockTeam(t)
	const p = "doc.odt"
	rv := fork(t, l)
	must(t, rv, f, Revoke{Principal: UserPrincipal(a.uid)})
	ra := must(t, l, a, LockRequest{Path: p, LeaseSecs: 60}) // concurrent with the revocation
	rb := must(t, l, b, LockRequest{Path: p, LeaseSecs: 60})
	ack(t, l, ws[0], rb)
	ack(t, l, ws[1], rb)
	if h, ok := l.LockHolder(p); !ok || h.ID != RefOf(rb.ID) || h.Fence != 2 {
		t.Fatalf("rb: holder %+v %v, want rb with fence 2", h, ok)
	}
	sync(t, l, rv)
	if valid, _, _ := l.Status(ra.ID); valid {
		t.Fatal("test setup: a's request should be voided by the concurrent revocation")
	}
	if h, ok := l.LockHolder(p); !ok || h.ID != RefOf(rb.ID) || h.Fence != 2 {
		t.Fatalf("after a's request was voided: holder %+v %v, want rb still with fence 2", h, ok)
	}
}

// TestLockAckFloorCountsVoidedAcks: a witness that acked an epoch may not ack
// another request with that epoch even when its first ack is voided later
// (the request's requester was revoked concurrently): a replica granted the
// first request with fence 1 before the revocation arrived, so granting the
// other with fence 1 would hand one fence to two holders.
func TestLockAckFloorCountsVoidedAcks(t *testing.T) {
	l, f, ws, a, b := lockTeam(t)
	const p = "doc.odt"
	rv := fork(t, l)
	must(t, rv, f, Revoke{Principal: UserPrincipal(a.uid)})
	r2 := fork(t, l)
	rb := must(t, r2, b, LockRequest{Path: p, LeaseSecs: 60}) // epoch 1, concurrent with a's
	ra := must(t, l, a, LockRequest{Path: p, LeaseSecs: 60})  // epoch 1, concurrent with the revocation
	ack(t, l, ws[0], ra)
	ack(t, l, ws[1], ra)
	seen := fenceLedger{}
	seen.see(t, "a granted", l, p)
	sync(t, l, r2, rv)
	if valid, _, _ := l.Status(ra.ID); valid {
		t.Fatal("test setup: a's request should be voided by the concurrent revocation")
	}
	if err := refused(t, l, ws[0], LockAck{Request: RefOf(rb.ID)}); !errors.Is(err, ErrLockStale) {
		t.Fatalf("ack of epoch 1 by a witness whose (voided) ack of epoch 1 is in its past: %v, want ErrLockStale", err)
	}
	ack(t, l, ws[2], rb)
	seen.see(t, "after the revocation", l, p)
	if h, ok := l.LockHolder(p); ok {
		t.Fatalf("b granted with fence %d on one ack", h.Fence)
	}
}
