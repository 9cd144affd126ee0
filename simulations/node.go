package simulations

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/zeebo/blake3"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/store"
)

type cryptoKey = crypto.PrivKey

func peerID(d store.DeviceID) (peer.ID, error) {
	if d == "" {
		return "", errors.New("simulations: empty device")
	}
	return peer.ID(d), nil
}

// entry is one index record: the version and the lock fence it carries.
type entry struct {
	Info  store.FileInfo
	Fence uint64
	Seq   uint64 // this device's index change counter when it was recorded
}

// Node is one simulated device.
type Node struct {
	w      *World
	ID     int
	Honest bool
	Spare  bool // outside the folder until invited
	Relay  bool // outside the folder for good: stores and forwards sealed messages (relay.go)
	up     bool
	slow   bool
	skewMs int64

	userKey, devKey cryptoKey
	user, dev       peer.ID
	cert            crdt.DeviceCert
	store           *crdt.MemStore
	log             *crdt.Log

	disk       map[string][]byte  // the folder on disk (files only)
	undo       map[string]*[]byte // un-fsynced user writes since the last scan: previous content
	index      map[string]*entry  // the index
	changeSeq  uint64             // Seq of this device's versions
	idxSeq     uint64             // index change counter (what peers ask "since")
	remote     map[int]map[string]entry
	recvSeq    map[int]uint64            // highest index counter received from each peer
	withheld   map[int]map[string]uint64 // per peer: paths the read filter held back (0), or sent late in the response up to this index counter and not yet acknowledged
	peerHeads  map[int][]cid.Cid         // per peer: its heads at its last answer, all held here
	quarantine map[string]store.FileInfo
	bytes      int64
	scanAt     int64           // a scan is scheduled (0: none)
	applyAt    int64           // a plan is scheduled (0: none)
	duties     map[string]bool // witness acts already tried
	earlyHeads []cid.Cid       // an adversary's heads right after setup, for back-dating
	dutiesLen  int
	dutiesAt   int64
	cache      map[vfKey]crdt.Verdict
	cacheGen   uint64
	cacheLog   *crdt.Log
	digestVal  string
	digestLog  *crdt.Log
	digestLen  int
	dirty      map[string]bool // paths to plan at the next apply
	judged     map[vfKey]int8  // version+fence -> its verdict at the last sweep (-1: heads missing)
	sweptLog   *crdt.Log
	sweptLen   int
	sweptGen   uint64
	indexKeys  []string            // sortedKeys(index), nil when stale
	mailbox    map[int][]*envelope // a relay's stored messages, by recipient
}

func (n *Node) String() string { return fmt.Sprintf("n%d", n.ID) }

func (n *Node) clock() int64 { return epochMs + n.w.now + n.skewMs }

func (w *World) newKey() (cryptoKey, peer.ID) {
	var s [ed25519.SeedSize]byte
	for i := range s {
		s[i] = byte(w.Rand.Uint32())
	}
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s[:]))
	if err != nil {
		panic(err) // a 64-byte key always unmarshals
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(err)
	}
	return k, id
}

