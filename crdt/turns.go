package crdt

import "github.com/libp2p/go-libp2p/core/peer"

// MaxVerdictTurns bounds the history of VerdictGeneration moves a log keeps
// to answer TurnedSince; a caller further behind is told that every answer
// may have turned.
const MaxVerdictTurns = 4096

// verdictTurn is one move of VerdictGeneration (to gen) and whose answers it
// can have turned: every one (all), or those by the users' devices and
// those on the lock paths.
type verdictTurn struct {
	gen   uint64
	all   bool
	users []UserID
	paths []string
	names []string
}

// VerdictTurns says which VersionVerdict answers given at one generation
// the changes since can have turned (Log.TurnedSince). An answer it does not
// name still holds: a caller that re-judged only what Affects names after a
// generation move gets exactly the answers a full re-judging would.
type VerdictTurns struct {
	l     *Log
	all   bool
	users map[UserID]bool
	paths map[string]bool
	names map[string]bool
}

// TurnedSince reports which earlier VersionVerdict answers, given while
// VerdictGeneration was gen, the log's changes since can have turned. Why
// each generation move turns only some answers (see VersionVerdict):
//
//   - An evaluation that changes the validity of ops already placed changes
//     the states of pasts: every answer.
//   - A new denial aimed at one user (a revoke, demotion, renunciation,
//     device or group-member removal of that user; State.deniedUser) joins
//     the concurrent denials of every past, where it changes only that
//     user's grants, memberships and devices: the answers for that user's
//     devices. A denial aimed at a group, the tree or the folder (a group
//     grant's revoke, a restriction, a policy, a share deletion): every
//     answer. A restriction of a folder changes the ranks in its subtree
//     only, and a path reaches that subtree (in any state) only through one
//     of the names the folder ever had (its creation's and its moves'):
//     the answers on paths with such a component. Policies, invitation
//     revokes, request denials and link suspensions and revocations touch
//     nothing an answer reads (devices, grants, groups, the tree, locks):
//     none.
//   - A lock op changes the live lock state of its path: the answers on
//     that path. A witness declaration: every answer.
//
// A device certified for two users (by concurrent certificates) has a user
// that depends on the past, so its answers count as turned whenever any
// user's do.
func (l *Log) TurnedSince(gen uint64) VerdictTurns {
	l.settle()
	t := VerdictTurns{l: l}
	if gen >= l.gen {
		return t
	}
	if len(l.turns) == 0 || l.turns[0].gen > gen+1 {
		t.all = true // older than the history kept
		return t
	}
	for k := len(l.turns) - 1; k >= 0 && l.turns[k].gen > gen; k-- {
		tr := l.turns[k]
		if tr.all {
			t.all = true
			return t
		}
		for _, u := range tr.users {
			if t.users == nil {
				t.users = map[UserID]bool{}
			}
			t.users[u] = true
		}
		for _, p := range tr.paths {
			if t.paths == nil {
				t.paths = map[string]bool{}
			}
			t.paths[p] = true
		}
		for _, name := range tr.names {
			if t.names == nil {
				t.names = map[string]bool{}
			}
			t.names[name] = true
		}
	}
	return t
}

// All reports whether every answer may have turned.
func (t VerdictTurns) All() bool { return t.all }

// None reports whether no answer can have turned.
func (t VerdictTurns) None() bool {
	return !t.all && len(t.users) == 0 && len(t.paths) == 0 && len(t.names) == 0
}

// Affects reports whether the answer for a version by device author at path
// may have turned.
func (t VerdictTurns) Affects(author peer.ID, path string) bool {
	if t.all {
		return true
	}
	if len(t.paths) > 0 && t.paths[cleanPath(path)] {
		return true
	}
	if len(t.names) > 0 {
		parts, _ := splitPath(path)
		for _, p := range parts {
			if t.names[p] {
				return true
			}
		}
	}
	if len(t.users) == 0 {
		return false
	}
	if t.l.multiCert[author] {
		return true
	}
	// A device unknown to the whole log is unknown in every past (reject,
	// whatever the denials); a known one has one user in every state.
	dv := t.l.state.devices[author]
	return dv != nil && t.users[dv.user]
}

// turnOf says which answers the new valid op e (in no earlier past) can
// turn, judged in st, the state with e applied; ok is false when e moves no
// generation (turnsVerdicts).
func (l *Log) turnOf(e *entry, st *State) (tr verdictTurn, ok bool) {
	if !turnsVerdicts(e) {
		return tr, false
	}
	switch b := e.op.Body.(type) {
	case LockRequest:
		tr.paths = []string{cleanPath(b.Path)}
		return tr, true
	case LockAck:
		return lockTurn(st, b.Request), true
	case LockRelease:
		return lockTurn(st, b.Request), true
	case LockBreak:
		return lockTurn(st, b.Request), true
	case LockExpire:
		return lockTurn(st, b.Request), true
	case SetPolicy, RevokeInvite, Deny, SuspendLink, RevokeLink:
		return tr, true // nothing a verdict reads
	case Restrict:
		if names := l.nodeNames[b.Node]; len(names) > 0 {
			tr.names = names
			return tr, true
		}
	}
	if e.hits != "" {
		tr.users = []UserID{e.hits}
		return tr, true
	}
	tr.all = true
	return tr, true
}

func lockTurn(st *State, id LockID) verdictTurn {
	if rq := st.reqs[id]; rq != nil {
		return verdictTurn{paths: []string{rq.path}}
	}
	return verdictTurn{all: true}
}

// addTurn moves VerdictGeneration by one for the merged causes.
func (l *Log) addTurn(tr verdictTurn) {
	l.gen++
	tr.gen = l.gen
	l.turns = append(l.turns, tr)
	if len(l.turns) > MaxVerdictTurns {
		l.turns = append(l.turns[:0:0], l.turns[len(l.turns)-MaxVerdictTurns/2:]...)
	}
}

// noteCert records which user each device is certified for, to spot a
// device certified for two users, and the names each folder node was given
// (see TurnedSince). Every op counts, valid or not.
func (l *Log) noteCert(op *Op) {
	note := func(c DeviceCert) {
		if u, ok := l.certUser[c.Device]; ok && u != c.User {
			l.multiCert[c.Device] = true
			return
		}
		l.certUser[c.Device] = c.User
	}
	switch b := op.Body.(type) {
	case Genesis:
		for _, c := range b.Founders {
			note(c)
		}
	case AddDevice:
		note(b.Cert)
	case Join:
		note(b.Cert)
	case RequestAccess:
		note(b.Cert)
	case CreateFolder:
		l.noteName(RefOf(op.ID), b.Name)
	case MoveFolder:
		l.noteName(b.Node, b.NewName)
	}
}

// noteName records a name folder node n has (had, or may have) in some state.
func (l *Log) noteName(n NodeID, name string) {
	for _, x := range l.nodeNames[n] {
		if x == name {
			return
		}
	}
	l.nodeNames[n] = append(l.nodeNames[n], name)
}
