package crdt

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Can reports whether user may do action at path (a slash-separated path in
// the share; files take the rights of their folder). Writing a file that
// someone else holds a lock on is refused. Can answers from the materialized
// state: it never scans the log.
func (l *Log) Can(user UserID, action Action, path string) bool {
	return l.State().Can(user, action, path)
}

// RoleAt is user's effective role at path (RoleFounder for founders).
func (l *Log) RoleAt(user UserID, path string) Role { return l.State().RoleAt(user, path) }

// Can: see Log.Can.
func (s *State) Can(user UserID, action Action, path string) bool {
	if s.deleted {
		return false
	}
	if action == ActionSeeName {
		parts, ok := splitPath(path)
		if !ok {
			return false
		}
		if len(parts) > 0 {
			parts = parts[:len(parts)-1]
		}
		n := RootNode
		if len(parts) > 0 {
			n = s.nodeOf(joinPath(parts))
		}
		return s.rank(user, n) >= RoleViewer
	}
	n, _, ok := s.resolve(path)
	if !ok {
		return false
	}
	var r Role
	if action == ActionManage {
		r = s.manageRank(user, n)
	} else {
		r = s.rank(user, n)
	}
	if r < MinRole(action, s.Policy()) {
		return false
	}
	if action == ActionWrite {
		if h, ok := s.LockHolder(path); ok && h.User != user {
			return false
		}
	}
	return true
}

// RoleAt: see Log.RoleAt.
func (s *State) RoleAt(user UserID, path string) Role {
	n, _, ok := s.resolve(path)
	if !ok {
		return RoleNone
	}
	return s.rank(user, n)
}

func joinPath(parts []string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	return b.String()
}

// Member is one user's effective role at a path and where it comes from.
type Member struct {
	User    UserID
	Role    Role
	Founder bool
	From    NodeID  // the folder node whose grant gives the role ("" = root)
	Via     GroupID // set when the role comes through a group
	Here    bool    // the grant is on the path's own folder node (not inherited)
}

// Members lists the users with any role at path, sorted by user ID.
func (l *Log) Members(path string) []Member { return l.State().Members(path) }

// Members: see Log.Members.
func (s *State) Members(path string) []Member {
	if s.deleted {
		return nil
	}
	start, _, ok := s.resolve(path)
	if !ok {
		return nil
	}
	best := map[UserID]*Member{}
	consider := func(u UserID, r Role, from NodeID, via GroupID) {
		if r == RoleNone {
			return
		}
		m := best[u]
		if m == nil || r > m.Role {
			best[u] = &Member{User: u, Role: r, From: from, Via: via, Here: from == start}
		}
	}
	cur := start
	for i := 0; i < maxTreeDepth; i++ {
		nd := s.nodes[cur]
		if nd == nil {
			break
		}
		if g := s.grants[cur]; g != nil {
			for u, reg := range g.users {
				consider(u, reg.value(), cur, "")
			}
			for gid, reg := range g.groups {
				r := reg.value()
				if gr := s.groups[gid]; gr != nil && r != RoleNone {
					for u, mreg := range gr.members {
						if mreg.on() {
							consider(u, r, cur, gid)
						}
					}
				}
			}
		}
		if cur == RootNode || switchOn(nd.restricted) {
			break
		}
		cur = nd.parent
	}
	for u, reg := range s.founders {
		if reg.on() {
			best[u] = &Member{User: u, Role: RoleFounder, Founder: true, From: RootNode, Here: start == RootNode}
		}
	}
	out := make([]Member, 0, len(best))
	for _, m := range best {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].User < out[j].User })
	return out
}

// Lock is a granted lock on a file.
type Lock struct {
	ID        LockID
	Path      string
	User      UserID
	Device    peer.ID
	Fence     uint64 // fencing number: strictly increasing per file
	LeaseSecs uint32
	Time      int64 // the request's advisory time hint (Unix ms)
}

func (r *lockReq) lock() Lock {
	return Lock{ID: r.id, Path: r.path, User: r.user, Device: r.device, Fence: r.fence, LeaseSecs: r.lease, Time: r.time}
}

// LockHolder reports the lock held on the file at path, if any. A holder who
// lost write access at the path no longer holds it.
func (l *Log) LockHolder(path string) (Lock, bool) { return l.State().LockHolder(path) }

// LockHolder: see Log.LockHolder.
func (s *State) LockHolder(path string) (Lock, bool) {
	fl := s.locks[cleanPath(path)]
	if fl == nil || fl.holder == "" {
		return Lock{}, false
	}
	rq := s.reqs[fl.holder]
	if s.rank(rq.user, s.nodeOf(rq.path)) < RoleEditor {
		return Lock{}, false
	}
	return rq.lock(), true
}

