package simulations

import (
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	mh "github.com/multiformats/go-multihash"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/store"
)

// Workload schedules Opt.Ops random operations drawn from Opt.Mix over the
// workload window, and the nemeses Opt.Faults switches on.
func (w *World) Workload() {
	o := w.Opt
	total := o.Mix.total()
	for i := 0; i < o.Ops && total > 0; i++ {
		at := w.Rand.Int64N(o.WorkloadMs)
		pick := w.Rand.IntN(total)
		w.At(at, "op", func() { w.randomOp(pick) })
	}
	w.Nemeses()
}

func (w *World) randomOp(pick int) {
	m := w.Opt.Mix
	switch {
	case pick < m.Edit:
		w.opEdit()
	case pick < m.Edit+m.Delete:
		w.opDelete()
	case pick < m.Edit+m.Delete+m.Rename:
		w.opRename(false)
	case pick < m.Edit+m.Delete+m.Rename+m.CaseRename:
		w.opRename(true)
	case pick < m.Edit+m.Delete+m.Rename+m.CaseRename+m.Grant:
		w.opGrant()
	case pick < m.Edit+m.Delete+m.Rename+m.CaseRename+m.Grant+m.Revoke:
		w.opRevoke()
	case pick < m.Edit+m.Delete+m.Rename+m.CaseRename+m.Grant+m.Revoke+m.Restrict:
		w.opRestrict()
	case pick < m.Edit+m.Delete+m.Rename+m.CaseRename+m.Grant+m.Revoke+m.Restrict+m.Lock:
		w.opLock()
	default:
		w.opInvite()
	}
}

// RandomPath is one of the workload's file names.
func (w *World) RandomPath() string {
	i := w.Rand.IntN(w.Opt.Paths)
	dir := [...]string{"", "docs/", "secret/"}[i%3]
	return fmt.Sprintf("%sf%02d.txt", dir, i)
}

// randomWriter is an up, honest member device that may write path (by its
// own replica) and does not see someone else's lock on it.
func (w *World) randomWriter(path string) *Node {
	for try := 0; try < 4; try++ {
		n := w.Nodes[w.Rand.IntN(len(w.Nodes))]
		if !n.up || !n.Honest || !n.member() {
			continue
		}
		if n.mayWrite(path) {
			return n
		}
	}
	return nil
}

func (n *Node) mayWrite(path string) bool {
	u, ok := n.log.DeviceUser(n.dev)
	if !ok || !n.log.Can(u, crdt.ActionWrite, path) {
		return false
	}
	if lk, ok := n.log.LockHolder(path); ok && lk.Device != n.dev {
		return false
	}
	return true
}

// Edit writes new random bytes at path on n (a user's save).
func (w *World) Edit(n *Node, path string) {
	b := make([]byte, 8+w.Rand.IntN(56))
	for i := range b {
		b[i] = byte(w.Rand.Uint32())
	}
	n.write(path, b)
	w.Trace("edit", n.ID, path)
}

func (w *World) opEdit() {
	p := w.RandomPath()
	if n := w.randomWriter(p); n != nil {
		w.Edit(n, p)
	}
}

func (w *World) opDelete() {
	p := w.RandomPath()
	if n := w.randomWriter(p); n != nil {
		if _, ok := n.disk[p]; ok {
			n.write(p, nil)
			w.Trace("delete", n.ID, p)
		}
	}
}

func (w *World) opRename(caseOnly bool) {
	p := w.RandomPath()
	n := w.randomWriter(p)
	if n == nil {
		return
	}
	b, ok := n.disk[p]
	if !ok {
		return
	}
	to := w.RandomPath()
	if caseOnly {
		i := strings.LastIndex(p, "/") + 1
		to = p[:i] + strings.ToUpper(p[i:i+1]) + p[i+1:]
	}
	if _, busy := n.disk[to]; busy || to == p || !n.mayWrite(to) {
		return
	}
	n.write(p, nil)
	n.write(to, b)
	w.Trace("rename", n.ID, p, to)
}

// Append appends body on n's replica with n's device key; refusals are
// normal (n's view said no) and only traced.
func (w *World) Append(n *Node, body crdt.Body) (*crdt.Op, error) {
	op, err := n.log.Append(n.devKey, body, n.clock())
	w.Trace("append", n.ID, body.Kind(), err == nil)
	if err == nil && n.Honest {
		w.res.Changes++
	}
	return op, err
}

// managers: node 0 (founder) and node 1 (manager).
func (w *World) randomManager() *Node {
	n := w.Nodes[w.Rand.IntN(2)]
	if !n.up {
		return nil
	}
	return n
}

func (w *World) randomMember() *Node {
	n := w.Nodes[2+w.Rand.IntN(len(w.Nodes)-2)]
	if !n.Honest || n.Spare || n.Relay {
		return nil
	}
	return n
}

func (w *World) node(n *Node, name string) crdt.NodeID {
	if id, ok := n.log.NodeAt(name); ok {
		return id
	}
	return ""
}

