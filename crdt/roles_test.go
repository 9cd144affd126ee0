package crdt

import (
	"fmt"
	"strings"
	"testing"
)

// The rights table of the package doc, written out cell by cell. Columns:
// relay viewer editor organizer manager owner founder; x = may.
var rightsTable = map[Action]string{
	ActionStore:         "x x x x x x x",
	ActionRead:          ". x x x x x x",
	ActionSeeName:       ". x x x x x x",
	ActionWrite:         ". . x x x x x",
	ActionLock:          ". . x x x x x",
	ActionOrganize:      ". . . x x x x",
	ActionManage:        ". . . . x x x", // policy "managers" (the default)
	ActionBreakLock:     ". . . . x x x",
	ActionSeeQuarantine: ". . . . x x x",
	ActionSetPolicy:     ". . . . . x x",
	ActionDeleteShare:   ". . . . . x x",
}

// The manage row under the other policies.
var manageRow = map[Policy]string{
	PolicyManagers: ". . . . x x x",
	PolicyOwners:   ". . . . . x x",
	PolicyEditors:  ". . x x x x x",
}

var tableRoles = []Role{RoleRelay, RoleViewer, RoleEditor, RoleOrganizer, RoleManager, RoleOwner, RoleFounder}

// TestRightsTable checks every cell of the rights table through Can, with
// each role granted for real in a log (founder through genesis).
func TestRightsTable(t *testing.T) {
	for _, policy := range []Policy{PolicyManagers, PolicyOwners, PolicyEditors} {
		founder := newActor(t, "founder")
		l := newTestFolder(t, founder)
		if policy != PolicyManagers {
			must(t, l, founder, SetPolicy{Policy: policy})
		}
		users := map[Role]*actor{RoleFounder: founder}
		for _, r := range tableRoles[:6] {
			a := newActor(t, "holder-"+r.String())
			must(t, l, founder, Grant{Principal: UserPrincipal(a.uid), Node: RootNode, Role: r})
			users[r] = a
		}
		for _, action := range Actions {
			row := rightsTable[action]
			if action == ActionManage {
				row = manageRow[policy]
			}
			cells := strings.Fields(row)
			for i, r := range tableRoles {
				want := cells[i] == "x"
				t.Run(fmt.Sprintf("%d/%s/%s", policy, action, r), func(t *testing.T) {
					if got := l.Can(users[r].uid, action, "a/b/file.txt"); got != want {
						t.Fatalf("Can(%s, %s) = %v, want %v", r, action, got, want)
					}
				})
			}
		}
		stranger := newActor(t, "stranger")
		for _, action := range Actions {
			if l.Can(stranger.uid, action, "a") {
				t.Fatalf("a non-member may %s", action)
			}
		}
	}
}

// TestOpRights checks, for each role, which ops a member holding it at the
// root may append: the op-level side of the rights table.
func TestOpRights(t *testing.T) {
	other := newActor(t, "other")
	type opCase struct {
		name string
		min  Role // lowest role that may append it
		body func(l *Log, founder *actor) Body
	}
	cases := []opCase{
		{"create folder", RoleOrganizer, func(l *Log, f *actor) Body { return CreateFolder{Parent: RootNode, Name: "n"} }},
		{"restrict", RoleOrganizer, func(l *Log, f *actor) Body {
			return Restrict{Node: mkdir(t, l, f, RootNode, "r")}
		}},
		{"grant viewer", RoleManager, func(l *Log, f *actor) Body {
			return Grant{Principal: UserPrincipal(other.uid), Role: RoleViewer}
		}},
		{"create group", RoleManager, func(l *Log, f *actor) Body { return CreateGroup{Name: "g"} }},
		{"invite viewer", RoleManager, func(l *Log, f *actor) Body {
			return CreateInvite{Key: inviteKeyBytes(t, "k"), Role: RoleViewer, MaxUses: 1}
		}},
		{"view link", RoleManager, func(l *Log, f *actor) Body { return CreateLink{Path: "f.txt", Role: RoleViewer} }},
		{"lock", RoleEditor, func(l *Log, f *actor) Body { return LockRequest{Path: "f.txt", LeaseSecs: 60} }},
		{"set policy", RoleOwner, func(l *Log, f *actor) Body { return SetPolicy{Policy: PolicyOwners} }},
		{"declare witnesses", RoleOwner, func(l *Log, f *actor) Body { return DeclareWitnesses{Devices: []UserID{f.did}} }},
		{"delete share", RoleOwner, func(l *Log, f *actor) Body { return DeleteShare{} }},
	}
	for _, c := range cases {
		for _, r := range tableRoles[:6] {
			t.Run(c.name+"/"+r.String(), func(t *testing.T) {
				founder := newActor(t, "founder")
				l := newTestFolder(t, founder)
				a := newActor(t, "a")
				must(t, l, founder, Grant{Principal: UserPrincipal(a.uid), Role: r})
				must(t, l, a, AddDevice{Cert: a.cert})
				body := c.body(l, founder)
				_, err := l.Append(a.dev, body, 1000)
				if want := r >= c.min; (err == nil) != want {
					t.Fatalf("%s as %s: err %v, want allowed=%v", c.name, r, err, want)
				}
			})
		}
	}
}

