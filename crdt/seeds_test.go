package crdt

import "testing"

// Seed: Dropbox team space with a restricted "Design" folder. The team sees
// the Design folder's name but not its content; the designers inside it and
// the team admin keep access; the rest of the space stays shared.
func TestSeedDropboxRestrictedDesign(t *testing.T) {
	admin := newActor(t, "admin")
	l := newTestFolder(t, admin)
	space := mkdir(t, l, admin, RootNode, "Team Space")
	design := mkdir(t, l, admin, space, "Design")
	dev, designer, lead := newActor(t, "dev"), newActor(t, "designer"), newActor(t, "lead")
	everyone := RefOf(must(t, l, admin, CreateGroup{Name: "Everyone"}).ID)
	for _, u := range []*actor{dev, designer, lead} {
		must(t, l, admin, AddGroupMember{Group: everyone, User: u.uid})
	}
	must(t, l, admin, Grant{Principal: GroupPrincipal(everyone), Node: space, Role: RoleEditor})
	must(t, l, admin, Grant{Principal: UserPrincipal(lead.uid), Node: space, Role: RoleManager})
	must(t, l, lead, AddDevice{Cert: lead.cert})
	must(t, l, admin, Restrict{Node: design})
	must(t, l, lead, Grant{Principal: UserPrincipal(designer.uid), Node: design, Role: RoleEditor})
	cases := []struct {
		who    *actor
		action Action
		path   string
		want   bool
	}{
		{dev, ActionWrite, "Team Space/roadmap.md", true},
		{dev, ActionSeeName, "Team Space/Design", true},
		{dev, ActionRead, "Team Space/Design/logo.svg", false},
		{designer, ActionWrite, "Team Space/Design/logo.svg", true},
		{designer, ActionWrite, "Team Space/roadmap.md", true},
		{lead, ActionRead, "Team Space/Design/logo.svg", false}, // manages membership, not content
		{lead, ActionManage, "Team Space/Design", true},
		{admin, ActionRead, "Team Space/Design/logo.svg", true},
	}
	for _, c := range cases {
		if got := l.Can(c.who.uid, c.action, c.path); got != c.want {
			t.Errorf("%s %s %s = %v, want %v", c.who.name, c.action, c.path, got, c.want)
		}
	}
	var inside []string
	for _, m := range l.Members("Team Space/Design/logo.svg") {
		inside = append(inside, m.Role.String())
	}
	if len(inside) != 2 { // founder admin + designer
		t.Fatalf("members of Design: %v", inside)
	}
}

// Seed: Oodrive-style lock/unlock. While Alice holds the lock the file is
// read-only for everyone else; Bob's edit meanwhile becomes a conflict copy;
// after unlock Bob may write again.
func TestSeedOodriveLock(t *testing.T) {
	l, _, ws, alice, bob := lockTeam(t)
	req := must(t, l, alice, LockRequest{Path: "contracts/offer.docx", LeaseSecs: 3600})
	ack(t, l, ws[0], req)
	ack(t, l, ws[2], req)
	h, ok := l.LockHolder("contracts/offer.docx")
	if !ok || h.User != alice.uid {
		t.Fatal("not locked by alice")
	}
	if l.Can(bob.uid, ActionWrite, "contracts/offer.docx") || !l.Can(bob.uid, ActionRead, "contracts/offer.docx") {
		t.Fatal("locked file is not read-only for bob")
	}
	if v, _ := l.VersionVerdict(bob.did, l.Heads(), "contracts/offer.docx", 0); v != VerdictConflictCopy {
		t.Fatalf("bob's edit: %v", v)
	}
	if v, _ := l.VersionVerdict(alice.did, l.Heads(), "contracts/offer.docx", h.Fence); v != VerdictAccept {
		t.Fatalf("alice's edit: %v", v)
	}
	must(t, l, alice, LockRelease{Request: h.ID})
	if !l.Can(bob.uid, ActionWrite, "contracts/offer.docx") {
		t.Fatal("unlocked file still read-only")
	}
}

