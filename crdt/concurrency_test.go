package crdt

import (
	"errors"
	"testing"
)

// team builds a folder with founder f and members with the given roles at
// the root, each with a certified device.
func team(t *testing.T, roles ...Role) (*Log, *actor, []*actor) {
	t.Helper()
	f := newActor(t, "founder")
	l := newTestFolder(t, f)
	var ms []*actor
	for i, r := range roles {
		a := newActor(t, string(rune('a'+i)))
		must(t, l, f, Grant{Principal: UserPrincipal(a.uid), Role: r})
		must(t, l, a, AddDevice{Cert: a.cert})
		ms = append(ms, a)
	}
	return l, f, ms
}

func status(t *testing.T, l *Log, op *Op) error {
	t.Helper()
	ok, why, known := l.Status(op.ID)
	if !known {
		t.Fatalf("op %s unknown", op.Kind)
	}
	if ok {
		return nil
	}
	return why
}

func converge(t *testing.T, logs ...*Log) {
	t.Helper()
	sync(t, logs...)
	for _, l := range logs[1:] {
		if string(l.Digest()) != string(logs[0].Digest()) {
			t.Fatalf("replicas diverge:\n%+v\n%+v", logs[0].Snapshot(), l.Snapshot())
		}
	}
}

// TestStrongRemove covers LOG-RULES D1-D4 with concurrent branches.
func TestStrongRemove(t *testing.T) {
	t.Run("D1 concurrent op by the revoked member is voided", func(t *testing.T) {
		l, f, m := team(t, RoleOrganizer)
		r := fork(t, l)
		rev := must(t, l, f, Revoke{Principal: UserPrincipal(m[0].uid)})
		mk := must(t, r, m[0], CreateFolder{Name: "late"})
		converge(t, l, r)
		if err := status(t, l, rev); err != nil {
			t.Fatal(err)
		}
		if err := status(t, l, mk); !errors.Is(err, ErrVoided) {
			t.Fatalf("concurrent op: %v, want ErrVoided", err)
		}
		if _, ok := l.NodeAt("late"); ok {
			t.Fatal("voided folder exists")
		}
	})
	t.Run("ops before the revocation stand", func(t *testing.T) {
		l, f, m := team(t, RoleOrganizer)
		mk := must(t, l, m[0], CreateFolder{Name: "early"})
		must(t, l, f, Revoke{Principal: UserPrincipal(m[0].uid)})
		if err := status(t, l, mk); err != nil {
			t.Fatal(err)
		}
		refused(t, l, m[0], CreateFolder{Name: "after"})
	})
	t.Run("D2 what depended on a voided op is voided", func(t *testing.T) {
		l, f, m := team(t, RoleManager)
		x := newActor(t, "x")
		r := fork(t, l)
		must(t, l, f, Revoke{Principal: UserPrincipal(m[0].uid)})
		g := must(t, r, m[0], Grant{Principal: UserPrincipal(x.uid), Role: RoleEditor})
		ad := must(t, r, x, AddDevice{Cert: x.cert})
		lk := must(t, r, x, LockRequest{Path: "f", LeaseSecs: 10})
		converge(t, l, r)
		for _, op := range []*Op{g, lk} {
			if err := status(t, l, op); err == nil {
				t.Fatalf("%s stands", op.Kind)
			}
		}
		_ = ad
		if l.Can(x.uid, ActionRead, "") {
			t.Fatal("grantee of a voided grant reads")
		}
	})
	t.Run("D3 a grant concurrent with a revoke of the same right loses", func(t *testing.T) {
		l, f, m := team(t, RoleManager, RoleEditor)
		r := fork(t, l)
		must(t, l, f, Revoke{Principal: UserPrincipal(m[1].uid)})
		must(t, r, m[0], ChangeRole{Principal: UserPrincipal(m[1].uid), Role: RoleOrganizer})
		converge(t, l, r)
		if got := l.RoleAt(m[1].uid, ""); got != RoleNone {
			t.Fatalf("role %s, want none", got)
		}
	})
	t.Run("D3 a re-grant concurrent with the revoke loses", func(t *testing.T) {
		l, f, m := team(t, RoleManager, RoleEditor)
		r := fork(t, l)
		must(t, l, f, Revoke{Principal: UserPrincipal(m[1].uid)})
		must(t, r, m[0], Grant{Principal: UserPrincipal(m[1].uid), Role: RoleViewer})
		converge(t, l, r)
		if got := l.RoleAt(m[1].uid, ""); got != RoleNone {
			t.Fatalf("role %s, want none", got)
		}
		// A grant made after seeing the revoke stands.
		must(t, l, m[0], Grant{Principal: UserPrincipal(m[1].uid), Role: RoleViewer})
		if got := l.RoleAt(m[1].uid, ""); got != RoleViewer {
			t.Fatalf("role %s after a later grant, want viewer", got)
		}
	})
	t.Run("D3 concurrent grants give the max", func(t *testing.T) {
		l, _, m := team(t, RoleManager, RoleOwner)
		x := newActor(t, "x")
		r := fork(t, l)
		must(t, l, m[0], Grant{Principal: UserPrincipal(x.uid), Role: RoleViewer})
		must(t, r, m[1], Grant{Principal: UserPrincipal(x.uid), Role: RoleEditor})
		converge(t, l, r)
		if got := l.RoleAt(x.uid, ""); got != RoleEditor {
			t.Fatalf("role %s, want editor", got)
		}
	})
	t.Run("D4 a revoker concurrently revoked by a higher rank is undone", func(t *testing.T) {
		l, f, m := team(t, RoleOwner, RoleManager)
		r := fork(t, l)
		must(t, l, f, Revoke{Principal: UserPrincipal(m[0].uid)})
		d := must(t, r, m[0], Revoke{Principal: UserPrincipal(m[1].uid)})
		converge(t, l, r)
		if err := status(t, l, d); !errors.Is(err, ErrVoided) {
			t.Fatalf("revoke by revoked owner: %v", err)
		}
		if got := l.RoleAt(m[1].uid, ""); got != RoleManager {
			t.Fatalf("manager is %s, want manager kept", got)
		}
		if l.Rounds() < 2 {
			t.Fatalf("rounds %d", l.Rounds())
		}
	})
	t.Run("concurrent device removal voids the device's ops", func(t *testing.T) {
		l, _, m := team(t, RoleOrganizer)
		d2 := m[0].secondDevice(t, "phone")
		must(t, l, d2, AddDevice{Cert: d2.cert})
		r := fork(t, l)
		must(t, l, m[0], RemoveDevice{Device: d2.did})
		mk := must(t, r, d2, CreateFolder{Name: "p"})
		converge(t, l, r)
		if err := status(t, l, mk); !errors.Is(err, ErrVoided) {
			t.Fatalf("%v", err)
		}
		refused(t, l, d2, CreateFolder{Name: "q"})
		// The removed device cannot bring itself back with its old
		// certificate; another device of its user can.
		refused(t, l, d2, AddDevice{Cert: d2.cert})
		must(t, l, m[0], AddDevice{Cert: d2.cert})
		must(t, l, d2, CreateFolder{Name: "back"})
	})
	t.Run("a demotion voids only what needs the lost right", func(t *testing.T) {
		l, f, m := team(t, RoleOrganizer)
		r := fork(t, l)
		must(t, l, f, ChangeRole{Principal: UserPrincipal(m[0].uid), Role: RoleEditor})
		lk := must(t, r, m[0], LockRequest{Path: "f", LeaseSecs: 5})
		mk := must(t, r, m[0], CreateFolder{Name: "x"})
		converge(t, l, r)
		if status(t, l, lk) != nil || status(t, l, mk) == nil {
			t.Fatalf("lock %v, mkdir %v", status(t, l, lk), status(t, l, mk))
		}
	})
}
