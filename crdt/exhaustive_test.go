package crdt

// Exhaustive delivery-order checks: small concurrent op sets among a founder
// F, a manager M and an editor E (plus outsiders for invitations), each
// delivered in EVERY order into fresh replicas. Every order must give the
// same state digest and the same verdict for every op (I1, I2), and the
// result must satisfy I3 (no escalation), I4 (strong revocation), I5
// (denial stability), I6 (lock safety), I8 (invitation uses), an acyclic
// folder tree, and agree with the reference evaluator of reference_test.go.
// The invariant checks read the production verdicts but judge them with the
// reference's own state and rights table.

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// exhMaxOps bounds a scenario: 7! = 5,040 orders.
const exhMaxOps = 7

type scenario struct {
	t       *testing.T
	f, m, e *actor
	out     []*actor
	invKey  crypto.PrivKey
	genesis *Op
	setup   []*Op // delivered first, in causal order
	ops     []*Op // permuted
	names   map[string]string
	last    map[peer.ID]*Op
	tip     *Op
}

var exhActors struct {
	f, m, e *actor
	out     []*actor
	invKey  crypto.PrivKey
	invPub  []byte
}

func exhCast(t *testing.T) {
	if exhActors.f != nil {
		return
	}
	exhActors.f, exhActors.m, exhActors.e = newActor(t, "xF"), newActor(t, "xM"), newActor(t, "xE")
	exhActors.out = []*actor{newActor(t, "xO1"), newActor(t, "xO2")}
	exhActors.invKey = seededKey(t, "invite:exh")
	exhActors.invPub = inviteKeyBytes(t, "exh")
}

