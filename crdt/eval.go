package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"sort"

	"github.com/ipfs/go-cid"
)

// MaxResolveRounds bounds the rounds of the strong-remove fixpoint. Each
// round re-evaluates every op against the denials found effective in the
// round before; the strictly-below rule makes chains of denials strictly
// descend in rank, so a fixpoint is reached in at most as many rounds as
// there are ranks. The bound is a safety net: if it is ever hit, the last
// round's result is used, which is still a function of the op set only.
const MaxResolveRounds = 10

type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) has(i int) bool { return i/64 < len(b) && b[i/64]&(1<<(uint(i)%64)) != 0 }
func (b bitset) set(i int)      { b[i/64] |= 1 << (uint(i) % 64) }
func (b bitset) or(o bitset) {
	for i := range o {
		b[i] |= o[i]
	}
}
func (b bitset) setPrefix(n int) { // bits [0, n)
	for i := 0; i < n/64; i++ {
		b[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		b[n/64] |= (1 << uint(r)) - 1
	}
}
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// isAnc reports whether the op at order index a is a causal ancestor of the
// op at order index b.
func (l *Log) isAnc(a, b int) bool {
	if a >= b {
		return false
	}
	e := l.order[b]
	if e.full {
		return true
	}
	return bitset(e.anc).has(a)
}

// pastOf returns a predicate for "order index i is in the causal past of
// heads (or one of them)". Unknown heads are ignored.
func (l *Log) pastOf(heads []cid.Cid) func(i int) bool {
	var hs []*entry
	maxFull := -1
	for _, h := range heads {
		e := l.byKey[h.KeyString()]
		if e == nil {
			continue
		}
		if e.full {
			if e.ix > maxFull {
				maxFull = e.ix
			}
			continue
		}
		hs = append(hs, e)
	}
	return func(i int) bool {
		if i <= maxFull {
			return true
		}
		for _, e := range hs {
			if i == e.ix || bitset(e.anc).has(i) {
				return true
			}
		}
		return false
	}
}

func lessEntry(a, b *entry) bool {
	if a.op.Lamport != b.op.Lamport {
		return a.op.Lamport < b.op.Lamport
	}
	return bytes.Compare(a.op.ID.Bytes(), b.op.ID.Bytes()) < 0
}

// settle brings the evaluated state up to date after ops arrived that the
// fast path could not take.
func (l *Log) settle() {
	if !l.dirty {
		return
	}
	l.dirty = false
	l.verdicts = nil
	l.evaluate()
}

// evaluate recomputes the whole state from the op set (LOG-RULES R4-R6):
//
//  1. Order the ops totally by (Lamport time, CID bytes). Lamport times are
//     checked on arrival, so this order is a topological order of the DAG.
//  2. Compute each op's ancestors (bitsets; ops whose past is everything
//     before them in the order are marked full and need none).
//  3. Rounds: each round walks the order and finds an op valid iff it is
//     admissible in the state of its valid causal past, stays admissible when
//     the effective denials of the previous round that are concurrent with it
//     are applied on top (strong remove, D1; D2 follows because invalid
//     ancestors are left out of that state), and passes the total-order
//     checks (invitation uses, equivocation). Stop when the set of effective
//     denials no longer changes.
func (l *Log) evaluate() {
	n := len(l.order)
	sort.Slice(l.order, func(i, j int) bool { return lessEntry(l.order[i], l.order[j]) })
	scratch := newBitset(n)
	for i, e := range l.order {
		e.ix = i
	}
	for i, e := range l.order {
		for k := range scratch {
			scratch[k] = 0
		}
		for _, p := range e.parents {
			if p.full {
				scratch.setPrefix(p.ix + 1)
			} else {
				scratch.or(p.anc)
				scratch.set(p.ix)
			}
		}
		if scratch.count() == i {
			e.full, e.anc = true, nil
		} else {
			e.full = false
			e.anc = append(bitset(nil), scratch...)
		}
	}
	var denials []int
	var state *State
	l.rounds = 0
	for round := 0; round < MaxResolveRounds; round++ {
		l.rounds++
		state = l.pass(denials)
		var next []int
		for i, e := range l.order {
			if e.valid && isDenial(e.op.Kind) {
				next = append(next, i)
			}
		}
		same := len(next) == len(denials)
		for k := 0; same && k < len(next); k++ {
			same = next[k] == denials[k]
		}
		denials = next
		if same {
			break
		}
	}
	l.state = state
}

// pass is one round of evaluation against the given effective denials.
func (l *Log) pass(denials []int) *State {
	running := newState()
	anc := l.isAnc
	for i, e := range l.order {
		if i == 0 {
			e.valid, e.err = true, nil
			running.apply(e.op, 0, anc)
			continue
		}
		var conc []int
		for _, d := range denials {
			if d != i && !anc(d, i) && !anc(i, d) {
				conc = append(conc, d)
			}
		}
		var err error
		if e.full && len(conc) == 0 {
			err = running.check(e.op)
		} else {
			st := l.replay(i)
			err = st.check(e.op)
			if err == nil && len(conc) > 0 {
				for _, d := range conc {
					st.apply(l.order[d].op, d, anc)
				}
				if verr := st.check(e.op); verr != nil {
					err = fmt.Errorf("%w (%v)", ErrVoided, verr)
				}
			}
		}
		if err == nil {
			err = l.globalCheck(running, e, func(a, b int) bool { return a == b || anc(a, b) })
		}
		e.valid, e.err = err == nil, err
		if e.valid {
			running.apply(e.op, i, anc)
		}
	}
	return running
}

// replay builds the state of the valid causal past of the op at index i.
func (l *Log) replay(i int) *State {
	st := newState()
	for j := 0; j < i; j++ {
		if e := l.order[j]; e.valid && l.isAnc(j, i) {
			st.apply(e.op, j, l.isAnc)
		}
	}
	return st
}

// stateAt builds the state of the valid ops in the causal past of heads.
func (l *Log) stateAt(past func(int) bool) *State {
	st := newState()
	for j, e := range l.order {
		if e.valid && past(j) {
			st.apply(e.op, j, l.isAnc)
		}
	}
	return st
}

// Rounds reports how many fixpoint rounds the last full evaluation took
// (0 while every op went through the fast path).
func (l *Log) Rounds() int { return l.rounds }

var _ = errors.Is
