package crdt

import (
	"bytes"
	"errors"
	"testing"
)

// TestInvitationReplayAfterLostUse reproduces the invitation-replay
// simulation finding (seeds 39, 160, 200): a one-use invitation, two
// concurrent joins A < B (by ID), so B loses the use to A; a holder of the
// invitation key who has seen B (and not A) replays the invitation with a
// join R whose ID is smaller than A's. In R's causal past the invitation is
// used up (by B), so R must be refused; before the fix B's loss took it out
// of R's valid past, R became admissible, took the use with its smaller ID
// and displaced the legitimate A. Every replica, whatever order it merges
// in, must keep A and refuse B and R.
func TestInvitationReplayAfterLostUse(t *testing.T) {
	l, _, m := team(t, RoleManager)
	inv, key := newInvite(t, l, m[0], "one", CreateInvite{Role: RoleEditor, MaxUses: 1})
	r1, r2 := fork(t, l), fork(t, l)
	x, y, adv := newActor(t, "x"), newActor(t, "y"), newActor(t, "replayer")
	jx := must(t, r1, x, joinBody(t, r1, key, inv, x))
	jy := must(t, r2, y, joinBody(t, r2, key, inv, y))
	a, b, ra, rb := jx, jy, r1, r2
	if bytes.Compare(a.ID.Bytes(), b.ID.Bytes()) > 0 {
		a, b, ra, rb = jy, jx, r2, r1
	}
	// The replayer sees B only: the invitation is used up in its view, and
	// the log refuses to append the replay there.
	radv := fork(t, rb)
	if err := refused(t, radv, adv, joinBody(t, radv, key, inv, adv)); !errors.Is(err, ErrInviteUnusable) {
		t.Fatalf("replay on the replayer's own replica: %v", err)
	}
	// It builds the replay anyway, with a time picked so its ID sorts
	// before A's.
	var r *Op
	for tm := int64(2000); r == nil; tm++ {
		op, err := radv.Build(adv.dev, joinBody(t, radv, key, inv, adv), tm)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Compare(op.ID.Bytes(), a.ID.Bytes()) < 0 {
			r = op
		}
		if tm > 2200 {
			t.Fatal("no replay ID below A's in 200 tries")
		}
	}
	if _, err := radv.Merge([][]byte{r.Raw}); err != nil {
		t.Fatal(err)
	}
	check := func(name string, lg *Log) {
		t.Helper()
		if err := status(t, lg, a); err != nil {
			t.Errorf("%s: the first join A lost its use: %v", name, err)
		}
		if err := status(t, lg, b); !errors.Is(err, ErrInviteUnusable) {
			t.Errorf("%s: the concurrent join B: %v, want it to lose the use", name, err)
		}
		if err := status(t, lg, r); !errors.Is(err, ErrInviteUnusable) {
			t.Errorf("%s: the replay after the use count was reached is valid (%v)", name, err)
		}
		if lg.Can(adv.uid, ActionWrite, "x") {
			t.Errorf("%s: the replayer got the invitation's rights", name)
		}
		if !lg.Can(x.uid, ActionWrite, "x") && !lg.Can(y.uid, ActionWrite, "x") {
			t.Errorf("%s: no invitee got the invitation's rights", name)
		}
	}
	// Merge orders: the replay before A, A before the replay, all at once.
	first := fork(t, ra)
	sync(t, first, radv)
	check("A's replica, then the replay", first)
	second := fork(t, radv)
	sync(t, second, ra)
	check("the replayer's replica, then A", second)
	fresh := fork(t, l)
	raws := append(append([][]byte{}, a.Raw, b.Raw), r.Raw)
	if _, err := fresh.Merge(raws); err != nil {
		t.Fatal(err)
	}
	check("everything at once", fresh)
	converge(t, first, second, fresh, l, ra, rb, radv)
	check("converged", l)
}
