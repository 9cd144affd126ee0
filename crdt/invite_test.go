package crdt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func joinBody(t *testing.T, l *Log, key crypto.PrivKey, inv InviteID, who *actor) Join {
	t.Helper()
	proof, err := InviteProof(key, l.Folder(), inv, who.cert)
	if err != nil {
		t.Fatal(err)
	}
	return Join{Invite: inv, Cert: who.cert, Proof: proof}
}

func newInvite(t *testing.T, l *Log, by *actor, seed string, ci CreateInvite) (InviteID, crypto.PrivKey) {
	t.Helper()
	key := seededKey(t, "invite:"+seed)
	ci.Key = inviteKeyBytes(t, seed)
	return RefOf(must(t, l, by, ci).ID), key
}

// TestInvitations: only the public key is in the log; the joiner proves it
// by signing its own identity; uses are counted; expired, revoked and used-up
// invitations are refused everywhere.
func TestInvitations(t *testing.T) {
	l, f, m := team(t, RoleManager)
	docs := mkdir(t, l, f, RootNode, "docs")
	joiner, thief := newActor(t, "joiner"), newActor(t, "thief")

	inv, key := newInvite(t, l, m[0], "one", CreateInvite{Role: RoleEditor, Node: docs, MaxUses: 1, ExpiresAt: 5000})
	if got := l.Invites(); len(got) != 1 || got[0].Role != RoleEditor || got[0].Uses != 0 {
		t.Fatalf("invites %+v", got)
	}
	// A proof is bound to the joiner: the thief cannot reuse it.
	jb := joinBody(t, l, key, inv, joiner)
	stolen := jb
	stolen.Cert = thief.cert
	if err := refused(t, l, thief, stolen); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("stolen proof: %v", err)
	}
	// A proof by another key fails.
	wrong := joinBody(t, l, seededKey(t, "invite:other"), inv, joiner)
	refused(t, l, joiner, wrong)
	// Expiry hint is checked against the join's time, the same everywhere.
	if _, err := l.Append(joiner.dev, jb, 6000); !errors.Is(err, ErrInviteUnusable) {
		t.Fatalf("expired: %v", err)
	}
	must(t, l, joiner, jb)
	if !l.Can(joiner.uid, ActionWrite, "docs/a") || l.Can(joiner.uid, ActionRead, "a") {
		t.Fatal("joiner's rights are not the invitation's")
	}
	if len(l.Invites()) != 0 {
		t.Fatal("used-up invitation still live")
	}
	// Used up: a replay (new op, same invitation) is refused.
	again := newActor(t, "again")
	if err := refused(t, l, again, joinBody(t, l, key, inv, again)); !errors.Is(err, ErrInviteUnusable) {
		t.Fatalf("replay: %v", err)
	}

	// Revoked invitations are refused.
	inv2, key2 := newInvite(t, l, m[0], "two", CreateInvite{Role: RoleViewer, MaxUses: 3})
	must(t, l, m[0], RevokeInvite{Invite: inv2})
	if err := refused(t, l, again, joinBody(t, l, key2, inv2, again)); !errors.Is(err, ErrInviteUnusable) {
		t.Fatalf("revoked: %v", err)
	}
	// Strictly below: a manager cannot invite a manager.
	ci := CreateInvite{Key: inviteKeyBytes(t, "x"), Role: RoleManager, MaxUses: 1}
	refused(t, l, m[0], ci)
	if got := l.ExpiredInvites(0); len(got) != 0 {
		t.Fatalf("expired at 0: %v", got)
	}
}