func (w *World) opGrant() {
	m, t := w.randomManager(), w.randomMember()
	if m == nil || t == nil {
		return
	}
	role := []crdt.Role{crdt.RoleViewer, crdt.RoleEditor}[w.Rand.IntN(2)]
	scope := []string{"", "docs", "secret"}[w.Rand.IntN(3)]
	w.Append(m, crdt.Grant{Principal: crdt.UserPrincipal(t.user), Node: w.node(m, scope), Role: role})
}

func (w *World) opRevoke() {
	m, t := w.randomManager(), w.randomMember()
	if m == nil || t == nil {
		return
	}
	scope := []string{"", "docs", "secret"}[w.Rand.IntN(3)]
	w.Append(m, crdt.Revoke{Principal: crdt.UserPrincipal(t.user), Node: w.node(m, scope)})
}

func (w *World) opRestrict() {
	m := w.randomManager()
	if m == nil {
		return
	}
	id := w.node(m, "secret")
	if id == "" {
		return
	}
	if w.Rand.IntN(2) == 0 {
		w.Append(m, crdt.Restrict{Node: id})
	} else {
		w.Append(m, crdt.Unrestrict{Node: id})
	}
}

// opLock: an editor asks for a lock, edits under it if granted, and
// releases it a while later.
func (w *World) opLock() {
	p := w.RandomPath()
	n := w.randomWriter(p)
	if n == nil {
		return
	}
	op, err := w.Append(n, crdt.LockRequest{Path: p, LeaseSecs: uint32(30 + w.Rand.IntN(300))})
	if err != nil {
		return
	}
	id := crdt.RefOf(op.ID)
	for k := 1; k <= 3; k++ {
		w.At(w.now+int64(k)*2000+w.Rand.Int64N(2000), "lock-edit", func() {
			if lk, ok := n.log.LockHolder(p); n.up && ok && lk.Device == n.dev {
				w.Edit(n, p)
			}
		})
	}
	w.At(w.now+10_000+w.Rand.Int64N(20_000), "lock-release", func() {
		if n.up {
			w.Append(n, crdt.LockRelease{Request: id})
		}
	})
}

// witnessDuties: a witness acknowledges lock requests it sees and declares
// leases that ran out on its own clock.
func (n *Node) witnessDuties() {
	if n.w.Opt.Witnesses == 0 || n.ID >= n.w.Opt.Witnesses {
		return
	}
	if n.duties == nil {
		n.duties = map[string]bool{}
	}
	if n.log.Len() == n.dutiesLen && n.w.now < n.dutiesAt+10_000 {
		return // nothing new in the log, and leases are checked every 10 s
	}
	n.dutiesLen, n.dutiesAt = n.log.Len(), n.w.now
	for _, lk := range n.log.Snapshot().Locks {
		if !lk.Granted && !lk.Ended && !n.duties["ack"+string(lk.ID)] {
			if _, err := n.w.Append(n, crdt.LockAck{Request: lk.ID}); err == nil {
				n.duties["ack"+string(lk.ID)] = true
			}
		}
	}
	for _, lk := range n.log.ExpiredLeases(n.clock()) {
		if !n.duties["exp"+string(lk.ID)] {
			n.duties["exp"+string(lk.ID)] = true
			n.w.Append(n, crdt.LockExpire{Request: lk.ID})
		}
	}
}

// opInvite: a manager creates an invitation (one or two uses) and hands
// its secret to spare devices; one use too many is tried, and an adversary
// gets the secret after it is used.
func (w *World) opInvite() {
	m := w.randomManager()
	if m == nil {
		return
	}
	var spares []*Node
	for _, n := range w.Nodes {
		if n.Spare && n.Honest && len(n.log.Heads()) > 0 && !n.member() {
			spares = append(spares, n)
		}
	}
	if len(spares) == 0 {
		return
	}
	key, _ := w.newKey()
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return
	}
	uses := uint32(1 + w.Rand.IntN(2))
	op, err := w.Append(m, crdt.CreateInvite{Key: pub, Role: crdt.RoleEditor, MaxUses: uses})
	if err != nil {
		return
	}
	id := crdt.RefOf(op.ID)
	w.reg.inviteMax[id] = uses
	w.reg.inviteKeys[id] = key
	// Up to uses+1 spares try to join, each after it synced with the manager.
	for k := 0; k < int(uses)+1 && k < len(spares); k++ {
		s := spares[k]
		w.At(w.now+1000+w.Rand.Int64N(5000), "join", func() { w.join(s, m, id) })
	}
}

// join: spare s gets the log from inviter m out of band and appends a Join.
func (w *World) join(s, m *Node, id crdt.InviteID) {
	if !s.up || !m.up || s.member() {
		return
	}
	if _, err := s.log.Merge(m.log.OpsSince(s.log.Heads())); err != nil {
		return
	}
	key := w.reg.inviteKeys[id]
	proof, err := crdt.InviteProof(key, w.folder, id, s.cert)
	if err != nil {
		return
	}
	if _, err := w.Append(s, crdt.Join{Invite: id, Cert: s.cert, Proof: proof}); err == nil {
		w.reg.usedBy[id] = append(w.reg.usedBy[id], s.ID)
		s.Spare = false
	}
}