// Seed: a view link and an edit link, with a password, suspended and revoked.
func TestSeedShareLinks(t *testing.T) {
	l, f, m := team(t, RoleManager, RoleEditor)
	salt := []byte("0123456789abcdef")
	ver, err := LinkVerifier("hunter2", salt)
	if err != nil {
		t.Fatal(err)
	}
	view := RefOf(must(t, l, m[0], CreateLink{Path: "report.pdf", Role: RoleViewer, Salt: salt, Verifier: ver, DownloadLimit: 10}).ID)
	edit := RefOf(must(t, l, m[0], CreateLink{Path: "drafts", Role: RoleEditor, ExpiresAt: 9000}).ID)
	refused(t, l, m[1], CreateLink{Path: "x", Role: RoleViewer}) // editors cannot share under the default policy
	links := l.Links()
	if len(links) != 2 {
		t.Fatalf("links %+v", links)
	}
	byID := map[LinkID]Link{}
	for _, k := range links {
		byID[k.ID] = k
	}
	if v := byID[view]; v.Role != RoleViewer || !v.CheckPassword("hunter2") || v.CheckPassword("nope") || v.DownloadLimit != 10 {
		t.Fatalf("view link %+v", v)
	}
	if e := byID[edit]; e.Role != RoleEditor || !e.CheckPassword("") || e.ExpiresAt != 9000 {
		t.Fatalf("edit link %+v", e)
	}
	must(t, l, m[0], SuspendLink{Link: view})
	if !l.Links()[indexOf(l.Links(), view)].Suspended {
		t.Fatal("not suspended")
	}
	must(t, l, f, ResumeLink{Link: view})
	if l.Links()[indexOf(l.Links(), view)].Suspended {
		t.Fatal("not resumed")
	}
	must(t, l, m[0], RevokeLink{Link: edit})
	if len(l.Links()) != 1 {
		t.Fatal("revoked link live")
	}
	// A link dies with its creator's right to share.
	must(t, l, f, Revoke{Principal: UserPrincipal(m[0].uid)})
	if len(l.Links()) != 0 {
		t.Fatal("link outlived its creator's rights")
	}
}

func indexOf(ls []Link, id LinkID) int {
	for i, k := range ls {
		if k.ID == id {
			return i
		}
	}
	return -1
}

// Seed: a non-member asks for access; one request is approved, one denied.
func TestSeedAccessRequests(t *testing.T) {
	l, _, m := team(t, RoleManager)
	docs := mkdir(t, l, m[0], RootNode, "docs")
	_ = docs
	carol, dave := newActor(t, "carol"), newActor(t, "dave")
	rc := must(t, l, carol, RequestAccess{Cert: carol.cert, Node: docs, Role: RoleEditor, Note: "I am on the project"})
	rd := must(t, l, dave, RequestAccess{Cert: dave.cert, Node: docs, Role: RoleViewer})
	if len(l.Requests()) != 2 {
		t.Fatalf("pending %+v", l.Requests())
	}
	must(t, l, m[0], Approve{Request: RefOf(rc.ID), Role: RoleEditor})
	must(t, l, m[0], Deny{Request: RefOf(rd.ID)})
	if !l.Can(carol.uid, ActionWrite, "docs/plan.md") || l.Can(carol.uid, ActionRead, "plan.md") {
		t.Fatal("carol's access is not the approved one")
	}
	if l.Can(dave.uid, ActionRead, "docs/plan.md") || len(l.Requests()) != 0 {
		t.Fatal("dave got access or requests left pending")
	}
	// Carol's device was certified by the approval: she can act.
	must(t, l, carol, LockRequest{Path: "docs/plan.md", LeaseSecs: 60})
	refused(t, l, dave, LockRequest{Path: "docs/plan.md", LeaseSecs: 60})
}
