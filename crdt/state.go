package crdt

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Reasons an op is not valid in the log. Log.Status reports them.
var (
	ErrUnauthorized   = errors.New("crdt: author lacks the right in the op's causal past")
	ErrUnknownDevice  = errors.New("crdt: author device is not certified for a member")
	ErrBadTarget      = errors.New("crdt: op refers to something that does not exist or is in the wrong state")
	ErrInviteUnusable = errors.New("crdt: invitation revoked, expired, used up or already used by this user")
	ErrShareDeleted   = errors.New("crdt: the share is deleted")
	ErrVoided         = errors.New("crdt: voided by a concurrent denial (strong remove)")
	ErrEquivocated    = errors.New("crdt: author device equivocated in this op's past")
	ErrLockBusy       = errors.New("crdt: witness already acknowledges another live lock request")
	ErrLockStale      = errors.New("crdt: witness already acknowledged a lock request for this file with this epoch or a later one")
)

// maxTreeDepth bounds walks up the folder tree.
const maxTreeDepth = 1024

type device struct {
	user UserID
	reg  register
}

type group struct {
	name    string
	members map[UserID]register
}

type node struct {
	id         NodeID
	parent     NodeID
	name       string
	ix         int
	deleted    bool
	restricted register
}

type nodeGrants struct {
	users  map[UserID]register
	groups map[GroupID]register
}

type invite struct {
	id       InviteID
	issuer   UserID
	key      crypto.PubKey
	body     CreateInvite
	revoked  bool
	uses     uint32
	admitted map[UserID]bool
}

// Request states.
const (
	RequestPending  = "pending"
	RequestApproved = "approved"
	RequestDenied   = "denied"
)

type request struct {
	id     RequestID
	cert   DeviceCert
	node   NodeID
	role   Role
	note   string
	invite InviteID // set when it came from an invitation that needs approval
	status string
}

type lockReq struct {
	id      LockID
	path    string
	user    UserID
	device  peer.ID
	lease   uint32
	time    int64
	acks    map[peer.ID]bool
	expired map[peer.ID]bool
	granted bool
	fence   uint64
	ended   bool
	epoch   uint64 // see lockepoch.go; its fence if granted
	grantIx int    // order index of the ack that reached quorum
	endIx   int    // order index of the op that ended it
}

type fileLock struct {
	holder LockID // "" when free
	fence  uint64 // highest fence (request epoch) granted so far
	reqs   []LockID
}

type link struct {
	id        LinkID
	creator   UserID
	body      CreateLink
	suspended register
	revoked   bool
	downloads uint32 // LinkDownload ops
}

// State is the materialized authority state of a set of ops. Queries answer
// from it without looking at the ops again.
type State struct {
	folder     cid.Cid
	deleted    bool
	founders   map[UserID]register
	users      map[UserID]bool
	devices    map[peer.ID]*device
	groups     map[GroupID]*group
	userGroups map[UserID]map[GroupID]bool
	nodes      map[NodeID]*node
	children   map[NodeID]map[string][]NodeID
	grants     map[NodeID]*nodeGrants
	policy     register // val = strictness: 1 editors, 2 managers, 3 owners
	invites    map[InviteID]*invite
	requests   map[RequestID]*request
	witnesses  []peer.ID
	reqs       map[LockID]*lockReq
	locks      map[string]*fileLock
	links      map[LinkID]*link
	lockFacts  *lockFacts // the log's, shared, read only (lockepoch.go)
}

func newState() *State {
	s := &State{
		founders:   map[UserID]register{},
		users:      map[UserID]bool{},
		devices:    map[peer.ID]*device{},
		groups:     map[GroupID]*group{},
		userGroups: map[UserID]map[GroupID]bool{},
		nodes:      map[NodeID]*node{RootNode: {id: RootNode}},
		children:   map[NodeID]map[string][]NodeID{},
		grants:     map[NodeID]*nodeGrants{},
		invites:    map[InviteID]*invite{},
		requests:   map[RequestID]*request{},
		reqs:       map[LockID]*lockReq{},
		locks:      map[string]*fileLock{},
		links:      map[LinkID]*link{},
	}
	return s
}

func policyStrictness(p Policy) Role {
	switch p {
	case PolicyEditors:
		return 1
	case PolicyOwners:
		return 3
	}
	return 2
}

// Policy is the folder's manage-access policy. Concurrent settings resolve to
// the strictest.
func (s *State) Policy() Policy {
	if len(s.policy) == 0 {
		return PolicyManagers
	}
	var max Role
	for _, e := range s.policy {
		if e.val > max {
			max = e.val
		}
	}
	switch max {
	case 1:
		return PolicyEditors
	case 3:
		return PolicyOwners
	}
	return PolicyManagers
}