// TestStrictlyBelow: one grants or revokes only roles below one's own;
// owners may grant owner; only founders revoke owners; anyone may renounce.
func TestStrictlyBelow(t *testing.T) {
	type tc struct {
		granter Role
		role    Role
		grant   bool // may grant role
		revoke  bool // may revoke a holder of role
	}
	var cases []tc
	for _, g := range tableRoles[2:] {
		for _, r := range tableRoles[:6] {
			man := g >= RoleManager
			cases = append(cases, tc{g, r, man && (r < g || (r == RoleOwner && g >= RoleOwner)), man && r < g})
		}
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s", c.granter, c.role), func(t *testing.T) {
			founder := newActor(t, "founder")
			l := newTestFolder(t, founder)
			g := founder
			if c.granter != RoleFounder {
				g = newActor(t, "granter")
				must(t, l, founder, Grant{Principal: UserPrincipal(g.uid), Role: c.granter})
				must(t, l, g, AddDevice{Cert: g.cert})
			}
			target, target2 := newActor(t, "target"), newActor(t, "target2")
			_, err := l.Append(g.dev, Grant{Principal: UserPrincipal(target.uid), Role: c.role}, 1)
			if (err == nil) != c.grant {
				t.Fatalf("grant: %v, want allowed=%v", err, c.grant)
			}
			must(t, l, founder, Grant{Principal: UserPrincipal(target2.uid), Role: c.role})
			_, err = l.Append(g.dev, Revoke{Principal: UserPrincipal(target2.uid)}, 1)
			if (err == nil) != c.revoke {
				t.Fatalf("revoke: %v, want allowed=%v", err, c.revoke)
			}
			// Anyone may renounce.
			if l.State().principalRole(UserPrincipal(target2.uid), RootNode) != RoleNone {
				must(t, l, target2, AddDevice{Cert: target2.cert})
				must(t, l, target2, Renounce{})
				if l.RoleAt(target2.uid, "") != RoleNone {
					t.Fatal("renounced role still held")
				}
			}
		})
	}
}

// TestAdminsNeverDuel: two managers (or two owners) cannot revoke each other;
// founders cannot revoke founders, only renounce.
func TestAdminsNeverDuel(t *testing.T) {
	f1, f2 := newActor(t, "f1"), newActor(t, "f2")
	l := newTestFolder(t, f1, f2)
	for _, r := range []Role{RoleManager, RoleOwner} {
		a, b := newActor(t, "a"+r.String()), newActor(t, "b"+r.String())
		for _, x := range []*actor{a, b} {
			must(t, l, f1, Grant{Principal: UserPrincipal(x.uid), Role: r})
			must(t, l, x, AddDevice{Cert: x.cert})
		}
		if err := refused(t, l, a, Revoke{Principal: UserPrincipal(b.uid)}); err == nil {
			t.Fatal("duel")
		}
		refused(t, l, a, ChangeRole{Principal: UserPrincipal(b.uid), Role: RoleViewer})
	}
	// f2's owner grant from genesis can be revoked by f1, but f2 stays founder.
	must(t, l, f1, Revoke{Principal: UserPrincipal(f2.uid)})
	if l.RoleAt(f2.uid, "x") != RoleFounder {
		t.Fatal("founder lost founder rank to another founder")
	}
	must(t, l, f2, Renounce{Founder: true})
	if l.RoleAt(f2.uid, "x") != RoleNone {
		t.Fatalf("renounced founder holds %s", l.RoleAt(f2.uid, "x"))
	}
}

func inviteKeyBytes(tb testing.TB, seed string) []byte {
	tb.Helper()
	k := seededKey(tb, "invite:"+seed)
	b, err := marshalPub(k.GetPublic())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
