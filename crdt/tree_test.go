package crdt

import "testing"

// TestInheritance: a grant applies to its scope and below; a restricted
// subfolder admits only grants at or below it, plus founders; its name stays
// visible; scopes follow renames and moves; a copy takes its new place's rights.
func TestInheritance(t *testing.T) {
	f := newActor(t, "founder")
	l := newTestFolder(t, f)
	team := mkdir(t, l, f, RootNode, "team")
	design := mkdir(t, l, f, team, "design")
	sub := mkdir(t, l, f, design, "sub")
	ed, des, own := newActor(t, "editor"), newActor(t, "designer"), newActor(t, "owner")
	must(t, l, f, Grant{Principal: UserPrincipal(ed.uid), Node: team, Role: RoleEditor})
	must(t, l, f, Grant{Principal: UserPrincipal(des.uid), Node: sub, Role: RoleViewer})
	must(t, l, f, Grant{Principal: UserPrincipal(own.uid), Role: RoleOwner})
	must(t, l, own, AddDevice{Cert: own.cert})
	cases := []struct {
		name   string
		who    *actor
		path   string
		action Action
		want   bool
	}{
		{"grant applies at its scope", ed, "team/x.txt", ActionWrite, true},
		{"and below", ed, "team/design/sub/y.txt", ActionWrite, true},
		{"not above", ed, "x.txt", ActionRead, false},
		{"grant below does not go up", des, "team/design/z", ActionRead, false},
		{"grant below applies there", des, "team/design/sub/z", ActionRead, true},
	}
	run := func(stage string) {
		for _, c := range cases {
			if got := l.Can(c.who.uid, c.action, c.path); got != c.want {
				t.Errorf("%s: %s: Can(%s, %s, %s) = %v", stage, c.name, c.who.name, c.action, c.path, got)
			}
		}
	}
	run("before restriction")
	must(t, l, f, Restrict{Node: design})
	cases = []struct {
		name   string
		who    *actor
		path   string
		action Action
		want   bool
	}{
		{"restriction stops inherited grants", ed, "team/design/a", ActionRead, false},
		{"and below it", ed, "team/design/sub/a", ActionRead, false},
		{"but not beside it", ed, "team/other", ActionWrite, true},
		{"restricted name stays visible", ed, "team/design", ActionSeeName, true},
		{"grants inside still apply", des, "team/design/sub/a", ActionRead, true},
		{"owners lose it too", own, "team/design/a", ActionRead, false},
		{"founders keep everything", f, "team/design/sub/a", ActionDeleteShare, true},
		{"owner may still manage the restricted folder from above", own, "team/design", ActionManage, true},
	}
	run("restricted")
	must(t, l, own, Grant{Principal: UserPrincipal(ed.uid), Node: design, Role: RoleViewer})
	if !l.Can(ed.uid, ActionRead, "team/design/a") || l.Can(ed.uid, ActionWrite, "team/design/a") {
		t.Fatal("grant at the restriction does not apply as given")
	}
	must(t, l, f, Unrestrict{Node: design})
	if !l.Can(ed.uid, ActionWrite, "team/design/a") {
		t.Fatal("unrestrict did not restore inheritance")
	}

	// Scopes survive renames and moves.
	must(t, l, f, MoveFolder{Node: sub, NewParent: RootNode, NewName: "moved"})
	if !l.Can(des.uid, ActionRead, "moved/file") || l.Can(des.uid, ActionRead, "team/design/sub/file") {
		t.Fatal("scope did not follow its folder")
	}
	if !l.Can(ed.uid, ActionRead, "team/design/a") || l.Can(ed.uid, ActionRead, "moved/file") {
		t.Fatal("moved folder kept its old place's inherited rights")
	}
	// A copy is new nodes: it takes its new place's rights, not the original's.
	cp := mkdir(t, l, f, team, "moved-copy")
	_ = cp
	if l.Can(des.uid, ActionRead, "team/moved-copy/file") || !l.Can(ed.uid, ActionWrite, "team/moved-copy/file") {
		t.Fatal("copy did not take its new place's rights")
	}
}