func (s *State) isFounder(u UserID) bool { return s.founders[u].on() }

func (s *State) deviceUser(d peer.ID) (UserID, bool) {
	dv := s.devices[d]
	if dv == nil || !dv.reg.on() {
		return "", false
	}
	return dv.user, true
}

// direct is u's role from grants placed exactly on n (to u or its groups).
func (s *State) direct(u UserID, n NodeID) Role {
	g := s.grants[n]
	if g == nil {
		return RoleNone
	}
	best := g.users[u].value()
	if len(g.groups) > 0 {
		for gid := range s.userGroups[u] {
			if r := g.groups[gid]; len(r) > 0 && s.inGroup(u, gid) {
				if v := r.value(); v > best {
					best = v
				}
			}
		}
	}
	return best
}

func (s *State) inGroup(u UserID, g GroupID) bool {
	gr := s.groups[g]
	return gr != nil && gr.members[u].on()
}

// rank is u's effective role at node n: founders rank above owners
// everywhere; otherwise the highest grant on n and its ancestors, stopping
// after the nearest restricted node.
func (s *State) rank(u UserID, n NodeID) Role {
	if s.deleted {
		return RoleNone
	}
	if s.isFounder(u) {
		return RoleFounder
	}
	best := RoleNone
	cur := n
	for i := 0; i < maxTreeDepth; i++ {
		nd := s.nodes[cur]
		if nd == nil {
			break
		}
		if r := s.direct(u, cur); r > best {
			best = r
		}
		if cur == RootNode || switchOn(nd.restricted) {
			break
		}
		cur = nd.parent
	}
	return best
}

// manageRank is the rank used to manage the membership of n: a restricted
// folder's members are managed from inside it or from just above it.
func (s *State) manageRank(u UserID, n NodeID) Role {
	r := s.rank(u, n)
	if nd := s.nodes[n]; nd != nil && n != RootNode && switchOn(nd.restricted) {
		if p := s.rank(u, nd.parent); p > r {
			r = p
		}
	}
	return r
}

func (s *State) canManage(u UserID, n NodeID) (Role, bool) {
	r := s.manageRank(u, n)
	return r, r >= MinRole(ActionManage, s.Policy())
}

// alive reports whether n exists and no folder on its way to the root is deleted.
func (s *State) alive(n NodeID) bool {
	cur := n
	for i := 0; i < maxTreeDepth; i++ {
		nd := s.nodes[cur]
		if nd == nil || nd.deleted {
			return false
		}
		if cur == RootNode {
			return true
		}
		cur = nd.parent
	}
	return false
}

// isUnder reports whether n is a (or the) descendant of anc.
func (s *State) isUnder(n, anc NodeID) bool {
	cur := n
	for i := 0; i < maxTreeDepth; i++ {
		if cur == anc {
			return true
		}
		if cur == RootNode {
			return false
		}
		nd := s.nodes[cur]
		if nd == nil {
			return false
		}
		cur = nd.parent
	}
	return true // too deep: treat as a cycle
}

func (s *State) child(parent NodeID, name string) (NodeID, bool) {
	var best *node
	for _, id := range s.children[parent][name] {
		nd := s.nodes[id]
		if nd == nil || nd.deleted || nd.parent != parent || nd.name != name {
			continue
		}
		if best == nil || nd.ix < best.ix {
			best = nd
		}
	}
	if best == nil {
		return "", false
	}
	return best.id, true
}

// resolve maps a path to the deepest folder node on it, and how many of its
// components that node covers.
func (s *State) resolve(path string) (NodeID, int, bool) {
	parts, ok := splitPath(path)
	if !ok {
		return RootNode, 0, false
	}
	cur := RootNode
	for i, p := range parts {
		next, ok := s.child(cur, p)
		if !ok {
			return cur, i, true
		}
		cur = next
	}
	return cur, len(parts), true
}

func (s *State) nodeOf(path string) NodeID {
	n, _, _ := s.resolve(path)
	return n
}

func (s *State) addChild(parent NodeID, name string, id NodeID) {
	m := s.children[parent]
	if m == nil {
		m = map[string][]NodeID{}
		s.children[parent] = m
	}
	for _, x := range m[name] {
		if x == id {
			return
		}
	}
	m[name] = append(m[name], id)
}

