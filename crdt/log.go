package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds on the buffer of ops that wait for missing parents (LOG-RULES R3).
const (
	MaxPendingOps   = 10000
	MaxPendingBytes = 16 << 20
)

// Errors of the log itself.
var (
	ErrPendingFull  = errors.New("crdt: pending buffer full")
	ErrNoGenesis    = errors.New("crdt: no genesis op")
	ErrNotGenesis   = errors.New("crdt: first op is not a genesis")
	ErrBadLamport   = errors.New("crdt: lamport time is not 1 + the highest parent's")
	ErrBadSeq       = errors.New("crdt: author sequence does not follow the author's previous op")
	ErrUnknownHeads = errors.New("crdt: heads not in the log")
)

// OpStore persists raw ops by ID. store.LogStore implements it on goleveldb;
// MemStore is the in-memory twin for tests.
type OpStore interface {
	Put(id, raw []byte) error
	Get(id []byte) ([]byte, bool, error)
	ForEach(fn func(id, raw []byte) error) error
}

type entry struct {
	op      *Op
	key     string
	parents []*entry
	ix      int      // position in the total order
	full    bool     // every op before it in the order is its ancestor
	ancBase int      // every op before this order index is its ancestor
	anc     []uint64 // ancestor bits for order indices ancBase.. (nil when full)
	roots   []*entry // while unsettled: the settled ops its past reaches first (an antichain)
	valid   bool
	denial  bool   // valid and takes a right away (see State.isDenialOp)
	hits    UserID // for a denial: the one user it takes rights from, or "" (see State.deniedUser)
	err     error
	// lockTop: per file, the highest lock request epoch in the op's
	// causal past, itself included (shared with parents when equal;
	// never modified). nil when there is none.
	lockTop *lockTops
	// selfAcks: per file, the highest epoch the op's author acked in its
	// own chain of ops up to this one (a device that forked has two
	// chains). nil when there is none.
	selfAcks *lockTops
}

// Fork is proof that a device equivocated: two different ops with one
// author sequence number (LOG-RULES R7).
type Fork struct {
	Device peer.ID
	Seq    uint64
	A, B   cid.Cid
}

// Log is one folder's membership, rights and lock log: a grow-only set of
// signed ops and the state they evaluate to. It does no I/O except through
// the OpStore it is given, reads no clock and starts no goroutine. It is not
// safe for concurrent use.
type Log struct {
	folder    cid.Cid
	byKey     map[string]*entry
	order     []*entry
	heads     map[string]*entry
	pending   map[string]*Op
	pendBytes int
	waiting   map[string][]string // missing parent key -> pending op keys
	bySeq     map[peer.ID]map[uint64][]*entry
	lastSeq   map[peer.ID]*entry
	forks     []Fork
	forked    map[peer.ID]bool
	state     *State
	lockFacts *lockFacts // lock epochs and witness ack marks (lockepoch.go)
	dirty     bool
	rounds    int
	store     OpStore
	verdicts  map[string]verdictState
	gen       uint64   // VerdictGeneration
	cuts      []cut    // ascending; see eval.go
	opCache   *OpCache // shared decoded ops (opcache.go), nil: none

	maxPendingOps, maxPendingBytes int // MaxPendingOps, MaxPendingBytes; tests lower them
	cutEvery, evalCutEvery         int // CutEvery, EvalCutEvery; tests lower them
}

// NewFolder creates a folder: it signs the genesis op with dev (which must be
// one of the founders' certified devices) and returns the new log. The
// folder ID is Log.Folder().
func NewFolder(dev Signer, g Genesis, time int64, store OpStore) (*Log, error) {
	if err := g.validate(); err != nil {
		return nil, err
	}
	op, err := signOp(dev, cid.Undef, 1, nil, 1, time, g)
	if err != nil {
		return nil, err
	}
	return New(op.Raw, store)
}

// New opens the log of the folder whose genesis op is genesisRaw.
func New(genesisRaw []byte, store OpStore) (*Log, error) {
	op, err := DecodeOp(genesisRaw)
	if err != nil {
		return nil, err
	}
	return newFromGenesis(op, store)
}

