package crdt

import "testing"

// TestCutsDoNotChangeResults: evaluating from a cut gives the same verdicts
// and state as evaluating everything; a long-offline branch that does not
// descend from recent cuts removes them.
func TestCutsDoNotChangeResults(t *testing.T) {
	l, f, m := team(t, RoleOrganizer, RoleManager)
	l.cutEvery, l.evalCutEvery = 4, 4
	offline := fork(t, l)
	for i := 0; i < 40; i++ {
		must(t, l, m[0], CreateFolder{Name: "n"})
	}
	if len(l.cuts) < 5 {
		t.Fatalf("%d cuts after 40 linear appends", len(l.cuts))
	}
	before := len(l.cuts)
	// The offline branch revokes the organizer and does its own work.
	must(t, offline, f, Revoke{Principal: UserPrincipal(m[0].uid)})
	must(t, offline, m[1], Grant{Principal: UserPrincipal(newActor(t, "x").uid), Role: RoleViewer})
	res, err := l.Merge(offline.OpsSince(nil))
	if err != nil || len(res.Rejected) > 0 {
		t.Fatal(err, res.Rejected)
	}
	if len(l.cuts) >= before {
		t.Fatalf("cuts %d -> %d: the offline branch should have removed the recent ones", before, len(l.cuts))
	}
	// A replica that never cuts.
	ref, err := New(l.OpsSince(nil)[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	ref.cutEvery, ref.evalCutEvery = 1<<30, 1<<30
	if _, err := ref.Merge(l.OpsSince(nil)[1:]); err != nil {
		t.Fatal(err)
	}
	if string(ref.Digest()) != string(l.Digest()) {
		t.Fatal("cut evaluation differs from full evaluation")
	}
	voided := 0
	for _, e := range l.order {
		v, _, _ := ref.Status(e.op.ID)
		if v != e.valid {
			t.Fatalf("%s: valid %v with cuts, %v without", e.op.Kind, e.valid, v)
		}
		if !e.valid {
			voided++
		}
	}
	if voided != 40 {
		t.Fatalf("%d ops voided, want the 40 concurrent folder creations", voided)
	}
	// Work continues on top, and new cuts form again.
	for i := 0; i < 12; i++ {
		must(t, l, m[1], CreateGroup{Name: "g"})
	}
	if len(l.cuts) <= 1 {
		t.Fatal("no new cuts")
	}
}

// TestStateClone: a clone equals its original and shares nothing mutable.
func TestStateClone(t *testing.T) {
	l, _ := everyKind(t)
	s := l.State()
	c := s.clone()
	if string(c.Digest()) != string(s.Digest()) {
		t.Fatal("clone differs")
	}
	want := s.Digest()
	for i, e := range l.order {
		c.apply(e.op, i, func(a, b int) bool { return a < b })
	}
	c.deleted = false
	for _, n := range c.nodes {
		n.name = "changed"
	}
	for _, r := range c.reqs {
		r.acks["x"] = true
	}
	if string(s.Digest()) != string(want) {
		t.Fatal("changing the clone changed the original")
	}
}