func (s *State) removeChild(parent NodeID, name string, id NodeID) {
	m := s.children[parent]
	l := m[name]
	for i, x := range l {
		if x == id {
			m[name] = append(l[:i:i], l[i+1:]...)
			break
		}
	}
}

func (s *State) quorum() int { return len(s.witnesses)/2 + 1 }

func (s *State) isWitness(d peer.ID) bool {
	for _, w := range s.witnesses {
		if w == d {
			return true
		}
	}
	return false
}

// groupMax is the highest role a group holds anywhere.
func (s *State) groupMax(g GroupID) Role {
	best := RoleNone
	for _, ng := range s.grants {
		if r := ng.groups[g].value(); r > best {
			best = r
		}
	}
	return best
}

func (s *State) principalRole(p Principal, n NodeID) Role {
	g := s.grants[n]
	if g == nil {
		return RoleNone
	}
	if p.Group != "" {
		return g.groups[p.Group].value()
	}
	return g.users[p.User].value()
}

// liveAck reports whether witness w acknowledges a live request on path
// other than except.
func (s *State) liveAck(w peer.ID, path string, except LockID) bool {
	fl := s.locks[path]
	if fl == nil {
		return false
	}
	for _, id := range fl.reqs {
		r := s.reqs[id]
		if id != except && r.acks[w] && !r.ended && !r.expired[w] {
			return true
		}
	}
	return false
}

func denied(err error, format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{err}, a...)...)
}