// --- adversaries ---

func opID(raw []byte) cid.Cid {
	c, _ := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.BLAKE3, MhLength: 32}.Sum(raw)
	return c
}

// misbehave: one adversarial act, pushed to a few reachable peers.
func (n *Node) misbehave() {
	w := n.w
	var raws [][]byte
	var entries []entry
	switch w.Rand.IntN(6) {
	case 0: // escalation: grant itself owner
		op, err := n.log.Build(n.devKey, crdt.Grant{Principal: crdt.UserPrincipal(n.user), Role: crdt.RoleOwner}, n.clock())
		if err == nil {
			w.reg.badOps = append(w.reg.badOps, op.ID)
			raws = append(raws, op.Raw)
		}
	case 1: // forged signature on a copy of a real op
		all := n.log.OpsSince(nil)
		raw := append([]byte(nil), all[w.Rand.IntN(len(all))]...)
		raw[len(raw)-1-w.Rand.IntN(16)] ^= 0x40
		w.reg.badOps = append(w.reg.badOps, opID(raw))
		raws = append(raws, raw)
	case 2: // replay old ops
		all := n.log.OpsSince(nil)
		for k := 0; k < 3; k++ {
			raws = append(raws, all[w.Rand.IntN(len(all))])
		}
	case 3, 4: // a version without the right (or after its revocation)
		p := w.RandomPath()
		if u, ok := n.log.DeviceUser(n.dev); ok && n.log.Can(u, crdt.ActionWrite, p) {
			return // still allowed: nothing forged about it
		}
		b := []byte(fmt.Sprintf("forged by n%d at %d", n.ID, w.now))
		c := w.putContent(b)
		n.changeSeq++
		prev := store.VersionVector{}
		for _, view := range n.remote {
			if e, ok := view[p]; ok {
				prev = prev.Merge(e.Info.Version)
			}
		}
		fi := store.FileInfo{Path: p, Kind: store.KindFile, Size: int64(len(b)), Mode: 0o644,
			Chunks: []store.ChunkRef{{CID: c, Size: uint32(len(b))}}, Author: store.DeviceID(n.dev),
			Seq: n.changeSeq, ModTime: (n.clock() + 3600_000) * 1_000_000, LogHeads: n.log.Heads()}
		if n.earlyHeads != nil && w.Rand.IntN(2) == 0 {
			fi.LogHeads = n.earlyHeads // back-dated: claims to predate its revocation
		}
		fi.Version = prev.Update(fi.Author, fi.Seq)
		n.idxSeq++
		w.reg.badVers[versionKey(fi)] = true
		entries = append(entries, entry{Info: fi, Seq: n.idxSeq})
	case 5: // replay an invitation that is used up (in this replica's view)
		for _, id := range sortedInviteIDs(w.reg.inviteKeys) {
			if live(n.log, id) {
				continue
			}
			used := false
			for _, s := range n.log.Snapshot().Invites {
				used = used || (s.ID == id && s.Uses > 0)
			}
			if !used {
				continue
			}
			proof, err := crdt.InviteProof(w.reg.inviteKeys[id], w.folder, id, n.cert)
			if err != nil {
				return
			}
			op, err := n.log.Build(n.devKey, crdt.Join{Invite: id, Cert: n.cert, Proof: proof}, n.clock())
			if err == nil {
				w.reg.badOps = append(w.reg.badOps, op.ID)
				raws = append(raws, op.Raw)
			}
			break
		}
	}
	if len(raws) == 0 && len(entries) == 0 {
		return
	}
	w.Trace("misbehave", n.ID, len(raws), len(entries))
	for _, p := range w.Nodes {
		if p != n && p.Honest && w.linked(n, p) && w.Rand.IntN(3) == 0 {
			w.send(n, p, &message{kind: msgSyncResp, from: n.ID, ops: raws, entries: entries, upTo: n.idxSeq})
		}
	}
}

func live(l *crdt.Log, id crdt.InviteID) bool {
	for _, inv := range l.Invites() {
		if inv.ID == id {
			return true
		}
	}
	return false
}

func sortedInviteIDs(m map[crdt.InviteID]cryptoKey) []crdt.InviteID {
	ks := make([]crdt.InviteID, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortRefs(ks)
	return ks
}

// RevokeAdversaries has the founder revoke every adversary's grant.
func (w *World) RevokeAdversaries() {
	f := w.Nodes[0]
	if !f.up {
		return
	}
	for _, n := range w.Nodes {
		if !n.Honest {
			w.Append(f, crdt.Revoke{Principal: crdt.UserPrincipal(n.user)})
		}
	}
}