// setup makes the devices, the folder (node 0 is its founder), the members'
// grants and devices, and every member's replica.
func (w *World) setup() error {
	o := w.Opt
	for i := 0; i < o.Nodes; i++ {
		n := &Node{w: w, ID: i, Honest: true, up: true, disk: map[string][]byte{}, undo: map[string]*[]byte{},
			index: map[string]*entry{}, remote: map[int]map[string]entry{}, recvSeq: map[int]uint64{},
			withheld: map[int]map[string]uint64{}, peerHeads: map[int][]cid.Cid{}, quarantine: map[string]store.FileInfo{}}
		n.userKey, n.user = w.newKey()
		n.devKey, n.dev = w.newKey()
		cert, err := crdt.CertifyDevice(n.userKey, n.dev)
		if err != nil {
			return err
		}
		n.cert = cert
		w.Nodes = append(w.Nodes, n)
	}
	// The last devices are the adversaries, the ones before them the spares.
	for i := o.Nodes - o.Faults.Adversaries; i < o.Nodes; i++ {
		w.Nodes[i].Honest = false
	}
	for i := o.Nodes - o.Faults.Adversaries - o.Spares; i < o.Nodes-o.Faults.Adversaries; i++ {
		w.Nodes[i].Spare = true
	}
	// Before the spares: the relays.
	for i := o.Nodes - o.Faults.Adversaries - o.Spares - o.Relays; i < o.Nodes-o.Faults.Adversaries-o.Spares; i++ {
		w.Nodes[i].Relay = true
	}
	if o.Faults.Skew {
		for _, n := range w.Nodes {
			n.skewMs = w.Rand.Int64N(2*MaxSkewMs+1) - MaxSkewMs
		}
	}
	for i := 0; i < o.Faults.SlowPeers && i+1 < o.Nodes; i++ {
		w.Nodes[1+w.Rand.IntN(o.Nodes-1)].slow = true
	}
	f := w.Nodes[0]
	f.store = crdt.NewMemStore()
	nonce := make([]byte, 8)
	for i := range nonce {
		nonce[i] = byte(w.Rand.Uint32())
	}
	l, err := crdt.NewFolder(f.devKey, crdt.Genesis{Name: "sim", Founders: []crdt.DeviceCert{f.cert}, Nonce: nonce}, epochMs, f.store)
	if err != nil {
		return err
	}
	l.UseOpCache(w.ops)
	f.log = l
	w.folder = l.Folder()
	w.genesisRaw = l.OpsSince(nil)[0]
	for _, name := range []string{"docs", "secret"} {
		if _, err := l.Append(f.devKey, crdt.CreateFolder{Name: name}, epochMs); err != nil {
			return err
		}
	}
	for i, n := range w.Nodes[1:] {
		if n.Spare || n.Relay {
			continue
		}
		role := crdt.RoleEditor
		switch {
		case i == 0:
			role = crdt.RoleManager
		case !n.Honest && !o.RevokeAdversary:
			role = crdt.RoleViewer
		case n.Honest && i%5 == 4:
			role = crdt.RoleViewer
		}
		if _, err := l.Append(f.devKey, crdt.Grant{Principal: crdt.UserPrincipal(n.user), Role: role}, epochMs); err != nil {
			return err
		}
		if _, err := l.Append(n.devKey, crdt.AddDevice{Cert: n.cert}, epochMs); err != nil {
			return err
		}
	}
	if o.Witnesses > 0 {
		var ws []peer.ID
		for _, n := range w.Nodes[:min(o.Witnesses, o.Nodes)] {
			ws = append(ws, n.dev)
		}
		if _, err := l.Append(f.devKey, crdt.DeclareWitnesses{Devices: ws}, epochMs); err != nil {
			return err
		}
	}
	all := l.OpsSince(nil)
	for _, n := range w.Nodes[1:] {
		n.store = crdt.NewMemStore()
		rl, err := crdt.New(all[0], n.store)
		if err != nil {
			return err
		}
		rl.UseOpCache(w.ops)
		if n.Spare || n.Relay {
			// a spare holds only the genesis until it is invited; a relay
			// never holds more
		} else if _, err := rl.Merge(all[1:]); err != nil {
			return err
		}
		n.log = rl
		if !n.Honest {
			n.earlyHeads = rl.Heads()
		}
	}
	return nil
}

// --- messages ---

type msgKind uint8

const (
	msgSyncReq msgKind = iota + 1
	msgSyncResp
)

type message struct {
	kind    msgKind
	from    int
	heads   []cid.Cid
	since   uint64
	ops     [][]byte
	entries []entry
	upTo    uint64
}

func (m *message) size() int64 {
	s := int64(16 + 40*len(m.heads))
	for _, o := range m.ops {
		s += int64(len(o))
	}
	for _, e := range m.entries {
		s += int64(len(e.Info.Path) + 64 + 44*len(e.Info.Version.Counters) + 40*len(e.Info.LogHeads))
	}
	return s
}

// linked reports whether a and b can talk now.
func (w *World) linked(a, b *Node) bool {
	if !a.up || !b.up {
		return false
	}
	if w.Opt.Relays > 0 && !a.Relay && !b.Relay {
		return false // members reach each other only through relays
	}
	return w.side[a.ID] == w.side[b.ID] || w.bridge == a.ID || w.bridge == b.ID
}

