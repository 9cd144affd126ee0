package crdt

import "testing"

func TestSmoke(t *testing.T) {
	alice, bob := newActor(t, "alice"), newActor(t, "bob")
	l := newTestFolder(t, alice)
	if !l.Can(alice.uid, ActionDeleteShare, "x/y") {
		t.Fatal("founder cannot")
	}
	docs := mkdir(t, l, alice, RootNode, "docs")
	must(t, l, alice, Grant{Principal: UserPrincipal(bob.uid), Node: docs, Role: RoleEditor})
	must(t, l, bob, AddDevice{Cert: bob.cert})
	if !l.Can(bob.uid, ActionWrite, "docs/a.txt") || l.Can(bob.uid, ActionWrite, "other/a.txt") {
		t.Fatal("bob rights wrong")
	}
	r := fork(t, l)
	if string(r.Digest()) != string(l.Digest()) {
		t.Fatal("digest differs")
	}
	// concurrent: alice revokes bob on l; bob creates a folder on r
	must(t, l, alice, Revoke{Principal: UserPrincipal(bob.uid), Node: docs})
	refused(t, r, bob, CreateFolder{Parent: docs, Name: "x"}) // editor can't organize
	must(t, r, bob, LockRequest{Path: "docs/a.txt", LeaseSecs: 60})
	sync(t, l, r)
	if string(r.Digest()) != string(l.Digest()) {
		t.Fatal("digest differs after sync")
	}
	if l.Can(bob.uid, ActionRead, "docs/a.txt") {
		t.Fatal("bob still reads")
	}
	t.Logf("rounds %d snapshot locks %+v", l.Rounds(), l.Snapshot().Locks)
}