// check reports whether op (not genesis) is admissible in s, which must be the
// state of the op's causal past (LOG-RULES R4).
func (s *State) check(op *Op) error {
	if s.deleted {
		return ErrShareDeleted
	}
	// Ops by devices not yet in the log carry their own certificate.
	switch b := op.Body.(type) {
	case Join:
		return s.checkJoin(op, b)
	case RequestAccess:
		if b.Cert.Device != op.Author {
			return denied(ErrUnknownDevice, "request not signed by the certified device")
		}
		if dv := s.devices[b.Cert.Device]; dv != nil && dv.user != b.Cert.User {
			return denied(ErrBadTarget, "device belongs to another user")
		}
		if !s.alive(b.Node) {
			return denied(ErrBadTarget, "no such folder")
		}
		return nil
	case AddDevice:
		if !s.users[b.Cert.User] {
			return denied(ErrBadTarget, "user is not a member")
		}
		if dv := s.devices[b.Cert.Device]; dv != nil && dv.user != b.Cert.User {
			return denied(ErrBadTarget, "device belongs to another user")
		}
		if op.Author == b.Cert.Device {
			// A device may bring itself in once; a removed device comes
			// back only through another live device of its user, so an
			// old certificate cannot undo a removal.
			if s.devices[b.Cert.Device] != nil {
				return denied(ErrUnauthorized, "a known device cannot re-add itself")
			}
			return nil
		}
		u, ok := s.deviceUser(op.Author)
		if !ok {
			return ErrUnknownDevice
		}
		if u != b.Cert.User {
			return denied(ErrUnauthorized, "only the user certifies its devices")
		}
		return nil
	}
	u, ok := s.deviceUser(op.Author)
	if !ok {
		return ErrUnknownDevice
	}
	need := func(n NodeID, r Role) error {
		if got := s.rank(u, n); got < r {
			return denied(ErrUnauthorized, "%s needs %s at %s, has %s", op.Kind, r, n, got)
		}
		return nil
	}
	switch b := op.Body.(type) {
	case Genesis:
		return denied(ErrBadTarget, "second genesis")
	case RemoveDevice:
		dv := s.devices[b.Device]
		if dv == nil || !dv.reg.on() {
			return denied(ErrBadTarget, "no such device")
		}
		if dv.user == u {
			return nil
		}
		r := s.rank(u, RootNode)
		if r < RoleOwner || !mayTake(r, s.rank(dv.user, RootNode)) {
			return denied(ErrUnauthorized, "removing another user's device")
		}
	case CreateGroup:
		if _, ok := s.canManage(u, RootNode); !ok {
			return denied(ErrUnauthorized, "create group")
		}
	case AddGroupMember:
		if s.groups[b.Group] == nil {
			return denied(ErrBadTarget, "no such group")
		}
		r, ok := s.canManage(u, RootNode)
		if !ok || !mayGrant(r, s.groupMax(b.Group)) {
			return denied(ErrUnauthorized, "group member")
		}
	case RemoveGroupMember:
		if !s.inGroup(b.User, b.Group) {
			return denied(ErrBadTarget, "not a member")
		}
		r, ok := s.canManage(u, RootNode)
		if b.User != u && (!ok || !mayTake(r, s.groupMax(b.Group))) {
			return denied(ErrUnauthorized, "group member")
		}
	case Grant:
		if !s.alive(b.Node) || (b.Principal.Group != "" && s.groups[b.Principal.Group] == nil) {
			return denied(ErrBadTarget, "grant target")
		}
		r, ok := s.canManage(u, b.Node)
		if !ok || !mayGrant(r, b.Role) {
			return denied(ErrUnauthorized, "%s may not grant %s", r, b.Role)
		}
		// A grant replaces the grant it follows, so a lower one is a
		// demotion: only a rank strictly above the current role may make
		// it (R4 strictly below), or peers could duel by re-granting.
		if cur := s.principalRole(b.Principal, b.Node); b.Role < cur && !mayTake(r, cur) {
			return denied(ErrUnauthorized, "%s may not lower %s to %s", r, cur, b.Role)
		}
	case ChangeRole:
		cur := s.principalRole(b.Principal, b.Node)
		if cur == RoleNone || !s.alive(b.Node) {
			return denied(ErrBadTarget, "no grant to change")
		}
		r, ok := s.canManage(u, b.Node)
		if !ok || !mayTake(r, cur) || !mayGrant(r, b.Role) {
			return denied(ErrUnauthorized, "%s may not change %s to %s", r, cur, b.Role)
		}
	case Revoke:
		cur := s.principalRole(b.Principal, b.Node)
		if cur == RoleNone {
			return denied(ErrBadTarget, "no grant to revoke")
		}
		r, ok := s.canManage(u, b.Node)
		if !ok || !mayTake(r, cur) {
			return denied(ErrUnauthorized, "%s may not revoke %s", r, cur)
		}
	case Renounce:
		if b.Founder {
			if !s.isFounder(u) {
				return denied(ErrBadTarget, "not a founder")
			}
			return nil
		}
		if s.principalRole(UserPrincipal(u), b.Node) == RoleNone {
			return denied(ErrBadTarget, "nothing to renounce")
		}
	case Restrict, Unrestrict:
		n := nodeOfBody(b)
		if n == RootNode || !s.alive(n) {
			return denied(ErrBadTarget, "restrict target")
		}
		return need(s.nodes[n].parent, RoleOrganizer)
	case CreateFolder:
		if !s.alive(b.Parent) {
			return denied(ErrBadTarget, "no parent")
		}
		return need(b.Parent, RoleOrganizer)
	case MoveFolder:
		if b.Node == RootNode || !s.alive(b.Node) || !s.alive(b.NewParent) {
			return denied(ErrBadTarget, "move target")
		}
		if err := need(s.nodes[b.Node].parent, RoleOrganizer); err != nil {
			return err
		}
		return need(b.NewParent, RoleOrganizer)
	case DeleteFolder:
		if !s.alive(b.Node) {
			return denied(ErrBadTarget, "delete target")
		}
		return need(s.nodes[b.Node].parent, RoleOrganizer)
	case SetPolicy, DeclareWitnesses, DeleteShare:
		return need(RootNode, RoleOwner)
	case CreateInvite:
		if !s.alive(b.Node) {
			return denied(ErrBadTarget, "no such folder")
		}
		// An invitation needing approval may ask for a role its issuer
		// cannot grant: nothing is granted until an approver who may grant
		// it approves (Approve checks strictly-below).
		r, ok := s.canManage(u, b.Node)
		if !ok || !mayGrant(r, b.Role) && !b.Approval {
			return denied(ErrUnauthorized, "%s may not invite as %s", r, b.Role)
		}
	case RevokeInvite:
		inv := s.invites[b.Invite]
		if inv == nil || inv.revoked {
			return denied(ErrBadTarget, "no such invitation")
		}
		if _, ok := s.canManage(u, inv.body.Node); !ok && inv.issuer != u {
			return denied(ErrUnauthorized, "revoke invitation")
		}
	case Approve:
		rq := s.requests[b.Request]
		if rq != nil && rq.status == RequestDenied {
			// A denial of the request takes the approver's power over it
			// away: an approve concurrent with a deny is voided (R5).
			return denied(ErrUnauthorized, "request denied")
		}
		if rq == nil || rq.status != RequestPending || !s.alive(rq.node) {
			return denied(ErrBadTarget, "no pending request")
		}
		r, ok := s.canManage(u, rq.node)
		if !ok || !mayGrant(r, b.Role) {
			return denied(ErrUnauthorized, "%s may not approve as %s", r, b.Role)
		}
		// An approval grants like Grant: it may not lower a member the
		// approver could not revoke.
		if cur := s.principalRole(UserPrincipal(rq.cert.User), rq.node); b.Role < cur && !mayTake(r, cur) {
			return denied(ErrUnauthorized, "%s may not lower %s to %s", r, cur, b.Role)
		}
		if dv := s.devices[rq.cert.Device]; dv != nil && dv.user != rq.cert.User {
			return denied(ErrBadTarget, "device belongs to another user")
		}
	case Deny:
		rq := s.requests[b.Request]
		if rq == nil || rq.status != RequestPending {
			return denied(ErrBadTarget, "no pending request")
		}
		if _, ok := s.canManage(u, rq.node); !ok {
			return denied(ErrUnauthorized, "deny")
		}
	case LockRequest:
		return need(s.nodeOf(b.Path), RoleEditor)
	case LockAck:
		rq := s.reqs[b.Request]
		if rq == nil || rq.ended || rq.acks[op.Author] {
			return denied(ErrBadTarget, "no live lock request")
		}
		if !s.isWitness(op.Author) {
			return denied(ErrUnauthorized, "not a witness")
		}
		if s.liveAck(op.Author, rq.path, rq.id) {
			return ErrLockBusy
		}
		if rq.epoch <= s.lockFacts.ackFloor(op, rq.path) {
			return ErrLockStale
		}
	case LockRelease:
		rq := s.reqs[b.Request]
		if rq == nil || rq.ended {
			return denied(ErrBadTarget, "no live lock request")
		}
		if rq.user != u {
			return denied(ErrUnauthorized, "not the requester")
		}
	case LockBreak:
		rq := s.reqs[b.Request]
		if rq == nil || rq.ended {
			return denied(ErrBadTarget, "no live lock request")
		}
		return need(s.nodeOf(rq.path), MinRole(ActionBreakLock, s.Policy()))
	case LockExpire:
		rq := s.reqs[b.Request]
		if rq == nil || rq.ended || !rq.acks[op.Author] || rq.expired[op.Author] {
			return denied(ErrBadTarget, "nothing to expire")
		}
		if !s.isWitness(op.Author) {
			return denied(ErrUnauthorized, "not a witness")
		}
	case CreateLink:
		r, ok := s.canManage(u, s.nodeOf(b.Path))
		if !ok || !mayGrant(r, b.Role) {
			return denied(ErrUnauthorized, "share link")
		}
	case SuspendLink, ResumeLink, RevokeLink:
		l := s.links[linkOfBody(b)]
		if l == nil || l.revoked {
			return denied(ErrBadTarget, "no such link")
		}
		if _, ok := s.canManage(u, s.nodeOf(l.body.Path)); !ok && l.creator != u {
			return denied(ErrUnauthorized, "link")
		}
	case LinkDownload:
		l := s.links[b.Link]
		if l == nil || l.revoked {
			return denied(ErrBadTarget, "no such link")
		}
		return need(s.nodeOf(l.body.Path), RoleViewer) // the serving device could read the file
	default:
		return denied(ErrBadTarget, "unknown kind %s", op.Kind)
	}
	return nil
}

