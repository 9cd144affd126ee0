package crdt

// Lock request epochs (R10). A request's epoch is 1 + the highest epoch of a
// lock request for the same file in its causal past, counting every request
// there, valid or not. It is its fence if granted. The causal past of an op
// is fixed by its hash-linked parents, so the epoch is a function of the op
// alone: the same on every replica, and nothing that arrives later (a
// concurrent op sorted before it, a denial that voids a request in its past)
// can move it. Numbering fences by grant order, or by the valid requests in
// the past, let a late op renumber grants that holders had already acted
// on (TestLockFenceSurvivesLateRelease, TestLockEpochIgnoresVoidedRequests).

// lockEpochs maps every lock request in a log to its epoch. Entries are
// added on insert and never change; the log's states share the map.
type lockEpochs map[LockID]uint64

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

// mergeLockTops is the per-file maximum over the parents' values: one of
// them when it covers the others (the usual case), else a new one.
func mergeLockTops(parents []*entry) *lockTops {
	var out *lockTops
	for _, p := range parents {
		switch t := p.lockTop; {
		case out.covers(t):
		case t.covers(out):
			out = t
		default:
			m := &lockTops{m: make(map[string]uint64, len(out.m)+len(t.m))}
			for k, v := range out.m {
				m.m[k] = v
			}
			for k, v := range t.m {
				m.m[k] = max(m.m[k], v)
			}
			out = m
		}
	}
	return out
}

// newState is an empty state that reads this log's lock epochs.
func (l *Log) newState() *State {
	s := newState()
	s.epochs = l.epochs
	return s
}