// newFromGenesis opens a log from a decoded, verified genesis op.
func newFromGenesis(op *Op, store OpStore) (*Log, error) {
	g, ok := op.Body.(Genesis)
	if !ok {
		return nil, ErrNotGenesis
	}
	authorOK := false
	for _, c := range g.Founders {
		if c.Device == op.Author {
			authorOK = true
		}
	}
	if !authorOK {
		return nil, fmt.Errorf("%w: genesis author is not a founder device", ErrUnknownDevice)
	}
	l := &Log{
		folder:  op.ID,
		byKey:   map[string]*entry{},
		heads:   map[string]*entry{},
		pending: map[string]*Op{},
		waiting: map[string][]string{},
		bySeq:   map[peer.ID]map[uint64][]*entry{},
		lastSeq: map[peer.ID]*entry{},
		forked:  map[peer.ID]bool{},
		store:   store,

		maxPendingOps:   MaxPendingOps,
		maxPendingBytes: MaxPendingBytes,
		cutEvery:        CutEvery,
		evalCutEvery:    EvalCutEvery,
	}
	l.lockFacts = newLockFacts(l.byKey)
	l.state = l.newState()
	if err := l.insert(op); err != nil {
		return nil, err
	}
	return l, nil
}

// Load rebuilds a log from everything in store. The store must hold exactly
// one genesis op.
func Load(store OpStore) (*Log, error) { return LoadWith(store, nil) }