func nodeOfBody(b Body) NodeID {
	switch v := b.(type) {
	case Restrict:
		return v.Node
	case Unrestrict:
		return v.Node
	}
	return RootNode
}

func linkOfBody(b Body) LinkID {
	switch v := b.(type) {
	case SuspendLink:
		return v.Link
	case ResumeLink:
		return v.Link
	case RevokeLink:
		return v.Link
	}
	return ""
}

func (s *State) checkJoin(op *Op, b Join) error {
	if b.Cert.Device != op.Author {
		return denied(ErrUnknownDevice, "join not signed by the certified device")
	}
	if dv := s.devices[b.Cert.Device]; dv != nil && dv.user != b.Cert.User {
		return denied(ErrBadTarget, "device belongs to another user")
	}
	inv := s.invites[b.Invite]
	if inv == nil {
		return denied(ErrBadTarget, "no such invitation")
	}
	if inv.revoked || inv.uses >= inv.body.MaxUses || inv.admitted[b.Cert.User] ||
		(inv.body.ExpiresAt != 0 && op.Time > inv.body.ExpiresAt) {
		return ErrInviteUnusable
	}
	ok, err := inv.key.Verify(inviteProofMessage(s.folder, b.Invite, b.Cert), b.Proof)
	if err != nil || !ok {
		return denied(ErrBadSignature, "invitation proof")
	}
	if !s.alive(inv.body.Node) {
		return denied(ErrBadTarget, "invitation folder is gone")
	}
	// The issuer must still be able to grant what the invitation grants (D2).
	// (Or, for an invitation needing approval, still manage its folder.)
	r, can := s.canManage(inv.issuer, inv.body.Node)
	if !can || !mayGrant(r, inv.body.Role) && !inv.body.Approval {
		return denied(ErrUnauthorized, "invitation issuer no longer may grant %s", inv.body.Role)
	}
	return nil
}

