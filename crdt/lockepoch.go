package crdt

// Lock epochs (R10), as facts of the op DAG rather than of the evaluation.
//
// A lock request's epoch is 1 + the highest epoch of a lock request for the
// same file in its causal past, counting every request there, valid or
// not; it is the request's fence if granted. A witness may ack a request
// only if its epoch is above every epoch it acked for the file before,
// counting every LockAck it signed, valid or not. Both are functions of an
// op's hash-linked past (a witness's earlier ops are in the past of its
// later ones: each op names its author's previous op as a parent), so they
// are the same on every replica, and nothing that arrives later — a
// concurrent op sorted before them, a denial that voids a request or an ack
// — can move them. Fences numbered in grant order, or epochs counted over
// the valid past, let a late op renumber grants that holders had already
// acted on (lock-contention-partition seeds 323, 720, 821;
// TestLockFenceSurvivesLateRelease, TestLockEpochIgnoresVoidedRequests).

// lockFacts are a log's lock epochs and the way to its witness ack marks.
// Entries are added on insert and never change; the log's states share
// them (read only).
type lockFacts struct {
	reqs  map[LockID]reqFact
	byKey map[string]*entry // the log's
}

type reqFact struct {
	path  string
	epoch uint64
}

func newLockFacts(byKey map[string]*entry) *lockFacts {
	return &lockFacts{reqs: map[LockID]reqFact{}, byKey: byKey}
}

// epoch of the lock request id (0 if unknown).
func (f *lockFacts) epoch(id LockID) uint64 { return f.reqs[id].epoch }

// ackFloor is the highest epoch for path that op's author acked before op,
// in the chain of its own ops that op names as parent (the op need not be
// in the log yet).
func (f *lockFacts) ackFloor(op *Op, path string) uint64 {
	var e uint64
	for _, p := range op.Parents {
		if pe := f.byKey[p.KeyString()]; pe != nil && pe.op.Author == op.Author {
			e = max(e, pe.selfAcks.get(path))
		}
	}
	return e
}

// note records the facts of a new op; e.parents are set. inPast reports
// whether the op with the given key is in e's causal past.
func (f *lockFacts) note(e *entry, inPast func(key string) bool) {
	e.lockTop = mergeLockTops(e.parents)
	op := e.op
	var own *lockTops
	for _, p := range e.parents {
		if p.op.Author == op.Author {
			own = own.merge(p.selfAcks)
		}
	}
	switch b := op.Body.(type) {
	case LockRequest:
		path := cleanPath(b.Path)
		epoch := e.lockTop.get(path) + 1
		e.lockTop = e.lockTop.with(path, epoch)
		f.reqs[RefOf(op.ID)] = reqFact{path: path, epoch: epoch}
	case LockAck:
		// An ack of a request outside its past is invalid everywhere and
		// acks nothing. (Whether the log holds that request yet depends on
		// arrival order; the past does not.)
		if rq, ok := f.reqs[b.Request]; ok && inPast(string(b.Request)) {
			own = own.with(rq.path, rq.epoch)
		}
	}
	e.selfAcks = own
}

// lockTops is, per file, the highest lock request epoch in an op's causal
// past (the op included). Ops share their parents' value when nothing
// differs; a value is never modified once made.
type lockTops struct{ m map[string]uint64 }

func (t *lockTops) get(path string) uint64 {
	if t == nil {
		return 0
	}
	return t.m[path]
}

// with returns t with path raised to epoch.
func (t *lockTops) with(path string, epoch uint64) *lockTops {
	n := &lockTops{m: map[string]uint64{}}
	if t != nil {
		for k, v := range t.m {
			n.m[k] = v
		}
	}
	n.m[path] = max(n.m[path], epoch)
	return n
}

// covers reports whether t is at least o on every file.
func (t *lockTops) covers(o *lockTops) bool {
	if o == nil || t == o {
		return true
	}
	if t == nil {
		return len(o.m) == 0
	}
	for k, v := range o.m {
		if t.m[k] < v {
			return false
		}
	}
	return true
}

// merge is the per-file maximum of t and o: one of them when it covers the
// other (the usual case), else a new value.
func (t *lockTops) merge(o *lockTops) *lockTops {
	switch {
	case t.covers(o):
		return t
	case o.covers(t):
		return o
	}
	m := &lockTops{m: make(map[string]uint64, len(t.m)+len(o.m))}
	for k, v := range t.m {
		m.m[k] = v
	}
	for k, v := range o.m {
		m.m[k] = max(m.m[k], v)
	}
	return m
}

// mergeLockTops is the per-file maximum over the parents' values.
func mergeLockTops(parents []*entry) *lockTops {
	var out *lockTops
	for _, p := range parents {
		out = out.merge(p.lockTop)
	}
	return out
}

// newState is an empty state that reads this log's lock facts.
func (l *Log) newState() *State {
	s := newState()
	s.lockFacts = l.lockFacts
	return s
}

// reaches reports whether the op with key is in the causal past of e (whose
// parents are set). It walks back from e's parents, never below the
// target's Lamport time: an ack is usually made soon after its request, so
// few ops lie between them.
func (l *Log) reaches(e *entry, key string) bool {
	t := l.byKey[key]
	if t == nil {
		return false
	}
	placed := t.ix >= 0
	for _, p := range e.parents {
		if p == t || (placed && p.ix >= 0 && l.isAnc(t.ix, p.ix)) {
			return true
		}
		placed = placed && p.ix >= 0
	}
	if placed { // the order's ancestor sets answered for every parent
		return false
	}
	seen := map[*entry]bool{}
	stack := append([]*entry(nil), e.parents...)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p == t {
			return true
		}
		if seen[p] || p.op.Lamport <= t.op.Lamport {
			continue
		}
		seen[p] = true
		stack = append(stack, p.parents...)
	}
	return false
}