// send puts m on the wire from n to peer to, with the network's faults.
func (w *World) send(from, to *Node, m *message) {
	if w.Opt.Relays > 0 && !from.Relay && !to.Relay {
		w.sendViaRelay(from, to, m)
		return
	}
	if !w.linked(from, to) {
		return
	}
	if m.kind == msgSyncResp {
		w.checkPrivacy(from, to, m)
	}
	w.hop(from, to, m.size(), "deliver", func() { to.receive(m) })
}

// tick: ask a few reachable peers for what they have.
func (n *Node) tick() {
	w := n.w
	defer w.At(w.now+w.Opt.SyncEveryMs, "tick", n.tick)
	if !n.up {
		return
	}
	if n.Relay {
		n.relayTick()
		return
	}
	if !n.Honest && !w.healed {
		n.misbehave()
	}
	if n.Honest {
		n.witnessDuties()
	}
	var peers []*Node
	viaRelay := w.Opt.Relays > 0 && len(w.relaysOf(n)) > 0
	for _, p := range w.Nodes {
		if p != n && !p.Relay && (w.linked(n, p) || viaRelay) {
			peers = append(peers, p) // through a relay: stored until p is back
		}
	}
	for k := 0; k < w.Opt.Fanout && len(peers) > 0; k++ {
		i := w.Rand.IntN(len(peers))
		p := peers[i]
		peers = slices.Delete(peers, i, i+1)
		// Our heads, plus the heads this peer reported last time (whose past
		// we hold): a peer that lacks our newest ops still knows those, so it
		// sends only what is new instead of its whole log.
		heads := append(n.log.Heads(), n.peerHeads[p.ID]...)
		w.send(n, p, &message{kind: msgSyncReq, from: n.ID, heads: heads, since: n.recvSeq[p.ID]})
	}
}

func (n *Node) receive(m *message) {
	w := n.w
	switch m.kind {
	case msgSyncReq:
		if !n.Honest {
			return // adversaries push, they do not serve
		}
		req := w.Nodes[m.from]
		resp := &message{kind: msgSyncResp, from: n.ID, ops: n.log.OpsSince(m.heads), upTo: n.idxSeq, heads: n.log.Heads()}
		// Entries the read filter held back from this peer are looked at
		// again on every request: a grant may have let them through. One
		// sent late stays marked until the peer's "since" shows it got a
		// response at least that recent (the response may be lost, and the
		// entry's own counter is below "since" already).
		held := n.withheld[req.ID]
		if held == nil {
			held = map[string]uint64{}
			n.withheld[req.ID] = held
		}
		for _, p := range n.sortedIndex() {
			e := n.index[p]
			late, isHeld := held[p]
			if isHeld && late > 0 && m.since >= late {
				delete(held, p) // acknowledged
				isHeld = false
			}
			if e.Seq <= m.since && !isHeld {
				continue
			}
			if w.hooks.MayRead(n.log, store.DeviceID(req.dev), p) {
				resp.entries = append(resp.entries, *e)
				if isHeld {
					held[p] = resp.upTo
				}
			} else {
				held[p] = 0
			}
		}
		if len(resp.ops) == 0 && len(resp.entries) == 0 && resp.upTo == m.since {
			return
		}
		w.send(n, req, resp)
	case msgSyncResp:
		changed := false
		if len(m.ops) > 0 {
			res, err := n.log.Merge(m.ops)
			if err != nil {
				w.violate("store", "%s merge: %v", n, err)
			}
			changed = res.Added > 0
			w.Trace("merge", n.ID, res.Added, res.Pending, len(res.Rejected))
		}
		if len(m.heads) > 0 {
			all := true
			for _, h := range m.heads {
				all = all && n.log.Has(h)
			}
			if all {
				n.peerHeads[m.from] = m.heads
			}
		}
		if m.upTo > n.recvSeq[m.from] {
			n.recvSeq[m.from] = m.upTo
		}
		if len(m.entries) > 0 {
			view := n.remote[m.from]
			if view == nil {
				view = map[string]entry{}
				n.remote[m.from] = view
			}
			for _, e := range m.entries {
				if old, ok := view[e.Info.Path]; !ok || old.Seq < e.Seq {
					view[e.Info.Path] = e
					n.markDirty(e.Info.Path)
					changed = true
				}
			}
		}
		if changed && n.Honest && n.Spare && n.member() {
			n.Spare = false
		}
		if changed && n.Honest {
			n.scheduleApply()
		}
	}
}