// isDenialOp reports whether op, valid in s (the state of its causal past),
// takes a right away (LOG-RULES R5): its effective instances void the
// concurrent ops that would not be valid with it applied. A grant is a
// grant or a role change is a denial only when it lowers the role it
// replaces (a demotion); a promotion gives rights and takes none, so it
// voids nothing (lead's decision on R5).
func (s *State) isDenialOp(op *Op) bool {
	switch b := op.Body.(type) {
	case Grant:
		return b.Role < s.principalRole(b.Principal, b.Node)
	case ChangeRole:
		return b.Role < s.principalRole(b.Principal, b.Node)
	}
	return isDenial(op.Kind)
}

// deniedUser is the one user a denial op, valid in s (the state of its
// past), takes rights from, or "" when it is aimed at an object rather than
// a user (a restriction, a policy, an invitation, a request, a lock, a
// link, the share) or at a group, and so may take rights from anyone.
func (s *State) deniedUser(op *Op) UserID {
	switch b := op.Body.(type) {
	case Grant:
		return b.Principal.User
	case ChangeRole:
		return b.Principal.User
	case Revoke:
		return b.Principal.User
	case Renounce:
		u, _ := s.deviceUser(op.Author)
		return u
	case RemoveDevice:
		if dv := s.devices[b.Device]; dv != nil {
			return dv.user
		}
	case RemoveGroupMember:
		return b.User
	}
	return ""
}

// opUser is the user op acts for in s (the state of its past), "" if unknown.
func (s *State) opUser(op *Op) UserID {
	switch b := op.Body.(type) {
	case Join:
		return b.Cert.User
	case RequestAccess:
		return b.Cert.User
	case AddDevice:
		return b.Cert.User
	}
	if dv := s.devices[op.Author]; dv != nil {
		return dv.user
	}
	return ""
}

// aimedAt filters the concurrent effective denials (order indices into
// order) down to those that can take a right op needs (D1: "every op by P
// that needs r"): denials aimed at op's user, or, for a join, at the
// invitation's issuer (D2), and every denial aimed at an object or a group.
// A denial of someone else is left out: it takes nothing from op's author,
// and applying it could only hide a lost right behind a missing target (a
// demoted manager's change of a member who concurrently renounced).
func (s *State) aimedAt(op *Op, conc []int, order []*entry) []int {
	if len(conc) == 0 {
		return conc
	}
	u := s.opUser(op)
	if u == "" {
		return conc
	}
	var issuer UserID
	if j, ok := op.Body.(Join); ok {
		if inv := s.invites[j.Invite]; inv != nil {
			issuer = inv.issuer
		}
	}
	out := conc[:0:0]
	for _, d := range conc {
		if h := order[d].hits; h == "" || h == u || (issuer != "" && h == issuer) {
			out = append(out, d)
		}
	}
	return out
}

// isDenial reports the kinds that always take a right away.
func isDenial(k Kind) bool {
	switch k {
	case KindRemoveDevice, KindRemoveGroupMember, KindRevoke, KindRenounce,
		KindRestrict, KindSetPolicy, KindRevokeInvite, KindDeny, KindLockBreak,
		KindSuspendLink, KindRevokeLink, KindDeleteShare:
		return true
	}
	return false
}

func (s *State) grantsAt(n NodeID) *nodeGrants {
	g := s.grants[n]
	if g == nil {
		g = &nodeGrants{users: map[UserID]register{}, groups: map[GroupID]register{}}
		s.grants[n] = g
	}
	return g
}

func (s *State) putGrant(p Principal, n NodeID, e regEntry, anc ancFunc) {
	g := s.grantsAt(n)
	if p.Group != "" {
		g.groups[p.Group] = g.groups[p.Group].put(e, anc)
		return
	}
	s.users[p.User] = true
	g.users[p.User] = g.users[p.User].put(e, anc)
}