// TestConcurrentMoves: concurrent moves that would make a cycle are applied
// in the total order and the cycle-making one is skipped, the same everywhere.
func TestConcurrentMoves(t *testing.T) {
	f := newActor(t, "founder")
	l := newTestFolder(t, f)
	a := mkdir(t, l, f, RootNode, "a")
	b := mkdir(t, l, f, RootNode, "b")
	r := fork(t, l)
	must(t, l, f, MoveFolder{Node: a, NewParent: b, NewName: "a"})
	d2 := f.secondDevice(t, "2")
	must(t, r, d2, AddDevice{Cert: d2.cert})
	must(t, r, d2, MoveFolder{Node: b, NewParent: a, NewName: "b"})
	converge(t, l, r)
	_, aUnderB := l.NodeAt("b/a")
	_, bUnderA := l.NodeAt("a/b")
	if aUnderB == bUnderA {
		t.Fatalf("want exactly one move applied: b/a %v a/b %v", aUnderB, bUnderA)
	}
	// Concurrent renames to the same name: both nodes exist, the first in
	// the total order owns the name.
	r2 := fork(t, l)
	x := must(t, l, f, CreateFolder{Name: "same"})
	y := must(t, r2, d2, CreateFolder{Name: "same"})
	converge(t, l, r2)
	n, _ := l.NodeAt("same")
	first := x
	if lessEntry(l.byKey[y.ID.KeyString()], l.byKey[x.ID.KeyString()]) {
		first = y
	}
	if n != RefOf(first.ID) {
		t.Fatal("name not owned by the first in total order")
	}
}

// TestMembers: Members reports each user's role and where it comes from.
func TestMembers(t *testing.T) {
	f := newActor(t, "founder")
	l := newTestFolder(t, f)
	docs := mkdir(t, l, f, RootNode, "docs")
	a, b, c := newActor(t, "a"), newActor(t, "b"), newActor(t, "c")
	must(t, l, f, Grant{Principal: UserPrincipal(a.uid), Role: RoleViewer})
	must(t, l, f, Grant{Principal: UserPrincipal(a.uid), Node: docs, Role: RoleEditor})
	must(t, l, f, Grant{Principal: UserPrincipal(b.uid), Role: RoleOrganizer})
	g := RefOf(must(t, l, f, CreateGroup{Name: "designers"}).ID)
	must(t, l, f, AddGroupMember{Group: g, User: c.uid})
	must(t, l, f, Grant{Principal: GroupPrincipal(g), Node: docs, Role: RoleManager})
	got := map[UserID]Member{}
	for _, m := range l.Members("docs/file") {
		got[m.User] = m
	}
	want := map[UserID]Member{
		f.uid: {User: f.uid, Role: RoleFounder, Founder: true},
		a.uid: {User: a.uid, Role: RoleEditor, From: docs, Here: true},
		b.uid: {User: b.uid, Role: RoleOrganizer},
		c.uid: {User: c.uid, Role: RoleManager, From: docs, Via: g, Here: true},
	}
	if len(got) != len(want) {
		t.Fatalf("members %+v", got)
	}
	for u, w := range want {
		if got[u] != w {
			t.Errorf("member %s: got %+v want %+v", u, got[u], w)
		}
	}
	// Group rights follow membership.
	must(t, l, f, RemoveGroupMember{Group: g, User: c.uid})
	if l.Can(c.uid, ActionRead, "docs") {
		t.Fatal("removed group member keeps the group's role")
	}
	// Adding members to a group needs a rank above every role the group holds.
	mgr := newActor(t, "mgr")
	must(t, l, f, Grant{Principal: UserPrincipal(mgr.uid), Role: RoleManager})
	must(t, l, mgr, AddDevice{Cert: mgr.cert})
	refused(t, l, mgr, AddGroupMember{Group: g, User: mgr.uid})
}