// scheduleApply plans in applyDelayMs unless a plan is already scheduled.
// Coalesce: one plan for everything that arrives in the next applyDelayMs,
// as a node batches index updates.
func (n *Node) scheduleApply() {
	if n.applyAt != 0 {
		return
	}
	w := n.w
	n.applyAt = w.now + applyDelayMs
	w.At(n.applyAt, "apply", func() {
		n.applyAt = 0
		if n.up {
			n.apply()
		}
	})
}

func (n *Node) member() bool {
	_, ok := n.log.DeviceUser(n.dev)
	return ok
}

// --- scanning and applying ---

func contentID(fi store.FileInfo) string {
	if fi.Deleted || len(fi.Chunks) == 0 {
		return ""
	}
	return fi.Chunks[0].CID.KeyString()
}

// write is a user's change on disk (nil deletes): un-fsynced until the scan.
func (n *Node) write(path string, b []byte) {
	if _, ok := n.undo[path]; !ok {
		if old, ok := n.disk[path]; ok {
			n.undo[path] = &old
		} else {
			n.undo[path] = nil
		}
	}
	if b == nil {
		delete(n.disk, path)
	} else {
		n.disk[path] = b
	}
	if n.scanAt == 0 {
		n.scanAt = n.w.now + 1 + n.w.Rand.Int64N(scanDelayMaxMs)
		n.w.At(n.scanAt, "scan", func() {
			if n.up {
				n.scan()
			}
		})
	}
}