// LoadWith is Load decoding through an OpCache; the log keeps using it
// (UseOpCache).
func LoadWith(store OpStore, c *OpCache) (*Log, error) {
	var genesis []byte
	var rest [][]byte
	err := store.ForEach(func(id, raw []byte) error {
		op, err := c.decode(raw)
		if err != nil {
			return fmt.Errorf("crdt: stored op %x: %w", id, err)
		}
		if op.Kind == KindGenesis {
			if genesis != nil {
				return fmt.Errorf("%w: two genesis ops in one store", ErrMalformed)
			}
			genesis = append([]byte(nil), raw...)
			return nil
		}
		rest = append(rest, append([]byte(nil), raw...))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if genesis == nil {
		return nil, ErrNoGenesis
	}
	l, err := New(genesis, nil)
	if err != nil {
		return nil, err
	}
	l.opCache = c
	if _, err := l.Merge(rest); err != nil {
		return nil, err
	}
	l.store = store
	return l, nil
}

// Folder is the folder ID: the CID of the genesis op.
func (l *Log) Folder() cid.Cid { return l.folder }

// Len is the number of ops in the log (valid or not; pending ones excluded).
func (l *Log) Len() int { return len(l.order) }

// Heads are the ops no other op names as a parent, sorted by bytes.
func (l *Log) Heads() []cid.Cid {
	out := make([]cid.Cid, 0, len(l.heads))
	for _, e := range l.heads {
		out = append(out, e.op.ID)
	}
	return sortCids(out)
}

// Has reports whether the op is in the log (not counting pending ops).
func (l *Log) Has(id cid.Cid) bool { return l.byKey[id.KeyString()] != nil }

// Get returns an op of the log.
func (l *Log) Get(id cid.Cid) (*Op, bool) {
	e := l.byKey[id.KeyString()]
	if e == nil {
		return nil, false
	}
	return e.op, true
}

// Status reports whether an op of the log is in effect, and if not why.
func (l *Log) Status(id cid.Cid) (valid bool, reason error, known bool) {
	l.settle()
	e := l.byKey[id.KeyString()]
	if e == nil {
		return false, nil, false
	}
	return e.valid, e.err, true
}

// Missing lists the parents that pending ops wait for, sorted, so the
// network layer can fetch them.
func (l *Log) Missing() []cid.Cid {
	var out []cid.Cid
	for k := range l.waiting {
		if l.byKey[k] == nil && l.pending[k] == nil {
			if c, err := cid.Cast([]byte(k)); err == nil {
				out = append(out, c)
			}
		}
	}
	return sortCids(out)
}

// Pending is the number of ops waiting for parents.
func (l *Log) Pending() int { return len(l.pending) }

// Forks lists the equivocations seen, in a deterministic order.
func (l *Log) Forks() []Fork {
	out := append([]Fork(nil), l.forks...)
	sort.Slice(out, func(i, j int) bool {
		if c := bytes.Compare(out[i].A.Bytes(), out[j].A.Bytes()); c != 0 {
			return c < 0
		}
		return bytes.Compare(out[i].B.Bytes(), out[j].B.Bytes()) < 0
	})
	return out
}

// MergeResult says what Merge did with a batch.
type MergeResult struct {
	Added    int     // ops new to the log
	Pending  int     // ops now waiting for parents
	Rejected []error // ops refused (undecodable, wrong folder, bad structure, buffer full)
}

// Merge adds remote ops (encoded). Each is decoded and verified; ops whose
// parents are missing wait in the bounded pending buffer until they arrive.
// Duplicates are ignored. The returned error is only for store failures;
// refused ops are listed in the result.
func (l *Log) Merge(raws [][]byte) (MergeResult, error) {
	var res MergeResult
	ops := make([]*Op, 0, len(raws))
	for _, raw := range raws {
		// An op's ID is the hash of its bytes: bytes we hold were verified
		// when they arrived, so duplicates cost a hash, not a signature check.
		if len(raw) <= MaxOpSize {
			if k := opCID(raw).KeyString(); l.byKey[k] != nil || l.pending[k] != nil {
				continue
			}
		}
		op, err := l.opCache.decode(raw)
		if err != nil {
			res.Rejected = append(res.Rejected, err)
			continue
		}
		ops = append(ops, op)
	}
	err := l.mergeOps(ops, &res)
	return res, err
}

// mergeOps adds decoded, statically valid ops.
func (l *Log) mergeOps(ops []*Op, res *MergeResult) error {
	defer l.settle()
	for _, op := range ops {
		if op.Kind == KindGenesis {
			if !op.ID.Equals(l.folder) {
				res.Rejected = append(res.Rejected, ErrWrongFolder)
			}
			continue
		}
		if !op.Folder.Equals(l.folder) {
			res.Rejected = append(res.Rejected, ErrWrongFolder)
			continue
		}
		key := op.ID.KeyString()
		if l.byKey[key] != nil || l.pending[key] != nil {
			continue
		}
		var missing []string
		for _, p := range op.Parents {
			if l.byKey[p.KeyString()] == nil {
				missing = append(missing, p.KeyString())
			}
		}
		if len(missing) > 0 {
			if len(l.pending) >= l.maxPendingOps || l.pendBytes+len(op.Raw) > l.maxPendingBytes {
				res.Rejected = append(res.Rejected, ErrPendingFull)
				continue
			}
			l.pending[key] = op
			l.pendBytes += len(op.Raw)
			for _, m := range missing {
				l.waiting[m] = append(l.waiting[m], key)
			}
			continue
		}
		added, errs, err := l.insertCascade(op)
		res.Added += added
		res.Rejected = append(res.Rejected, errs...)
		if err != nil {
			return err
		}
	}
	res.Pending = len(l.pending)
	return nil
}

// insertCascade inserts op and then every pending op it unblocks.
func (l *Log) insertCascade(op *Op) (int, []error, error) {
	added := 0
	var rejected []error
	queue := []*Op{op}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if err := l.insert(cur); err != nil {
			if errors.Is(err, errStore) {
				return added, rejected, err
			}
			rejected = append(rejected, err)
		} else {
			added++
		}
		key := cur.ID.KeyString()
		for _, wk := range l.waiting[key] {
			w := l.pending[wk]
			if w == nil {
				continue
			}
			ready := true
			for _, p := range w.Parents {
				if l.byKey[p.KeyString()] == nil {
					ready = false
					break
				}
			}
			if ready {
				delete(l.pending, wk)
				l.pendBytes -= len(w.Raw)
				queue = append(queue, w)
			}
		}
		delete(l.waiting, key)
	}
	return added, rejected, nil
}

var errStore = errors.New("crdt: op store")

// structural checks an op against its parents: Lamport time and the
// author's own chain (LOG-RULES R1).
func (l *Log) structural(op *Op, parents []*entry) error {
	var max uint64
	prevSelf := op.Seq == 1
	for _, p := range parents {
		if p.op.Lamport > max {
			max = p.op.Lamport
		}
		if p.op.Author == op.Author && p.op.Seq == op.Seq-1 {
			prevSelf = true
		}
	}
	if op.Kind != KindGenesis && op.Lamport != max+1 {
		return ErrBadLamport
	}
	if !prevSelf {
		return ErrBadSeq
	}
	return nil
}

// insert adds an op whose parents are all present.
func (l *Log) insert(op *Op) error {
	e := &entry{op: op, key: op.ID.KeyString()}
	for _, p := range op.Parents {
		pe := l.byKey[p.KeyString()]
		if pe == nil {
			return fmt.Errorf("%w: parent missing", ErrMalformed)
		}
		e.parents = append(e.parents, pe)
	}
	if err := l.structural(op, e.parents); err != nil {
		return err
	}
	if l.store != nil {
		if err := l.store.Put(op.ID.Bytes(), op.Raw); err != nil {
			return fmt.Errorf("%w: %w", errStore, err)
		}
	}
	l.lockFacts.note(e, func(key string) bool { return l.reaches(e, key) })
	// Fast path: the op follows every op we have, so its causal past is the
	// whole log and it can be evaluated incrementally against the current state.
	fast := !l.dirty && len(l.order) > 0
	if fast {
		for k := range l.heads {
			found := false
			for _, p := range e.parents {
				if p.key == k {
					found = true
					break
				}
			}
			if !found {
				fast = false
				break
			}
		}
	}
	l.byKey[e.key] = e
	for _, p := range e.parents {
		delete(l.heads, p.key)
	}
	l.heads[e.key] = e
	seqs := l.bySeq[op.Author]
	if seqs == nil {
		seqs = map[uint64][]*entry{}
		l.bySeq[op.Author] = seqs
	}
	for _, o := range seqs[op.Seq] {
		a, b := o.op.ID, op.ID
		if bytes.Compare(a.Bytes(), b.Bytes()) > 0 {
			a, b = b, a
		}
		l.forks = append(l.forks, Fork{Device: op.Author, Seq: op.Seq, A: a, B: b})
		l.forked[op.Author] = true
	}
	seqs[op.Seq] = append(seqs[op.Seq], e)
	if last := l.lastSeq[op.Author]; last == nil || op.Seq > last.op.Seq {
		l.lastSeq[op.Author] = e
	}
	if len(l.order) == 0 {
		e.ix, e.full = 0, true
		l.order = append(l.order, e)
		e.valid = true
		l.state.apply(op, 0, func(a, b int) bool { return a < b })
		return nil
	}
	if fast {
		e.ix, e.full = len(l.order), true
		l.order = append(l.order, e)
		e.err = l.fastCheck(e)
		e.valid = e.err == nil
		e.denial = e.valid && l.state.isDenialOp(op)
		if e.denial {
			e.hits = l.state.deniedUser(op)
		}
		if e.valid {
			l.state.apply(op, e.ix, l.isAnc)
		}
		l.keepVerdicts(e)
		l.maybeCut(e.ix, l.cutEvery, []*entry{e}, l.state)
		return nil
	}
	// The op does not follow everything: it will be placed and judged by
	// the next evaluation. Cuts it does not descend from are no longer cuts.
	e.ix = -1
	var cand []*entry
	for _, p := range e.parents {
		if p.ix >= 0 {
			cand = append(cand, p)
		} else {
			cand = append(cand, p.roots...)
		}
	}
	for _, c := range cand {
		dup := false
		for _, r := range e.roots {
			if r == c || l.isAnc(c.ix, r.ix) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		kept := e.roots[:0]
		for _, r := range e.roots {
			if !l.isAnc(r.ix, c.ix) {
				kept = append(kept, r)
			}
		}
		e.roots = append(kept, c)
	}
	covered := 0
	for k := len(l.cuts) - 1; k >= 0; k-- {
		if l.covers(e.roots, l.cuts[k]) {
			covered = k + 1
			break
		}
	}
	l.cuts = l.cuts[:covered]
	l.order = append(l.order, e)
	l.dirty = true
	return nil
}

// MaxCachedVerdicts bounds the version-verdict cache (one entry per distinct
// heads set asked about); beyond it the cache starts over.
const MaxCachedVerdicts = 256

// keepVerdicts updates the version-verdict cache after e was added on the
// fast path. Such an op follows every op, so it is in no cached heads' past
// and changes no earlier op's validity: a cached state of a past stays
// right. What changes: heads that were current (their base is the live
// state, which now includes e: dropped) and, if e is a denial, every
// entry's concurrent denials (e is added to them). So a stream of linear
// appends does not make every verdict replay the log again.
func (l *Log) keepVerdicts(e *entry) {
	if turnsVerdicts(e) {
		l.gen++
	}
	if len(l.verdicts) > MaxCachedVerdicts {
		l.verdicts = nil
		return
	}
	for k, vs := range l.verdicts {
		switch {
		case vs.base == l.state:
			delete(l.verdicts, k)
		case e.denial:
			// e is a denial outside every cached past: it joins the
			// concurrent denials, applied last as it is last in the order.
			if vs.withDenials == nil {
				vs.withDenials = vs.base.clone()
			}
			vs.withDenials.apply(e.op, e.ix, l.isAnc)
			l.verdicts[k] = vs
		}
	}
}

// fastCheck evaluates an op that causally follows the whole log.
func (l *Log) fastCheck(e *entry) error {
	if err := l.state.check(e.op); err != nil {
		return err
	}
	return l.globalCheck(e, func(a, b int) bool { return a < b || a == b })
}

// globalCheck applies equivocation (LOG-RULES R7): an op by a device with
// two ops of one sequence number in its past (or itself) is refused.
// Concurrent over-use of invitations is decided per evaluation round by
// joinLosers (R11).
func (l *Log) globalCheck(e *entry, pastOrSelf func(a, b int) bool) error {
	if l.forked[e.op.Author] {
		for _, seq := range l.bySeq[e.op.Author] {
			n := 0
			for _, o := range seq {
				if pastOrSelf(o.ix, e.ix) {
					n++
				}
			}
			if n > 1 {
				return ErrEquivocated
			}
		}
	}
	return nil
}

// Append signs a local op with dev, checks that it is valid on top of the
// whole log, and adds it. The op names every head as a parent.
func (l *Log) Append(dev Signer, body Body, time int64) (*Op, error) {
	if err := body.validate(); err != nil {
		return nil, err
	}
	op, err := l.Build(dev, body, time)
	if err != nil {
		return nil, err
	}
	probe := &entry{op: op, ix: len(l.order), full: true}
	if err := l.fastCheck(probe); err != nil {
		return nil, err
	}
	if err := l.insert(op); err != nil {
		return nil, err
	}
	return op, nil
}

// OpsSince returns, in causal order, the encoded ops not in the causal past
// of heads (heads this log does not know are ignored): what a peer at those
// heads lacks.
func (l *Log) OpsSince(heads []cid.Cid) [][]byte {
	l.settle()
	past := l.pastOf(heads)
	var out [][]byte
	for i, e := range l.order {
		if !past(i) {
			out = append(out, e.op.Raw)
		}
	}
	return out
}

// State returns the evaluated state. It stays valid until the next Merge or
// Append.
func (l *Log) State() *State {
	l.settle()
	return l.state
}

// Build signs an op by dev on top of the current heads (with dev's next
// sequence number) without checking or adding it. Tests and the simulation
// harness use it to make ops that other replicas will judge, including ones
// this log would refuse.
func (l *Log) Build(dev Signer, body Body, time int64) (*Op, error) {
	author, err := peer.IDFromPublicKey(dev.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("crdt: signer key: %w", err)
	}
	l.settle()
	parents := l.Heads()
	var seq uint64 = 1
	if last := l.lastSeq[author]; last != nil {
		seq = last.op.Seq + 1
		parents = append(parents, last.op.ID)
	}
	var lamport uint64
	for _, p := range parents {
		if e := l.byKey[p.KeyString()]; e.op.Lamport > lamport {
			lamport = e.op.Lamport
		}
	}
	return signOp(dev, l.folder, seq, parents, lamport+1, time, body)
}

// BuildOp signs an op by dev in folder with explicit parents and sequence
// number; its Lamport time is 1 + the highest parent's. It checks nothing
// beyond what encoding needs: use it to build concurrent branches by hand.
func BuildOp(dev Signer, folder cid.Cid, seq uint64, parents []*Op, time int64, body Body) (*Op, error) {
	var lamport uint64
	ids := make([]cid.Cid, 0, len(parents))
	for _, p := range parents {
		ids = append(ids, p.ID)
		if p.Lamport > lamport {
			lamport = p.Lamport
		}
	}
	return signOp(dev, folder, seq, ids, lamport+1, time, body)
}

// DropPending empties the buffer of ops waiting for parents. The node calls
// it when its own timer says the wait has gone on too long (LOG-RULES R3);
// the log has no clock of its own.
func (l *Log) DropPending() {
	l.pending = map[string]*Op{}
	l.waiting = map[string][]string{}
	l.pendBytes = 0
}