func (s *State) addDevice(c DeviceCert, ix int, anc ancFunc) {
	s.users[c.User] = true
	dv := s.devices[c.Device]
	if dv == nil {
		dv = &device{user: c.User}
		s.devices[c.Device] = dv
	}
	dv.reg = dv.reg.put(regEntry{ix: ix, kind: regAdd, val: RoleViewer}, anc)
}

// apply adds the effect of op, at order index ix, to s. It does not check
// rights: callers apply only ops found valid (or, when testing another op
// against it, effective denials).
func (s *State) apply(op *Op, ix int, anc ancFunc) {
	id := RefOf(op.ID)
	author, _ := s.deviceUser(op.Author)
	switch b := op.Body.(type) {
	case Genesis:
		s.folder = op.ID
		for _, c := range b.Founders {
			s.founders[c.User] = s.founders[c.User].put(regEntry{ix: ix, kind: regAdd, val: RoleOwner}, anc)
			s.putGrant(UserPrincipal(c.User), RootNode, regEntry{ix: ix, kind: regAdd, val: RoleOwner}, anc)
			s.addDevice(c, ix, anc)
		}
	case AddDevice:
		s.addDevice(b.Cert, ix, anc)
	case RemoveDevice:
		if dv := s.devices[b.Device]; dv != nil {
			dv.reg = dv.reg.put(regEntry{ix: ix, kind: regDel}, anc)
		}
	case CreateGroup:
		s.groups[id] = &group{name: b.Name, members: map[UserID]register{}}
	case AddGroupMember:
		if g := s.groups[b.Group]; g != nil {
			s.users[b.User] = true
			g.members[b.User] = g.members[b.User].put(regEntry{ix: ix, kind: regAdd, val: RoleViewer}, anc)
			if s.userGroups[b.User] == nil {
				s.userGroups[b.User] = map[GroupID]bool{}
			}
			s.userGroups[b.User][b.Group] = true
		}
	case RemoveGroupMember:
		if g := s.groups[b.Group]; g != nil {
			g.members[b.User] = g.members[b.User].put(regEntry{ix: ix, kind: regDel}, anc)
		}
	case Grant:
		s.putGrant(b.Principal, b.Node, regEntry{ix: ix, kind: regAdd, val: b.Role}, anc)
	case ChangeRole:
		s.putGrant(b.Principal, b.Node, regEntry{ix: ix, kind: regChange, val: b.Role}, anc)
	case Revoke:
		s.putGrant(b.Principal, b.Node, regEntry{ix: ix, kind: regDel}, anc)
	case Renounce:
		if author == "" {
			return
		}
		if b.Founder {
			s.founders[author] = s.founders[author].put(regEntry{ix: ix, kind: regDel}, anc)
		} else {
			s.putGrant(UserPrincipal(author), b.Node, regEntry{ix: ix, kind: regDel}, anc)
		}
	case Restrict:
		if nd := s.nodes[b.Node]; nd != nil {
			nd.restricted = nd.restricted.put(regEntry{ix: ix, kind: regDel}, anc)
			// A restriction is "on" while its register holds a del entry;
			// store it inverted: see restrictOn.
		}
	case Unrestrict:
		if nd := s.nodes[b.Node]; nd != nil {
			nd.restricted = nd.restricted.put(regEntry{ix: ix, kind: regAdd, val: RoleViewer}, anc)
		}
	case CreateFolder:
		s.nodes[id] = &node{id: id, parent: b.Parent, name: b.Name, ix: ix}
		s.addChild(b.Parent, b.Name, id)
	case MoveFolder:
		nd := s.nodes[b.Node]
		if nd == nil || s.isUnder(b.NewParent, b.Node) {
			return // a move under itself is skipped (Kleppmann et al.)
		}
		s.removeChild(nd.parent, nd.name, nd.id)
		nd.parent, nd.name = b.NewParent, b.NewName
		s.addChild(nd.parent, nd.name, nd.id)
	case DeleteFolder:
		if nd := s.nodes[b.Node]; nd != nil {
			nd.deleted = true
		}
	case SetPolicy:
		s.policy = s.policy.put(regEntry{ix: ix, kind: regAdd, val: policyStrictness(b.Policy)}, anc)
	case CreateInvite:
		key, _ := inviteKey(b.Key)
		s.invites[id] = &invite{id: id, issuer: author, key: key, body: b, admitted: map[UserID]bool{}}
	case RevokeInvite:
		if inv := s.invites[b.Invite]; inv != nil {
			inv.revoked = true
		}
	case Join:
		inv := s.invites[b.Invite]
		if inv == nil {
			return
		}
		inv.uses++
		inv.admitted[b.Cert.User] = true
		if inv.body.Approval {
			s.requests[id] = &request{id: id, cert: b.Cert, node: inv.body.Node, role: inv.body.Role,
				invite: inv.id, status: RequestPending}
			return
		}
		s.putGrant(UserPrincipal(b.Cert.User), inv.body.Node, regEntry{ix: ix, kind: regAdd, val: inv.body.Role}, anc)
		s.addDevice(b.Cert, ix, anc)
	case RequestAccess:
		s.requests[id] = &request{id: id, cert: b.Cert, node: b.Node, role: b.Role, note: b.Note, status: RequestPending}
	case Approve:
		if rq := s.requests[b.Request]; rq != nil {
			rq.status = RequestApproved
			s.putGrant(UserPrincipal(rq.cert.User), rq.node, regEntry{ix: ix, kind: regAdd, val: b.Role}, anc)
			s.addDevice(rq.cert, ix, anc)
		}
	case Deny:
		if rq := s.requests[b.Request]; rq != nil {
			rq.status = RequestDenied
		}
	case DeclareWitnesses:
		s.witnesses = append([]peer.ID(nil), b.Devices...)
	case LockRequest:
		fl := s.fileLock(cleanPath(b.Path))
		s.reqs[id] = &lockReq{id: id, path: cleanPath(b.Path), user: author, device: op.Author, lease: b.LeaseSecs,
			time: op.Time, acks: map[peer.ID]bool{}, expired: map[peer.ID]bool{}, epoch: s.lockFacts.epoch(id)}
		fl.reqs = append(fl.reqs, id)
	case LockAck:
		rq := s.reqs[b.Request]
		if rq == nil {
			return
		}
		if rq.ended { // ended requests never change (clone shares them)
			return
		}
		rq.acks[op.Author] = true
		fl := s.fileLock(rq.path)
		// The fence is the request's epoch, fixed by the request's causal
		// past: the order of concurrent ops cannot renumber it.
		if !rq.granted && !rq.ended && fl.holder == "" && rq.epoch > fl.fence && s.count(rq.acks) >= s.quorum() {
			fl.fence = rq.epoch
			rq.granted, rq.fence, rq.grantIx = true, rq.epoch, ix
			fl.holder = rq.id
		}
	case LockRelease, LockBreak:
		s.endLock(lockOfBody(b), ix)
	case LockExpire:
		rq := s.reqs[b.Request]
		if rq == nil || rq.ended {
			return
		}
		rq.expired[op.Author] = true
		if s.count(rq.expired) >= s.quorum() {
			s.endLock(rq.id, ix)
		}
	case CreateLink:
		s.links[id] = &link{id: id, creator: author, body: b}
	case SuspendLink:
		if l := s.links[b.Link]; l != nil {
			l.suspended = l.suspended.put(regEntry{ix: ix, kind: regDel}, anc)
		}
	case ResumeLink:
		if l := s.links[b.Link]; l != nil {
			l.suspended = l.suspended.put(regEntry{ix: ix, kind: regAdd, val: RoleViewer}, anc)
		}
	case RevokeLink:
		if l := s.links[b.Link]; l != nil {
			l.revoked = true
		}
	case LinkDownload:
		if l := s.links[b.Link]; l != nil {
			l.downloads++
		}
	case DeleteShare:
		s.deleted = true
	}
}

func lockOfBody(b Body) LockID {
	switch v := b.(type) {
	case LockRelease:
		return v.Request
	case LockBreak:
		return v.Request
	}
	return ""
}

// restrictOn and suspendOn read "switch" registers whose del entries mean
// "on": a restriction or suspension wins over a concurrent lift.
func switchOn(r register) bool { return len(r) > 0 && r.value() == RoleNone }

func (s *State) count(m map[peer.ID]bool) int {
	n := 0
	for _, w := range s.witnesses {
		if m[w] {
			n++
		}
	}
	return n
}

func (s *State) fileLock(path string) *fileLock {
	fl := s.locks[path]
	if fl == nil {
		fl = &fileLock{}
		s.locks[path] = fl
	}
	return fl
}

func (s *State) endLock(id LockID, ix int) {
	rq := s.reqs[id]
	if rq == nil || rq.ended {
		return
	}
	rq.ended, rq.endIx = true, ix
	if fl := s.locks[rq.path]; fl != nil && fl.holder == id {
		fl.holder = ""
	}
}

func cleanPath(p string) string {
	parts, _ := splitPath(p)
	out := ""
	for i, s := range parts {
		if i > 0 {
			out += "/"
		}
		out += s
	}
	return out
}