// TestInvitationConcurrency: concurrent over-use keeps the smallest IDs
// (R11); a revoke or an issuer revocation concurrent with a join voids it.
// (TestExhaustiveOrders "I8 R11" covers smallest IDs against Lamport order.)
func TestInvitationConcurrency(t *testing.T) {
	t.Run("over-use keeps the smallest IDs", func(t *testing.T) {
		l, _, m := team(t, RoleManager)
		inv, key := newInvite(t, l, m[0], "one", CreateInvite{Role: RoleViewer, MaxUses: 2})
		r1, r2 := fork(t, l), fork(t, l)
		x, y, z := newActor(t, "x"), newActor(t, "y"), newActor(t, "z")
		jx := must(t, l, x, joinBody(t, l, key, inv, x))
		jy := must(t, r1, y, joinBody(t, r1, key, inv, y))
		jz := must(t, r2, z, joinBody(t, r2, key, inv, z))
		converge(t, l, r1, r2)
		joins := []*Op{jx, jy, jz}
		valid := 0
		var loser *Op
		for _, j := range joins {
			if status(t, l, j) == nil {
				valid++
			} else {
				loser = j
			}
		}
		if valid != 2 {
			t.Fatalf("%d joins valid, want 2", valid)
		}
		for _, j := range joins {
			if j != loser && bytes.Compare(loser.ID.Bytes(), j.ID.Bytes()) < 0 {
				t.Fatal("a join with a larger ID won over a smaller one")
			}
		}
	})
	t.Run("revoke concurrent with join voids the join", func(t *testing.T) {
		l, _, m := team(t, RoleManager)
		inv, key := newInvite(t, l, m[0], "one", CreateInvite{Role: RoleViewer, MaxUses: 2})
		r := fork(t, l)
		x := newActor(t, "x")
		must(t, l, m[0], RevokeInvite{Invite: inv})
		j := must(t, r, x, joinBody(t, r, key, inv, x))
		converge(t, l, r)
		if err := status(t, l, j); !errors.Is(err, ErrVoided) {
			t.Fatalf("join: %v", err)
		}
	})
	t.Run("issuer revoked concurrently voids the join", func(t *testing.T) {
		l, f, m := team(t, RoleManager)
		inv, key := newInvite(t, l, m[0], "one", CreateInvite{Role: RoleViewer, MaxUses: 2})
		r := fork(t, l)
		x := newActor(t, "x")
		must(t, l, f, Revoke{Principal: UserPrincipal(m[0].uid)})
		j := must(t, r, x, joinBody(t, r, key, inv, x))
		converge(t, l, r)
		if err := status(t, l, j); err == nil {
			t.Fatal("join through a revoked issuer stands")
		}
		if l.Can(x.uid, ActionRead, "") {
			t.Fatal("joiner reads")
		}
	})
}

// TestAccessRequests: approval-required invitations and plain requests;
// approve grants, deny refuses, concurrent deny wins over approve.
func TestAccessRequests(t *testing.T) {
	l, f, m := team(t, RoleManager)
	x, y := newActor(t, "x"), newActor(t, "y")
	inv, key := newInvite(t, l, m[0], "ap", CreateInvite{Role: RoleEditor, MaxUses: 5, Approval: true})
	j := must(t, l, x, joinBody(t, l, key, inv, x))
	if l.Can(x.uid, ActionRead, "") {
		t.Fatal("join needing approval granted access")
	}
	reqs := l.Requests()
	if len(reqs) != 1 || reqs[0].ID != RefOf(j.ID) || reqs[0].Invite != inv || reqs[0].Role != RoleEditor {
		t.Fatalf("requests %+v", reqs)
	}
	refused(t, l, x, Approve{Request: reqs[0].ID, Role: RoleEditor}) // not a manager
	must(t, l, m[0], Approve{Request: reqs[0].ID, Role: RoleEditor})
	if !l.Can(x.uid, ActionWrite, "f") {
		t.Fatal("approved joiner cannot write")
	}
	refused(t, l, x, CreateFolder{Parent: RootNode, Name: "nope"})

	ry := must(t, l, y, RequestAccess{Cert: y.cert, Role: RoleViewer, Note: "please"})
	must(t, l, f, Deny{Request: RefOf(ry.ID)})
	if st, _ := l.RequestStatus(RefOf(ry.ID)); st != RequestDenied || l.Can(y.uid, ActionRead, "") {
		t.Fatal("denied request")
	}
	refused(t, l, m[0], Approve{Request: RefOf(ry.ID), Role: RoleViewer})

	// An invitation needing approval may ask for a role its issuer cannot
	// grant (a manager asking for manager); only an approver who may grant
	// it can approve it as asked.
	w := newActor(t, "w")
	refused(t, l, m[0], CreateInvite{Key: inviteKeyBytes(t, "mgr-direct"), Role: RoleManager, MaxUses: 1})
	invM, keyM := newInvite(t, l, m[0], "mgr", CreateInvite{Role: RoleManager, MaxUses: 1, Approval: true})
	jw := must(t, l, w, joinBody(t, l, keyM, invM, w))
	if l.Can(w.uid, ActionRead, "") {
		t.Fatal("a join needing approval granted access")
	}
	refused(t, l, m[0], Approve{Request: RefOf(jw.ID), Role: RoleManager})
	must(t, l, f, Approve{Request: RefOf(jw.ID), Role: RoleManager})
	if l.RoleAt(w.uid, "") != RoleManager {
		t.Fatalf("approved as %s", l.RoleAt(w.uid, ""))
	}

	// Concurrent approve and deny: deny wins.
	z := newActor(t, "z")
	rz := must(t, l, z, RequestAccess{Cert: z.cert, Role: RoleViewer})
	r := fork(t, l)
	must(t, l, m[0], Approve{Request: RefOf(rz.ID), Role: RoleViewer})
	must(t, r, f, Deny{Request: RefOf(rz.ID)})
	converge(t, l, r)
	if st, _ := l.RequestStatus(RefOf(rz.ID)); st != RequestDenied || l.Can(z.uid, ActionRead, "") {
		t.Fatalf("concurrent approve/deny: %s", st)
	}
}