// scan records disk changes as new versions (PutLocal semantics).
func (n *Node) scan() {
	w := n.w
	n.scanAt = 0
	n.undo = map[string]*[]byte{}
	paths := sortedKeys(n.disk)
	for _, p := range n.sortedIndex() {
		if _, ok := n.disk[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		b, onDisk := n.disk[p]
		old := n.index[p]
		var fi store.FileInfo
		switch {
		case onDisk && (old == nil || old.Info.Deleted || contentID(old.Info) != w.putContent(b).KeyString()):
			c := w.putContent(b)
			fi = store.FileInfo{Path: p, Kind: store.KindFile, Size: int64(len(b)), Mode: 0o644,
				Chunks: []store.ChunkRef{{CID: c, Size: uint32(len(b))}}}
		case !onDisk && old != nil && !old.Info.Deleted:
			fi = store.FileInfo{Path: p, Kind: store.KindFile, Deleted: true}
		default:
			continue
		}
		n.changeSeq++
		fi.Author = store.DeviceID(n.dev)
		fi.Seq = n.changeSeq
		fi.ModTime = n.clock() * 1_000_000
		if old != nil {
			fi.Version = old.Info.Version.Update(fi.Author, fi.Seq)
		} else {
			fi.Version = store.VersionVector{}.Update(fi.Author, fi.Seq)
		}
		fi.LogHeads = n.log.Heads()
		var fence uint64
		if lk, ok := n.log.LockHolder(p); ok && lk.Device == n.dev {
			fence = lk.Fence
		}
		n.idxSeq++
		n.setIndex(p, &entry{Info: fi, Fence: fence, Seq: n.idxSeq})
		v, _ := w.hooks.Verdict(n.log, fi.Author, fi.LogHeads, p, fence)
		w.reg.record(fi, contentID(fi), n.Honest, n.Honest && v == crdt.VerdictAccept)
		w.res.Changes++
		w.Trace("version", n.ID, p, fi.Seq, fi.Deleted, v)
	}
}

func (r *registry) record(fi store.FileInfo, content string, honest, admitted bool) {
	k := versionKey(fi)
	if _, ok := r.versions[k]; ok {
		return
	}
	r.versions[k] = &verRec{info: fi, content: content, admitted: admitted, honest: honest}
	r.verOrder = append(r.verOrder, k)
}

func toPlanVerdict(v crdt.Verdict) plan.Verdict {
	switch v {
	case crdt.VerdictAccept:
		return plan.Accept
	case crdt.VerdictReject:
		return plan.Reject
	}
	return plan.Quarantine // quarantine, and conflict-copy verdicts: kept aside, never applied
}

// apply scans, plans and executes the plan. Only the paths that changed
// since the last plan are planned (dirty: a scan, an announced entry, a
// verdict that a log change turned, or the last plan's own actions); the
// others would plan to nothing again, as planning is a pure function of
// what is held and announced (checkIncremental checks that in tests).
func (n *Node) apply() {
	w := n.w
	n.scan()
	n.sweepVerdicts()
	paths := sortedKeys(n.dirty)
	n.dirty = map[string]bool{}
	if len(paths) == 0 {
		return
	}
	p := n.plan(paths)
	if checkIncremental {
		n.checkAgainstFull(p)
	}
	for _, q := range p.quarantine {
		n.quarantine[versionKey(q)] = q
	}
	touched := map[string]bool{}
	for _, a := range p.acts {
		want := a.Want
		if a.Op != plan.Quarantined {
			touched[want.Path] = true
		}
		set := func() {
			n.idxSeq++
			n.setIndex(want.Path, &entry{Info: want, Fence: p.fences[versionKey(want)], Seq: n.idxSeq})
		}
		switch a.Op {
		case plan.Fetch:
			n.disk[want.Path] = w.content[contentID(want)]
			n.bytes += want.Size
			set()
		case plan.Delete:
			delete(n.disk, want.Path)
			set()
		case plan.Move:
			n.disk[want.Path] = n.disk[a.From]
			delete(n.disk, a.From)
			set()
		case plan.ConflictCopy:
			w.res.Conflicts++
			// As node/apply.go's KeepAside does: rename the local file to
			// CopyName, or to the first free numbered variant of it (a
			// device losing twice on one path within one second gets the
			// same name twice).
			n.disk[keepAsideName(n.disk, a.CopyName)] = n.disk[want.Path]
			n.disk[want.Path] = w.content[contentID(want)]
			n.bytes += want.Size
			set()
		case plan.Record:
			if want.Deleted {
				// A deletion recorded over a local version that lost its
				// right (so the plan did not see it): the file goes, its
				// bytes stay in quarantine. Otherwise the next scan would
				// offer the refused bytes again, forever.
				delete(n.disk, want.Path)
			}
			set()
		case plan.Quarantined:
			n.quarantine[versionKey(want)] = want
		}
		w.Trace("act", n.ID, a.Op, want.Path, want.Seq, a.CopyName)
	}
	// A held version that lost its right and that no plan action replaced is
	// removed from the tree (its bytes stay in quarantine).
	for _, path := range paths {
		if _, ok := n.index[path]; !ok || p.held[path] || touched[path] {
			continue
		}
		n.delIndex(path)
		delete(n.disk, path)
		w.Trace("unheld", n.ID, path)
	}
	// The paths the plan changed stay dirty (setIndex, delIndex): what is
	// held now is an input of the next plan, which may move them again (a
	// local version that won only while it was held, see plan.decide).
	if len(p.acts) > 0 {
		// Conflict copies are new local files: the scan records them, and
		// they are planned like any local change (a copy the device may not
		// write is quarantined and leaves the tree). Without the plan, a
		// copy made after the last message stayed on this device alone
		// (team CI seeds 488 and 621 never converged).
		before := w.res.Changes
		n.scan()
		if w.res.Changes > before {
			n.scheduleApply()
		}
	}
}

// planned is one plan over a set of paths: its actions, the fences of the
// versions it may record, the paths whose local version still holds, and
// the local versions that lost their right.
type planned struct {
	acts       []plan.Action
	fences     map[string]uint64
	held       map[string]bool
	quarantine []store.FileInfo
}

// plan judges the local and announced versions of paths (sorted) and plans
// them. It changes nothing.
func (n *Node) plan(paths []string) planned {
	p := planned{fences: map[string]uint64{}, held: map[string]bool{}}
	var local []store.FileInfo
	for _, path := range paths {
		e, ok := n.index[path]
		if !ok {
			continue
		}
		v, err := n.verdict(*e)
		if err == nil && v != crdt.VerdictAccept {
			// The version we hold lost its right (a concurrent denial reached
			// us): keep it aside and let the plan pick among the others.
			if !e.Info.Deleted {
				p.quarantine = append(p.quarantine, e.Info)
			}
			continue
		}
		local = append(local, e.Info)
		p.held[path] = true
	}
	var remote []plan.Candidate
	seen := map[string]bool{}
	for _, pid := range sortedIntKeys(n.remote) {
		view := n.remote[pid]
		for _, path := range paths {
			e, ok := view[path]
			if !ok {
				continue
			}
			k := versionKey(e.Info)
			if seen[k] {
				continue // the same version announced by several peers
			}
			v, err := n.verdict(e)
			if err != nil {
				continue // heads not here yet: judged when the ops arrive
			}
			seen[k] = true
			remote = append(remote, plan.Candidate{Version: e.Info, Verdict: toPlanVerdict(v)})
			p.fences[k] = e.Fence
		}
	}
	p.acts = n.w.hooks.Plan(plan.Config{Local: store.DeviceID(n.dev), ShortID: shortID}, local, remote)
	return p
}

// sweepVerdicts: after the log changed in a way that can turn a verdict
// (crdt.Log.VerdictGeneration), every known version is judged again, and
// the paths where a verdict changed are marked dirty. After other log
// changes only the versions whose heads were missing are judged again.
func (n *Node) sweepVerdicts() {
	gen, l := n.log.VerdictGeneration(), n.log.Len()
	if n.log == n.sweptLog && gen == n.sweptGen && l == n.sweptLen {
		return
	}
	all := n.log != n.sweptLog || gen != n.sweptGen
	n.sweptLog, n.sweptGen, n.sweptLen = n.log, gen, l
	if n.judged == nil {
		n.judged = map[vfKey]int8{}
	}
	judge := func(e entry) {
		k := vfKey{e.Info.Author, e.Info.Seq, e.Fence}
		old, ok := n.judged[k]
		if ok && old >= 0 && !all {
			return // judged, and nothing that can turn it happened
		}
		v, err := n.verdict(e)
		j := int8(v)
		if err != nil {
			j = -1
		}
		if !ok || old != j {
			n.judged[k] = j
			n.markDirty(e.Info.Path)
		}
	}
	for _, e := range n.index {
		judge(*e)
	}
	for _, view := range n.remote {
		for _, e := range view {
			// A version our held one has seen cannot win, lose or be a
			// head here, whatever its verdict: only its quarantine
			// bookkeeping would change, and that waits for the path's
			// next plan (which judges every candidate afresh).
			if l, ok := n.index[e.Info.Path]; ok && !n.dirty[e.Info.Path] {
				if c := l.Info.Version.Compare(e.Info.Version); c == store.Newer || c == store.Equal {
					continue
				}
			}
			judge(e)
		}
	}
}

// checkIncremental makes every apply also plan every path and compare: the
// paths left out must yield no action but idempotent quarantines, and the
// planned ones the same actions. Tests switch it on.
var checkIncremental = false

func (n *Node) checkAgainstFull(inc planned) {
	full := n.plan(n.sortedIndexAndRemotePaths())
	key := func(a plan.Action) string {
		return fmt.Sprintf("%v|%s|%x|%s|%s", a.Op, a.Want.Path, versionKey(a.Want), a.From, a.CopyName)
	}
	var a, b []string
	for _, x := range full.acts {
		if x.Op != plan.Quarantined {
			a = append(a, key(x))
		}
	}
	for _, x := range inc.acts {
		if x.Op != plan.Quarantined {
			b = append(b, key(x))
		}
	}
	if !slices.Equal(a, b) {
		n.w.violate("harness", "%s: incremental plan %v differs from the full plan %v", n, b, a)
	}
}

func (n *Node) sortedIndexAndRemotePaths() []string {
	all := map[string]bool{}
	for p := range n.index {
		all[p] = true
	}
	for _, view := range n.remote {
		for p := range view {
			all[p] = true
		}
	}
	return sortedKeys(all)
}

func (n *Node) markDirty(path string) {
	if n.dirty == nil {
		n.dirty = map[string]bool{}
	}
	n.dirty[path] = true
}

// setIndex records e for path and marks the path for the next plan.
func (n *Node) setIndex(path string, e *entry) {
	if _, ok := n.index[path]; !ok {
		n.indexKeys = nil
	}
	n.index[path] = e
	n.markDirty(path)
}

func (n *Node) delIndex(path string) {
	if _, ok := n.index[path]; ok {
		n.indexKeys = nil
		delete(n.index, path)
		n.markDirty(path)
	}
}

// sortedIndex is sortedKeys(n.index), kept until a path comes or goes.
func (n *Node) sortedIndex() []string {
	if n.indexKeys == nil {
		n.indexKeys = sortedKeys(n.index)
	}
	return n.indexKeys
}

// maxConflictSuffix is node.MaxConflictSuffix: how many numbered variants
// of a conflict-copy name KeepAside tries.
const maxConflictSuffix = 1000

// keepAsideName is the name node.Applier.KeepAside gives a conflict copy:
// name if free, else name-2, name-3... before the extension.
func keepAsideName(disk map[string][]byte, name string) string {
	for k := 1; k <= maxConflictSuffix; k++ {
		cand := name
		if k > 1 {
			dir, base := path.Split(name)
			ext := path.Ext(base)
			if ext == base {
				ext = ""
			}
			cand = fmt.Sprintf("%s%s-%d%s", dir, strings.TrimSuffix(base, ext), k, ext)
		}
		if _, busy := disk[cand]; !busy {
			return cand
		}
	}
	return name // KeepAside would fail here; a thousand copies of one path never happen in a run
}

// vfKey names a version (author, sequence) with the fence it carries.
type vfKey struct {
	author     store.DeviceID
	seq, fence uint64
}

// verdict judges e with the verdict hook, cached while the log's
// VerdictGeneration stays.
func (n *Node) verdict(e entry) (crdt.Verdict, error) {
	if g := n.log.VerdictGeneration(); g != n.cacheGen || n.log != n.cacheLog || n.cache == nil {
		n.cache = map[vfKey]crdt.Verdict{}
		n.cacheGen, n.cacheLog = g, n.log
	}
	k := vfKey{e.Info.Author, e.Info.Seq, e.Fence}
	if v, ok := n.cache[k]; ok {
		return v, nil
	}
	v, err := n.w.hooks.Verdict(n.log, e.Info.Author, e.Info.LogHeads, e.Info.Path, e.Fence)
	if err == nil {
		n.cache[k] = v
	}
	return v, err
}

// shortID names a device in conflict copies as node.ShortID does (the last
// seven characters of the peer ID). plan's default, the first hex digits of
// the ID bytes, is the same for every Ed25519 device.
func shortID(d store.DeviceID) string {
	s := peer.ID(d).String()
	return s[max(0, len(s)-7):]
}

func sortedIntKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// treeHash hashes this device's tree restricted to what viewer may read.
func (n *Node) treeHash(viewer *Node) string {
	h := blake3.New()
	vu, ok := viewer.log.DeviceUser(viewer.dev)
	for _, p := range sortedKeys(n.disk) {
		if !ok || !viewer.log.Can(vu, crdt.ActionRead, p) {
			continue
		}
		fmt.Fprintf(h, "%s\x00", p)
		sum := blake3.Sum256(n.disk[p])
		h.Write(sum[:])
	}
	return string(h.Sum(nil))
}

// indexMatchesDisk: every live index entry is on disk with its content and
// nothing else is on disk.
func (n *Node) indexMatchesDisk() bool {
	live := 0
	for p, e := range n.index {
		if e.Info.Deleted {
			continue
		}
		live++
		b, ok := n.disk[p]
		if !ok || n.w.putContent(b).KeyString() != contentID(e.Info) {
			return false
		}
	}
	return live == len(n.disk)
}

// --- crashes ---

func (n *Node) crash() {
	n.up = false
	// Un-fsynced user writes are lost: the disk goes back to what the
	// scanner last saw. The index and the log store are durable.
	for _, p := range sortedKeys(n.undo) {
		if old := n.undo[p]; old != nil {
			n.disk[p] = *old
		} else {
			delete(n.disk, p)
		}
	}
	n.undo = map[string]*[]byte{}
	n.remote = map[int]map[string]entry{}
	n.recvSeq = map[int]uint64{}
	n.withheld = map[int]map[string]uint64{}
	n.peerHeads = map[int][]cid.Cid{}
	n.scanAt = 0
	n.applyAt = 0
	n.mailbox = nil // a relay keeps its mailbox in memory
}

func (n *Node) restart() {
	n.up = true
	l, err := crdt.LoadWith(n.store, n.w.ops)
	if err != nil {
		n.w.violate("store", "%s restart: load log: %v", n, err)
		return
	}
	n.log = l
}