// newScenario: genesis by F, then M granted Manager and E Editor at the
// root, their devices added, and F, M, E declared witnesses (quorum 2).
func newScenario(t *testing.T) *scenario {
	exhCast(t)
	a := &exhActors
	s := &scenario{t: t, f: a.f, m: a.m, e: a.e, out: a.out, invKey: a.invKey,
		names: map[string]string{}, last: map[peer.ID]*Op{}}
	l, err := NewFolder(a.f.dev, Genesis{Name: "exh", Founders: []DeviceCert{a.f.cert}, Nonce: []byte("exh")}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.genesis, _ = l.Get(l.Folder())
	s.last[a.f.did] = s.genesis
	s.tip = s.genesis
	for _, step := range []struct {
		by   *actor
		body Body
	}{
		{a.f, Grant{Principal: UserPrincipal(a.m.uid), Role: RoleManager}},
		{a.m, AddDevice{Cert: a.m.cert}},
		{a.f, Grant{Principal: UserPrincipal(a.e.uid), Role: RoleEditor}},
		{a.e, AddDevice{Cert: a.e.cert}},
		{a.f, DeclareWitnesses{Devices: []peer.ID{a.f.did, a.m.did, a.e.did}}},
	} {
		op := s.build(step.by, "setup", 1, step.body, s.tip)
		s.setup = append(s.setup, op)
		s.tip = op
	}
	return s
}

// build signs an op by a on top of parents (plus a's previous op).
func (s *scenario) build(a *actor, name string, time int64, body Body, parents ...*Op) *Op {
	s.t.Helper()
	var seq uint64 = 1
	if prev := s.last[a.did]; prev != nil {
		seq = prev.Seq + 1
		parents = append(parents, prev)
	}
	op, err := BuildOp(a.dev, s.genesis.ID, seq, parents, time, body)
	if err != nil {
		s.t.Fatal(err)
	}
	s.last[a.did] = op
	s.names[op.ID.KeyString()] = name
	return op
}

// add builds a permuted op.
func (s *scenario) add(a *actor, name string, body Body, parents ...*Op) *Op {
	op := s.build(a, name, 1, body, parents...)
	s.ops = append(s.ops, op)
	return op
}

func (s *scenario) join(o *actor, name string, inv *Op, time int64, parents ...*Op) *Op {
	proof, err := InviteProof(s.invKey, s.genesis.ID, RefOf(inv.ID), o.cert)
	if err != nil {
		s.t.Fatal(err)
	}
	op := s.build(o, name, time, Join{Invite: RefOf(inv.ID), Cert: o.cert, Proof: proof}, parents...)
	s.ops = append(s.ops, op)
	return op
}

func (s *scenario) all() []*Op {
	return append(append([]*Op{s.genesis}, s.setup...), s.ops...)
}

// replica delivers the setup, then the scenario ops in order (one merge
// each; ops whose parents are missing wait in the pending buffer), then a
// duplicate of the first one.
func (s *scenario) replica(order []int) *Log {
	s.t.Helper()
	l, err := newFromGenesis(s.genesis, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	var res MergeResult
	if err := l.mergeOps(s.setup, &res); err != nil {
		s.t.Fatal(err)
	}
	for _, i := range order {
		if err := l.mergeOps([]*Op{s.ops[i]}, &res); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := l.mergeOps([]*Op{s.ops[order[0]]}, &res); err != nil {
		s.t.Fatal(err)
	}
	if len(res.Rejected) > 0 || l.Pending() != 0 || l.Len() != 1+len(s.setup)+len(s.ops) {
		s.t.Fatalf("delivery: rejected %v, pending %d, len %d", res.Rejected, l.Pending(), l.Len())
	}
	return l
}

func (s *scenario) verdicts(l *Log) string {
	var b strings.Builder
	for _, op := range s.ops {
		v, why, _ := l.Status(op.ID)
		fmt.Fprintf(&b, "%s=%v", s.names[op.ID.KeyString()], v)
		if !v {
			fmt.Fprintf(&b, "(%v)", why)
		}
		b.WriteString(" ")
	}
	return b.String()
}

// permutations calls fn with every ordering of 0..n-1 (Heap's algorithm).
func permutations(n int, fn func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	c := make([]int, n)
	fn(p)
	for i := 0; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				p[0], p[i] = p[i], p[0]
			} else {
				p[c[i]], p[i] = p[i], p[c[i]]
			}
			fn(p)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}

var exhOrders int // delivery orders checked, over all scenarios

// check delivers the scenario in every order and checks the invariants. It
// returns the (order-independent) log.
func (s *scenario) check() *Log {
	t := s.t
	t.Helper()
	if len(s.ops) > exhMaxOps {
		t.Fatalf("scenario has %d ops, max %d", len(s.ops), exhMaxOps)
	}
	var first *Log
	var wantDigest []byte
	var wantVerdicts string
	orders := 0
	permutations(len(s.ops), func(order []int) {
		l := s.replica(order)
		orders++
		if first == nil {
			first, wantDigest, wantVerdicts = l, l.Digest(), s.verdicts(l)
			return
		}
		if got := s.verdicts(l); got != wantVerdicts || !bytes.Equal(l.Digest(), wantDigest) {
			t.Fatalf("I1/I2: order %v gives another result:\n  %s\nfirst order:\n  %s", order, got, wantVerdicts)
		}
	})
	exhOrders += orders
	s.invariants(first)
	t.Logf("%d orders, verdicts: %s", orders, wantVerdicts)
	return first
}

// invariants judges the production verdicts of l with the reference's state.
func (s *scenario) invariants(l *Log) {
	t := s.t
	t.Helper()
	ref := newRefEval(s.all())
	name := func(i int) string {
		if n := s.names[ref.ops[i].ID.KeyString()]; n != "" {
			return n
		}
		return ref.ops[i].Kind.String()
	}
	valid := make([]bool, len(ref.ops))
	voided := make([]bool, len(ref.ops))
	for i, op := range ref.ops {
		v, why, _ := l.Status(op.ID)
		valid[i], voided[i] = v, errors.Is(why, ErrVoided)
	}
	pastOf := func(i int, extra ...int) []bool {
		past := make([]bool, len(ref.ops))
		for j := range past {
			past[j] = valid[j] && ref.anc[i][j]
		}
		for _, d := range extra {
			past[d] = true
		}
		return past
	}
	isDen := func(d int) bool { return ref.isRefDenial(d, valid) }
	rightLost := func(why string) bool { return why != "" && !strings.HasPrefix(why, "target: ") }
	for i, op := range ref.ops {
		if i == 0 || !valid[i] {
			continue
		}
		// I3: the author had the right in the op's valid causal past.
		if why := ref.admit(ref.resolve(pastOf(i)), op); why != "" {
			t.Errorf("I3: %s is in effect but was not admissible in its causal past: %s", name(i), why)
		}
		// I4: no effective op loses a right it needs to an effective
		// denial concurrent with it.
		for d := range ref.ops {
			if valid[d] && ref.concurrent(d, i) && isDen(d) && ref.targets(d, i) {
				if why := ref.admit(ref.resolve(pastOf(i, d)), op); rightLost(why) {
					t.Errorf("I4: %s is in effect although the concurrent effective denial %s takes away what it needs (%s)",
						name(i), name(d), why)
				}
			}
		}
	}
	// I5: a denial admissible in its own past is voided only by a
	// concurrent effective denial of its issuer's right.
	for i, op := range ref.ops {
		if valid[i] || !voided[i] || !isDen(i) {
			continue
		}
		explained := false
		for d := range ref.ops {
			if valid[d] && ref.concurrent(d, i) && isDen(d) && ref.targets(d, i) &&
				rightLost(ref.admit(ref.resolve(pastOf(i, d)), op)) {
				explained = true
			}
		}
		if !explained {
			t.Errorf("I5: denial %s is voided, but no concurrent effective denial takes a right from its issuer", name(i))
		}
	}
	// I8: admissions within max uses, one per user.
	uses := map[InviteID][]UserID{}
	for i, op := range ref.ops {
		if j, ok := op.Body.(Join); ok && valid[i] {
			for _, u := range uses[j.Invite] {
				if u == j.Cert.User {
					t.Errorf("I8: %s admits a user twice", name(i))
				}
			}
			uses[j.Invite] = append(uses[j.Invite], j.Cert.User)
		}
	}
	for inv, us := range uses {
		c, _ := inv.Cid()
		if max := ref.ops[ref.ix[c.KeyString()]].Body.(CreateInvite).MaxUses; uint32(len(us)) > max {
			t.Errorf("I8: invitation admitted %d times, max %d", len(us), max)
		}
	}
	// I6: at most one live granted lock per file; fences strictly increase
	// in the order the grants were made.
	st := l.State()
	for path, fl := range st.locks {
		var granted []*lockReq
		live := 0
		for _, id := range fl.reqs {
			if rq := st.reqs[id]; rq.granted {
				granted = append(granted, rq)
				if !rq.ended {
					live++
				}
			}
		}
		sort.Slice(granted, func(a, b int) bool { return granted[a].grantIx < granted[b].grantIx })
		for k := 1; k < len(granted); k++ {
			if granted[k].fence <= granted[k-1].fence {
				t.Errorf("I6: fences on %s do not increase: %d then %d", path, granted[k-1].fence, granted[k].fence)
			}
		}
		if live > 1 {
			t.Errorf("I6: %d live granted locks on %s", live, path)
		}
	}
	// The folder tree has no cycle.
	snap := l.Snapshot()
	parent := map[NodeID]NodeID{}
	for _, n := range snap.Nodes {
		parent[n.ID] = n.Parent
	}
	for _, n := range snap.Nodes {
		cur := n.ID
		for steps := 0; cur != RootNode; steps++ {
			if steps > len(snap.Nodes) {
				t.Errorf("tree: folder %s is on a cycle", s.names[string(n.ID)])
				break
			}
			cur = parent[cur]
		}
	}
	// The reference evaluator agrees.
	ref.run()
	for i, op := range ref.ops {
		if ref.valid[i] != valid[i] {
			v, why, _ := l.Status(op.ID)
			t.Errorf("reference: %s: log valid=%v (%v), reference valid=%v (%s)", name(i), v, why, ref.valid[i], ref.reason[i])
		}
	}
}

func valid(t *testing.T, l *Log, op *Op) bool {
	t.Helper()
	v, _, known := l.Status(op.ID)
	if !known {
		t.Fatal("op unknown")
	}
	return v
}

// TestExhaustiveOrders: every scenario, every delivery order.
func TestExhaustiveOrders(t *testing.T) {
	exhOrders = 0
	t.Run("I1-I4 revoke concurrent with actions by the revoked member", func(t *testing.T) {
		s := newScenario(t)
		rev := s.add(s.m, "M.revoke(E)", Revoke{Principal: UserPrincipal(s.e.uid)}, s.tip)
		lk := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		ack := s.add(s.f, "F.ack(E.lock)", LockAck{Request: RefOf(lk.ID)}, lk)
		after := s.add(s.e, "E.lock(g) after revoke", LockRequest{Path: "g", LeaseSecs: 60}, rev, lk)
		before := s.add(s.e, "E.lock(h) before revoke", LockRequest{Path: "h", LeaseSecs: 60}, s.tip)
		rev2 := s.add(s.m, "M.revoke(E) again", Revoke{Principal: UserPrincipal(s.e.uid)}, rev, before)
		l := s.check()
		if !valid(t, l, rev) || valid(t, l, lk) || valid(t, l, ack) || valid(t, l, after) || valid(t, l, before) || valid(t, l, rev2) {
			t.Errorf("want the revoke in effect, E's concurrent and later lock requests voided, the second revoke refused")
		}
	})
	t.Run("I4-I5 revoke concurrent with the member's own renunciation", func(t *testing.T) {
		// F revokes M while M renounces the same grant: both take the same
		// right away, so neither may undo the other; M must end with no role.
		s := newScenario(t)
		rev := s.add(s.f, "F.revoke(M)", Revoke{Principal: UserPrincipal(s.m.uid)}, s.tip)
		ren := s.add(s.m, "M.renounce", Renounce{}, s.tip)
		mk := s.add(s.m, "M.mkdir", CreateFolder{Name: "m"}, s.tip)
		eLock := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		s.add(s.m, "M.ack(E)", LockAck{Request: RefOf(eLock.ID)}, eLock)
		s.add(s.f, "F.ack(E)", LockAck{Request: RefOf(eLock.ID)}, eLock, rev)
		l := s.check()
		if h, ok := l.LockHolder("f"); !ok || h.User != s.e.uid {
			t.Errorf("E does not hold f")
		}
		if r := l.RoleAt(s.m.uid, ""); r != RoleNone {
			t.Errorf("fail-open: M still has %s after being revoked and renouncing (revoke valid=%v, renounce valid=%v)",
				r, valid(t, l, rev), valid(t, l, ren))
		}
		if valid(t, l, mk) {
			t.Errorf("M's concurrent mkdir survived the revoke")
		}
	})
	t.Run("I4-I5 mutual revocation attempt and strictly-below", func(t *testing.T) {
		s := newScenario(t)
		mRevE := s.add(s.m, "M.revoke(E)", Revoke{Principal: UserPrincipal(s.e.uid)}, s.tip)
		eRevM := s.add(s.e, "E.revoke(M)", Revoke{Principal: UserPrincipal(s.m.uid)}, s.tip)
		mOwn := s.add(s.m, "M.grant(M,owner)", Grant{Principal: UserPrincipal(s.m.uid), Role: RoleOwner}, mRevE)
		eLock := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, eRevM)
		eEarly := s.add(s.e, "E.lock(g) before", LockRequest{Path: "g", LeaseSecs: 60}, s.tip)
		mMk := s.add(s.m, "M.mkdir", CreateFolder{Name: "m"}, eRevM, eEarly)
		l := s.check()
		if !valid(t, l, mRevE) || valid(t, l, eRevM) || valid(t, l, mOwn) || valid(t, l, eLock) || !valid(t, l, mMk) {
			t.Errorf("want only M's revoke of E and M's later mkdir in effect")
		}
		if valid(t, l, eEarly) {
			t.Errorf("E's lock request concurrent with M's revoke survived")
		}
	})
	t.Run("I4-I5 D4 revoker revoked by a founder", func(t *testing.T) {
		s := newScenario(t)
		fRevM := s.add(s.f, "F.revoke(M)", Revoke{Principal: UserPrincipal(s.m.uid)}, s.tip)
		mRevE := s.add(s.m, "M.revoke(E)", Revoke{Principal: UserPrincipal(s.e.uid)}, s.tip)
		eLock := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		eLock2 := s.add(s.e, "E.lock(g) after M's revoke", LockRequest{Path: "g", LeaseSecs: 60}, mRevE, eLock)
		mMk := s.add(s.m, "M.mkdir", CreateFolder{Name: "m"}, fRevM)
		l := s.check()
		if !valid(t, l, fRevM) || valid(t, l, mRevE) || !valid(t, l, eLock) || !valid(t, l, eLock2) || valid(t, l, mMk) {
			t.Errorf("want F's revoke in effect, M's revoke undone (D4), E's locks standing, M's later mkdir refused")
		}
		if l.RoleAt(s.e.uid, "") != RoleEditor || l.RoleAt(s.m.uid, "") != RoleNone {
			t.Errorf("roles after D4: E %s, M %s", l.RoleAt(s.e.uid, ""), l.RoleAt(s.m.uid, ""))
		}
	})
	t.Run("D3 concurrent grant and revoke of the same right, remove wins", func(t *testing.T) {
		s := newScenario(t)
		grant := s.add(s.f, "F.grant(E,editor) again", Grant{Principal: UserPrincipal(s.e.uid), Role: RoleEditor}, s.tip)
		rev := s.add(s.m, "M.revoke(E)", Revoke{Principal: UserPrincipal(s.e.uid)}, s.tip)
		regrant := s.add(s.m, "M.grant(E,viewer) after", Grant{Principal: UserPrincipal(s.e.uid), Role: RoleViewer}, rev)
		eLock := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, grant)
		s.add(s.f, "F.ack(E)", LockAck{Request: RefOf(eLock.ID)}, eLock)
		eLate := s.add(s.e, "E.lock(g) after regrant", LockRequest{Path: "g", LeaseSecs: 60}, regrant)
		l := s.check()
		if valid(t, l, eLate) {
			t.Errorf("E, a viewer after the re-grant, requested a lock")
		}
		if !valid(t, l, grant) || !valid(t, l, rev) || !valid(t, l, regrant) || valid(t, l, eLock) {
			t.Errorf("want both grants and the revoke in effect, E's lock voided")
		}
		if r := l.RoleAt(s.e.uid, ""); r != RoleViewer {
			t.Errorf("E is %s, want viewer (the revoke wins over the concurrent grant, the later grant stands)", r)
		}
	})
	t.Run("I4 demotion by a lower grant concurrent with the demoted member's actions", func(t *testing.T) {
		// F re-grants M as Editor (the grant replaces the Manager one: a
		// demotion) while M, still Manager in its own past, invites and
		// grants. Strong remove must void M's manager actions.
		s := newScenario(t)
		dem := s.add(s.f, "F.grant(M,editor)", Grant{Principal: UserPrincipal(s.m.uid), Role: RoleEditor}, s.tip)
		inv := s.add(s.m, "M.invite(editor)", CreateInvite{Key: exhActors.invPub, Role: RoleEditor, MaxUses: 1}, s.tip)
		j := s.join(s.out[0], "O1.join", inv, 1, inv)
		g := s.add(s.m, "M.grant(E,organizer)", Grant{Principal: UserPrincipal(s.e.uid), Role: RoleOrganizer}, s.tip)
		eLock := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		l := s.check()
		if valid(t, l, g) || !valid(t, l, eLock) {
			t.Errorf("want M's concurrent grant voided and E's lock request standing")
		}
		if !valid(t, l, dem) || l.RoleAt(s.m.uid, "") != RoleEditor {
			t.Fatalf("the demotion is not in effect")
		}
		if valid(t, l, inv) || valid(t, l, j) {
			t.Errorf("M's concurrent invitation (and the join through it) survived M's demotion to editor")
		}
	})
	t.Run("R4 strictly-below: a manager may not demote a peer manager by granting a lower role", func(t *testing.T) {
		// F makes E a Manager too. M may not revoke E (not strictly below),
		// so M must not be able to lower E to Viewer with a new grant either:
		// the grant replaces E's Manager grant.
		s := newScenario(t)
		up := s.build(s.f, "F.grant(E,manager)", 1, Grant{Principal: UserPrincipal(s.e.uid), Role: RoleManager}, s.tip)
		s.setup = append(s.setup, up)
		s.tip = up
		rev := s.add(s.m, "M.revoke(E)", Revoke{Principal: UserPrincipal(s.e.uid)}, s.tip)
		dem := s.add(s.m, "M.grant(E,viewer)", Grant{Principal: UserPrincipal(s.e.uid), Role: RoleViewer}, s.tip)
		inv := s.add(s.e, "E.invite(editor)", CreateInvite{Key: exhActors.invPub, Role: RoleEditor, MaxUses: 1}, s.tip)
		l := s.check()
		if valid(t, l, rev) {
			t.Errorf("M revoked a peer manager")
		}
		if r := l.RoleAt(s.e.uid, ""); r != RoleManager || valid(t, l, dem) || !valid(t, l, inv) {
			t.Errorf("M demoted peer manager E to %s by a grant (grant valid=%v, E's concurrent invite valid=%v)",
				r, valid(t, l, dem), valid(t, l, inv))
		}
	})
	t.Run("R5 a promotion is not a denial", func(t *testing.T) {
		// F promotes E to Owner while M demotes E to Viewer (M may: E's
		// Editor is strictly below Manager). F's promotion takes no right
		// from M, so under D1 as written it must not void M's concurrent
		// change; concurrent changes give the lowest role. (The log counts
		// every role change as a denial and voids M's change instead; if
		// that is the intent, R5 should say so and this test flips.)
		s := newScenario(t)
		up := s.add(s.f, "F.change(E,owner)", ChangeRole{Principal: UserPrincipal(s.e.uid), Role: RoleOwner}, s.tip)
		down := s.add(s.m, "M.change(E,viewer)", ChangeRole{Principal: UserPrincipal(s.e.uid), Role: RoleViewer}, s.tip)
		eLock := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		l := s.check()
		if !valid(t, l, up) || !valid(t, l, down) {
			t.Errorf("want both role changes in effect: promotion %v, demotion %v", valid(t, l, up), valid(t, l, down))
		}
		if r := l.RoleAt(s.e.uid, ""); r != RoleViewer || valid(t, l, eLock) {
			t.Errorf("E is %s (want viewer: concurrent changes give the lowest), E's concurrent lock valid=%v", r, valid(t, l, eLock))
		}
	})
	t.Run("I8 concurrent double use of a single-use invitation", func(t *testing.T) {
		s := newScenario(t)
		inv := s.add(s.f, "F.invite(max 1)", CreateInvite{Key: exhActors.invPub, Role: RoleEditor, MaxUses: 1}, s.tip)
		j1 := s.join(s.out[0], "O1.join", inv, 1, inv)
		j2 := s.join(s.out[1], "O2.join", inv, 1, inv)
		lk1 := s.add(s.out[0], "O1.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, j1)
		lk2 := s.add(s.out[1], "O2.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, j2)
		l := s.check()
		win, lose, winLk, loseLk := j1, j2, lk1, lk2
		if bytes.Compare(j2.ID.Bytes(), j1.ID.Bytes()) < 0 {
			win, lose, winLk, loseLk = j2, j1, lk2, lk1
		}
		if !valid(t, l, win) || valid(t, l, lose) || !valid(t, l, winLk) || valid(t, l, loseLk) {
			t.Errorf("want the smaller-ID join and its holder's lock request in effect, the other join and its dependant not (D2)")
		}
	})
	t.Run("I8 R11 over-use keeps the smallest IDs even against Lamport order", func(t *testing.T) {
		// Two single-use joins race; the one with the smaller ID sits on a
		// longer branch (higher Lamport time). R11: the smallest ID keeps
		// the use, whatever the causal depth.
		var s *scenario
		var short, long *Op
		for time := int64(1); time < 64; time++ {
			s = newScenario(t)
			inv := s.add(s.f, "F.invite(max 1)", CreateInvite{Key: exhActors.invPub, Role: RoleEditor, MaxUses: 1}, s.tip)
			mk := s.add(s.m, "M.mkdir", CreateFolder{Name: "x"}, inv)
			short = s.join(s.out[0], "O1.join (short branch)", inv, time, inv)
			long = s.join(s.out[1], "O2.join (after M.mkdir)", inv, 1, mk)
			s.add(s.out[0], "O1.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, short)
			s.add(s.out[1], "O2.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, long)
			if bytes.Compare(long.ID.Bytes(), short.ID.Bytes()) < 0 {
				break
			}
		}
		if bytes.Compare(long.ID.Bytes(), short.ID.Bytes()) >= 0 {
			t.Fatal("no time hint gave the long branch the smaller ID")
		}
		l := s.check()
		if !valid(t, l, long) || valid(t, l, short) {
			t.Errorf("the join with the smallest ID (on the longer branch) does not keep the use: short valid=%v, long valid=%v",
				valid(t, l, short), valid(t, l, long))
		}
	})
	t.Run("I6 concurrent lock requests with witness acks", func(t *testing.T) {
		// E and M request the lock on f concurrently; each witness acks the
		// request it saw first; F acks both (only its first is admissible).
		s := newScenario(t)
		eReq := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		mReq := s.add(s.m, "M.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		fAckE := s.add(s.f, "F.ack(E)", LockAck{Request: RefOf(eReq.ID)}, eReq)
		eAckE := s.add(s.e, "E.ack(E)", LockAck{Request: RefOf(eReq.ID)}, eReq)
		mAckM := s.add(s.m, "M.ack(M)", LockAck{Request: RefOf(mReq.ID)}, mReq)
		fAckM := s.add(s.f, "F.ack(M)", LockAck{Request: RefOf(mReq.ID)}, mReq, fAckE)
		l := s.check()
		h, ok := l.LockHolder("f")
		if !ok || h.User != s.e.uid || h.Fence != 1 {
			t.Errorf("want E holding f with fence 1, got %+v %v", h, ok)
		}
		if valid(t, l, fAckM) || !valid(t, l, mAckM) || !valid(t, l, eAckE) {
			t.Errorf("F acked two live requests on one file")
		}
	})
	t.Run("I6 lock release then a new grant raises the fence", func(t *testing.T) {
		s := newScenario(t)
		eReq := s.add(s.e, "E.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, s.tip)
		a1 := s.add(s.f, "F.ack(E)", LockAck{Request: RefOf(eReq.ID)}, eReq)
		a2 := s.add(s.m, "M.ack(E)", LockAck{Request: RefOf(eReq.ID)}, eReq)
		rel := s.add(s.e, "E.release", LockRelease{Request: RefOf(eReq.ID)}, a1, a2)
		mReq := s.add(s.m, "M.lock(f)", LockRequest{Path: "f", LeaseSecs: 60}, rel)
		b1 := s.add(s.f, "F.ack(M)", LockAck{Request: RefOf(mReq.ID)}, mReq)
		b2 := s.add(s.e, "E.ack(M)", LockAck{Request: RefOf(mReq.ID)}, mReq)
		l := s.check()
		h, ok := l.LockHolder("f")
		if !ok || h.User != s.m.uid || h.Fence != 2 || !valid(t, l, b1) || !valid(t, l, b2) {
			t.Errorf("want M holding f with fence 2, got %+v %v", h, ok)
		}
	})
	t.Run("tree concurrent moves creating a cycle", func(t *testing.T) {
		s := newScenario(t)
		a := s.build(s.f, "F.mkdir(a)", 1, CreateFolder{Name: "a"}, s.tip)
		b := s.build(s.f, "F.mkdir(b)", 1, CreateFolder{Name: "b"}, a)
		s.setup = append(s.setup, a, b)
		s.tip = b
		mv1 := s.add(s.f, "F.move(a under b)", MoveFolder{Node: RefOf(a.ID), NewParent: RefOf(b.ID), NewName: "a"}, s.tip)
		mv2 := s.add(s.m, "M.move(b under a)", MoveFolder{Node: RefOf(b.ID), NewParent: RefOf(a.ID), NewName: "b"}, s.tip)
		c := s.add(s.m, "M.mkdir(c under a)", CreateFolder{Parent: RefOf(a.ID), Name: "c"}, mv2)
		d := s.add(s.f, "F.mkdir(d under b)", CreateFolder{Parent: RefOf(b.ID), Name: "d"}, mv1)
		s.add(s.e, "E.lock(a/f)", LockRequest{Path: "a/f", LeaseSecs: 60}, s.tip)
		s.add(s.m, "M.move(c under b)", MoveFolder{Node: RefOf(c.ID), NewParent: RefOf(b.ID), NewName: "c"}, c)
		l := s.check()
		if !valid(t, l, mv1) || !valid(t, l, mv2) || !valid(t, l, c) || !valid(t, l, d) {
			t.Errorf("want every move and mkdir in effect (the cycle is broken when the tree is built)")
		}
		_, ab := l.NodeAt("a/b/d")
		_, ba := l.NodeAt("b/a")
		if ab == ba {
			t.Errorf("want exactly one of the two moves applied: a/b/d %v, b/a %v", ab, ba)
		}
	})
	t.Logf("exhaustive: %d delivery orders checked", exhOrders)
}