// ExpiredLeases lists granted locks whose lease, counted from the request's
// time hint, has run out at now (Unix ms). A witness uses it to decide to
// publish LockExpire; the log itself never compares times.
func (l *Log) ExpiredLeases(now int64) []Lock {
	s := l.State()
	var out []Lock
	for _, fl := range s.locks {
		if fl.holder == "" {
			continue
		}
		rq := s.reqs[fl.holder]
		if rq.time+int64(rq.lease)*1000 < now {
			out = append(out, rq.lock())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Invite is a live invitation.
type Invite struct {
	ID        InviteID
	Issuer    UserID
	Key       []byte
	Role      Role
	Node      NodeID
	ExpiresAt int64
	MaxUses   uint32
	Uses      uint32
	Approval  bool
}

// Invites lists invitations that are neither revoked nor used up, sorted by ID.
// Expiry needs a clock: see ExpiredInvites.
func (l *Log) Invites() []Invite {
	s := l.State()
	var out []Invite
	for _, inv := range s.invites {
		if inv.revoked || inv.uses >= inv.body.MaxUses || s.deleted {
			continue
		}
		b := inv.body
		out = append(out, Invite{ID: inv.id, Issuer: inv.issuer, Key: b.Key, Role: b.Role, Node: b.Node,
			ExpiresAt: b.ExpiresAt, MaxUses: b.MaxUses, Uses: inv.uses, Approval: b.Approval})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ExpiredInvites lists live invitations whose expiry hint is before now
// (Unix ms): an owner's client publishes RevokeInvite for them, turning time
// into a causal fact.
func (l *Log) ExpiredInvites(now int64) []InviteID {
	var out []InviteID
	for _, inv := range l.Invites() {
		if inv.ExpiresAt != 0 && inv.ExpiresAt < now {
			out = append(out, inv.ID)
		}
	}
	return out
}

// Link is a live share link.
type Link struct {
	ID            LinkID
	Creator       UserID
	Path          string
	Role          Role
	ExpiresAt     int64
	Salt          []byte
	Verifier      []byte
	DownloadLimit uint32
	Downloads     uint32 // completed downloads recorded in the log (LinkDownload)
	Suspended     bool
}

// Links lists links not revoked whose creator may still manage their path,
// sorted by ID. Suspended links are listed with Suspended set.
func (l *Log) Links() []Link {
	s := l.State()
	var out []Link
	for _, k := range s.links {
		if k.revoked || s.deleted {
			continue
		}
		if r, ok := s.canManage(k.creator, s.nodeOf(k.body.Path)); !ok || !mayGrant(r, k.body.Role) {
			continue
		}
		b := k.body
		out = append(out, Link{ID: k.id, Creator: k.creator, Path: b.Path, Role: b.Role, ExpiresAt: b.ExpiresAt,
			Salt: b.Salt, Verifier: b.Verifier, DownloadLimit: b.DownloadLimit, Downloads: k.downloads, Suspended: switchOn(k.suspended)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Request is an access request.
type Request struct {
	ID     RequestID
	User   UserID
	Device peer.ID
	Node   NodeID
	Role   Role
	Note   string
	Invite InviteID // set when it came from an invitation needing approval
	Status string
}

// Requests lists pending access requests, sorted by ID.
func (l *Log) Requests() []Request {
	s := l.State()
	var out []Request
	for _, r := range s.requests {
		if r.status != RequestPending || s.deleted {
			continue
		}
		out = append(out, Request{ID: r.id, User: r.cert.User, Device: r.cert.Device, Node: r.node, Role: r.role,
			Note: r.note, Invite: r.invite, Status: r.status})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// RequestStatus reports a request's state (pending, approved, denied).
func (l *Log) RequestStatus(id RequestID) (string, bool) {
	r := l.State().requests[id]
	if r == nil {
		return "", false
	}
	return r.status, true
}

// NodeAt resolves a path to the folder node it names exactly.
func (l *Log) NodeAt(path string) (NodeID, bool) {
	n, depth, ok := l.State().resolve(path)
	parts, _ := splitPath(path)
	return n, ok && depth == len(parts)
}

// Witnesses is the declared witness set.
func (l *Log) Witnesses() []peer.ID { return append([]peer.ID(nil), l.State().witnesses...) }

// DeviceUser reports the user a live device acts for.
func (l *Log) DeviceUser(d peer.ID) (UserID, bool) { return l.State().deviceUser(d) }

// Deleted reports whether the share was deleted.
func (l *Log) Deleted() bool { return l.State().deleted }

// Verdict is what to do with an incoming file version.
type Verdict uint8

// The verdicts.
const (
	VerdictAccept       Verdict = iota + 1 // the author may write it: apply it
	VerdictReject                          // the author had no right at the heads it names: drop it
	VerdictQuarantine                      // the author was concurrently revoked: keep it, show it to managers only
	VerdictConflictCopy                    // a lock held by someone else, or a stale fence: keep as a conflict copy
)

func (v Verdict) String() string {
	switch v {
	case VerdictAccept:
		return "accept"
	case VerdictReject:
		return "reject"
	case VerdictQuarantine:
		return "quarantine"
	case VerdictConflictCopy:
		return "conflict-copy"
	}
	return fmt.Sprintf("Verdict(%d)", v)
}

type verdictState struct {
	base, withDenials *State
	past              func(int) bool
	hs                []*entry
}

// VersionVerdict judges a file version written by device author at path,
// naming the log heads it was made under and the lock fence it carries (0 for
// none). Rules: Reject if the author's device was not live or its user could
// not write path in the state of those heads (R4); Quarantine if an effective
// denial not in that past takes the right away (strong remove, R8);
// ConflictCopy if a lock by someone else was granted and not ended in that
// past, or granted concurrently with it, or the fence is not the author's
// current one (R10); Accept otherwise. Heads the log lacks give
// ErrUnknownHeads: fetch them first.
func (l *Log) VersionVerdict(author peer.ID, heads []cid.Cid, path string, fence uint64) (Verdict, error) {
	l.settle()
	if _, ok := splitPath(path); !ok || len(heads) == 0 {
		return VerdictReject, fmt.Errorf("%w: bad path or no heads", ErrMalformed)
	}
	heads = sortCids(heads)
	var key bytes.Buffer
	var hs []*entry
	for _, h := range heads {
		e := l.byKey[h.KeyString()]
		if e == nil {
			return VerdictReject, ErrUnknownHeads
		}
		hs = append(hs, e)
		key.WriteString(e.key)
	}
	vs, ok := l.verdicts[key.String()]
	if !ok {
		vs.hs = hs
		vs.past = l.pastOf(heads)
		current := len(heads) == len(l.heads)
		for _, e := range hs {
			current = current && l.heads[e.key] != nil
		}
		if current {
			vs.base = l.state
		} else {
			vs.base = l.stateAt(vs.past)
		}
		var conc []int
		first, _ := l.cutIn(vs.past) // everything up to a cut in the past is in the past
		for i := first; i < len(l.order); i++ {
			if e := l.order[i]; e.denial && !vs.past(i) {
				conc = append(conc, i)
			}
		}
		if len(conc) > 0 {
			st := vs.base.clone() // the state of the past, as stateAt(vs.past) builds it
			for _, d := range conc {
				st.apply(l.order[d].op, d, l.isAnc)
			}
			vs.withDenials = st
		}
		if l.verdicts == nil {
			l.verdicts = map[string]verdictState{}
		}
		l.verdicts[key.String()] = vs
	}
	u, ok := vs.base.deviceUser(author)
	if !ok || vs.base.rank(u, vs.base.nodeOf(path)) < RoleEditor {
		return VerdictReject, nil
	}
	if w := vs.withDenials; w != nil {
		if u2, ok := w.deviceUser(author); !ok || u2 != u || w.rank(u, w.nodeOf(path)) < RoleEditor {
			return VerdictQuarantine, nil
		}
	}
	after := func(ix int) bool { // the op at ix causally follows every head
		for _, h := range vs.hs {
			if !l.isAnc(h.ix, ix) {
				return false
			}
		}
		return true
	}
	fl := l.state.locks[cleanPath(path)]
	if fence > 0 {
		if fl == nil || fl.fence != fence {
			return VerdictConflictCopy, nil
		}
		for _, id := range fl.reqs {
			rq := l.state.reqs[id]
			if rq.granted && rq.fence == fence {
				if rq.user != u || !vs.past(rq.grantIx) || (rq.ended && !after(rq.endIx)) {
					return VerdictConflictCopy, nil
				}
				return VerdictAccept, nil
			}
		}
		return VerdictConflictCopy, nil
	}
	if fl != nil {
		for _, id := range fl.reqs {
			rq := l.state.reqs[id]
			if !rq.granted || after(rq.grantIx) {
				continue
			}
			if rq.ended && vs.past(rq.endIx) {
				continue
			}
			return VerdictConflictCopy, nil
		}
	}
	return VerdictAccept, nil
}
