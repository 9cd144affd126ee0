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
// round before. Only a lost right voids an op (never a target that a
// concurrent denial of the same thing already removed), and the
// strictly-below rule makes chains of denials descend in rank, so in
// practice a fixpoint is reached in a few rounds (TestReferenceDifferential
// fails if any of its DAGs reaches the bound). That is observed, not proved:
// the bound is a safety net, and if it is hit the last round's result is
// used, which is still a function of the op set only.
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
	if e.full || a < e.ancBase {
		return true
	}
	return bitset(e.anc).has(a - e.ancBase)
}

// pastOf returns a predicate for "order index i is in the causal past of
// heads (or one of them)". Unknown heads are ignored.
func (l *Log) pastOf(heads []cid.Cid) func(i int) bool {
	var hs []int
	maxFull := -1
	for _, h := range heads {
		e := l.byKey[h.KeyString()]
		if e == nil {
			continue
		}
		if e.full {
			maxFull = max(maxFull, e.ix)
			continue
		}
		hs = append(hs, e.ix)
	}
	return func(i int) bool {
		if i <= maxFull {
			return true
		}
		for _, h := range hs {
			if i == h || l.isAnc(i, h) {
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
	cached, before := l.verdicts, l.state
	l.verdicts = nil
	// Remember what the ops already placed were, to tell afterwards whether
	// an earlier VersionVerdict answer can have changed (VerdictGeneration).
	first := 0
	if n := len(l.cuts); n > 0 {
		first = l.cuts[n-1].ix + 1
	}
	type flags struct {
		e             *entry
		ix            int
		valid, denial bool
	}
	var placed []flags
	var fresh []*entry
	for _, e := range l.order[first:] {
		if e.ix < 0 {
			fresh = append(fresh, e)
		} else {
			placed = append(placed, flags{e, e.ix, e.valid, e.denial})
		}
	}
	l.evaluate()
	changed, moved := false, false
	for _, f := range placed {
		changed = changed || f.e.valid != f.valid || f.e.denial != f.denial
		moved = moved || f.e.ix != f.ix
	}
	bump := changed
	for _, e := range fresh {
		bump = bump || turnsVerdicts(e)
	}
	if bump {
		l.gen++
	}
	if moved || changed || len(cached) == 0 || len(cached) > MaxCachedVerdicts {
		return
	}
	// Nothing already placed moved or changed: the new ops all come after
	// it in the order and lie in no cached past, so the cached states of
	// those pasts hold; new denials join their concurrent denials, as on
	// the fast path (keepVerdicts).
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].ix < fresh[j].ix })
	for k, vs := range cached {
		if vs.base == before || vs.base == l.state {
			delete(cached, k)
			continue
		}
		for _, e := range fresh {
			if e.valid && e.denial {
				if vs.withDenials == nil {
					vs.withDenials = vs.base.clone()
				}
				vs.withDenials.apply(e.op, e.ix, l.isAnc)
			}
		}
		cached[k] = vs
	}
	l.verdicts = cached
}

// turnsVerdicts reports whether the valid op e, new to the log and in no
// earlier heads' past, can change an earlier VersionVerdict answer: a denial
// (it joins the concurrent denials) or an op that changes the live lock
// state (the lock rules read it).
func turnsVerdicts(e *entry) bool {
	if !e.valid {
		return false
	}
	switch e.op.Kind {
	case KindLockRequest, KindLockAck, KindLockRelease, KindLockBreak, KindLockExpire, KindDeclareWitnesses:
		return true
	}
	return e.denial
}

// VerdictGeneration counts the changes to the log that can change an answer
// of VersionVerdict given before: while it stays the same, every earlier
// answer (for heads the log held) still holds, so a caller may keep them.
// It moves when a new op is a denial or a lock op, or when an evaluation
// changes the validity of ops already in the log; other new ops (grants
// that demote no one, devices, folders, invitations, joins, invalid ops)
// leave it alone.
func (l *Log) VerdictGeneration() uint64 {
	l.settle()
	return l.gen
}

// Cuts bound the work of an evaluation. A cut is a position in the order
// such that every op before it is an ancestor of every op after it: nothing
// that arrives later and descends from the ops before it (from its frontier,
// their maximal elements) can be concurrent with them, so their verdicts and
// the state they make are final. A linear append is a cut; so is the point
// after a round in which every device merged everything. The log keeps the
// state at a few cuts, spaced CutEvery ops apart, and evaluates only what
// follows the latest one. An op that does not descend from a cut's frontier
// (a long-offline branch) removes it and the later ones, and the next
// evaluation starts from an earlier cut or from genesis.
const (
	CutEvery     = 4096 // ops between cuts taken on the fast path
	EvalCutEvery = 1    // ops between cuts taken after an evaluation
	MaxCuts      = 12   // cuts kept (each holds a copy of the state)
)

type cut struct {
	ix       int      // the last order index before the cut
	frontier []*entry // the maximal ops before the cut
	state    *State   // the state after the ops up to ix; never modified
}

// covers reports whether every frontier op of c is one of roots or an
// ancestor of one.
func (l *Log) covers(roots []*entry, c cut) bool {
	for _, f := range c.frontier {
		ok := false
		for _, r := range roots {
			if r == f || l.isAnc(f.ix, r.ix) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// maybeCut records a cut after order index ix with the given frontier and
// state (cloned) when the last cut is at least every ops behind. Beyond
// MaxCuts it drops the cut whose neighbours are closest, so recent cuts stay
// dense and old ones thin out (roughly geometric spacing).
func (l *Log) maybeCut(ix, every int, frontier []*entry, st *State) {
	if n := len(l.cuts); n > 0 && ix-l.cuts[n-1].ix < every {
		return
	}
	l.cuts = append(l.cuts, cut{ix: ix, frontier: frontier, state: st.clone()})
	if len(l.cuts) > MaxCuts {
		drop, gap := 1, -1
		for k := 1; k < len(l.cuts)-1; k++ {
			if g := l.cuts[k+1].ix - l.cuts[k-1].ix; gap < 0 || g < gap {
				drop, gap = k, g
			}
		}
		l.cuts = append(l.cuts[:drop:drop], l.cuts[drop+1:]...)
	}
}

// prefixLen is how many ops from the start of the order are all ancestors
// of the op at order index j.
func (l *Log) prefixLen(j int) int {
	e := l.order[j]
	if e.full {
		return j
	}
	n := e.ancBase
	for _, w := range e.anc {
		if w == ^uint64(0) {
			n += 64
			continue
		}
		return n + bits.TrailingZeros64(^w)
	}
	return n
}

// evaluate recomputes the state from the op set (LOG-RULES R4-R6), starting
// from the latest cut:
//
//  1. Order the ops after the cut totally by (Lamport time, CID bytes).
//     Lamport times are checked on arrival, so this is a topological order,
//     and the ops after a cut all sort after it.
//  2. Compute each op's ancestors among them (bitsets; ops whose past is
//     everything before them are marked full and need none).
//  3. Rounds: each round walks the order and finds an op valid iff it is
//     admissible in the state of its valid causal past, does not lose a
//     right when the effective denials of the previous round that are
//     concurrent with it and aimed at its author are applied on top (strong
//     remove, D1; D2 follows because invalid ancestors are left out of that
//     state), its author did not equivocate in its past, and, for a join,
//     it did not lose its invitation's use to smaller-ID joins in the
//     previous round (R11, joinLosers). Stop when neither the set of
//     effective denials nor the set of losing joins changes.
func (l *Log) evaluate() {
	base, baseState := -1, (*State)(nil)
	if n := len(l.cuts); n > 0 {
		base, baseState = l.cuts[n-1].ix, l.cuts[n-1].state
	}
	first := base + 1
	suffix := l.order[first:]
	sort.Slice(suffix, func(i, j int) bool { return lessEntry(suffix[i], suffix[j]) })
	for k, e := range suffix {
		e.ix = first + k
	}
	scratch := newBitset(len(suffix))
	for k, e := range suffix {
		clear(scratch)
		for _, p := range e.parents {
			switch {
			case p.ix < first:
			case p.full:
				scratch.setPrefix(p.ix - first + 1)
			default:
				scratch.or(p.anc)
				scratch.set(p.ix - first)
			}
		}
		e.ancBase = first
		if scratch.count() == k {
			e.full, e.anc = true, nil
		} else {
			e.full = false
			e.anc = append(bitset(nil), scratch...)
		}
	}
	var denials, losers []int
	var state *State
	l.rounds = 0
	for round := 0; round < MaxResolveRounds; round++ {
		l.rounds++
		var joins []joinCand
		state, joins = l.pass(denials, losers, first, baseState)
		var next []int
		for i := first; i < len(l.order); i++ {
			if e := l.order[i]; e.denial {
				next = append(next, i)
			}
		}
		nextLosers := l.joinLosers(joins)
		same := slicesEqual(next, denials) && slicesEqual(nextLosers, losers)
		denials, losers = next, nextLosers
		if same {
			break
		}
	}
	l.state = state
	// Record a new cut: the latest position p that every op from p on has
	// all of [0, p) in its past (the end of the order always qualifies).
	n := len(l.order)
	minPrefix := n
	for p := n; p > first; p-- {
		if p < n {
			minPrefix = min(minPrefix, l.prefixLen(p))
		}
		if minPrefix < p {
			continue
		}
		if c := len(l.cuts); c == 0 || p-1-l.cuts[c-1].ix >= l.evalCutEvery {
			var frontier []*entry
			for i := first; i < p; i++ {
				maximal := true
				for j := i + 1; maximal && j < p; j++ {
					maximal = !l.isAnc(i, j)
				}
				if maximal {
					frontier = append(frontier, l.order[i])
				}
			}
			l.maybeCut(p-1, l.evalCutEvery, frontier, l.replayFrom(first, p, baseState, func(int) bool { return true }))
		}
		break
	}
}

// scratchStates is how many partial states a pass keeps for ops whose past
// is not everything before them (typically one per concurrent writer).
const scratchStates = 4

// scratch is base plus the valid ops at the order indices in applied.
type scratch struct {
	st      *State
	applied []int
	used    int
}

// joinCand is a join that passed every check of a pass but the use count:
// admissible in its past, not voided, no equivocation (R11).
type joinCand struct {
	ix     int
	invite InviteID
	user   UserID
	max    uint32
	spent  map[UserID]bool // the users its causal past spent uses on (spentUses)
}

// spentUses is the set of users the invitation's uses went to in the causal
// past of the op at order index i: the users its valid past admitted, and
// the users of the candidate joins of this pass in that past, including
// the ones that lose their use to concurrent smaller-ID joins. R11 admits a
// join only if "in its causal past ... uses < max_uses", and in that past
// alone a join that loses only to a concurrent join it does not see was
// admitted: counting only the valid past let a join made after the
// invitation was used up (a replay) become admissible once the join it saw
// lost, and then take the use from the concurrent winner with a smaller ID
// (the invitation-replay simulation's seeds 39, 160 and 200). The set has
// users, not joins: two concurrent joins of one user spend one use.
func spentUses(inv *invite, cands []joinCand, i int, anc func(a, b int) bool) map[UserID]bool {
	spent := make(map[UserID]bool, len(inv.admitted)+1)
	for u := range inv.admitted {
		spent[u] = true
	}
	for _, c := range cands {
		if c.invite == inv.id && anc(c.ix, i) {
			spent[c.user] = true
		}
	}
	return spent
}

// joinLosers decides which candidate joins keep a use of their invitation
// (R11: concurrent over-use keeps the smallest IDs). Per invitation, in
// ascending ID order, a join keeps a use if the users of the joins kept so
// far together with the users its own past spent uses on (spentUses) number
// fewer than max_uses and none of the kept ones admits the same user. Every kept join counted all the
// kept joins with smaller IDs, so at most max_uses are kept (I8); and a
// join in the past of every later one (before a cut) is never displaced by
// them, because each of them counted it. It returns the losers' order
// indices, ascending.
func (l *Log) joinLosers(joins []joinCand) []int {
	if len(joins) == 0 {
		return nil
	}
	byInv := map[InviteID][]joinCand{}
	for _, j := range joins {
		byInv[j.invite] = append(byInv[j.invite], j)
	}
	var losers []int
	for _, js := range byInv {
		sort.Slice(js, func(a, b int) bool {
			return bytes.Compare(l.order[js[a].ix].op.ID.Bytes(), l.order[js[b].ix].op.ID.Bytes()) < 0
		})
		var kept []joinCand
		for _, j := range js {
			n, ok := uint32(len(j.spent)), true
			for _, k := range kept {
				if k.user == j.user {
					ok = false
				}
				if !j.spent[k.user] {
					n++ // kept and not already counted in j's past
				}
			}
			if ok && n < j.max {
				kept = append(kept, j)
			} else {
				losers = append(losers, j.ix)
			}
		}
	}
	sort.Ints(losers)
	return losers
}

// pass is one round of evaluation, from order index first (the state of
// everything before it is base), against the given effective denials and
// the joins that lost their invitation's uses in the round before. It
// returns the state and this round's candidate joins.
func (l *Log) pass(denials, losers []int, first int, base *State) (*State, []joinCand) {
	var joins []joinCand
	fresh := func() *State {
		if base != nil {
			return base.clone()
		}
		return l.newState()
	}
	running := fresh()
	anc := l.isAnc
	var pool []*scratch
	var need []int
	for i := first; i < len(l.order); i++ {
		e := l.order[i]
		if i == 0 {
			e.valid, e.err, e.denial = true, nil, false
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
		var past *State // the state of the op's valid causal past
		if e.full && len(conc) == 0 {
			past = running
			err = running.check(e.op)
		} else {
			var st *State
			if e.full {
				st = running
			} else {
				// The state of the op's past: base plus its valid
				// ancestors from first on, built on a scratch state that
				// already holds a prefix of them.
				need = need[:0]
				for j := first; j < i; j++ {
					if l.order[j].valid && anc(j, i) {
						need = append(need, j)
					}
				}
				var sc *scratch
				for _, s := range pool {
					if len(s.applied) <= len(need) && slicesEqual(s.applied, need[:len(s.applied)]) &&
						(sc == nil || len(s.applied) > len(sc.applied)) {
						sc = s
					}
				}
				if sc == nil {
					if len(pool) < scratchStates {
						sc = &scratch{}
						pool = append(pool, sc)
					} else {
						sc = pool[0]
						for _, s := range pool {
							if s.used < sc.used {
								sc = s
							}
						}
					}
					sc.st, sc.applied = fresh(), sc.applied[:0]
				}
				for _, j := range need[len(sc.applied):] {
					sc.st.apply(l.order[j].op, j, anc)
					sc.applied = append(sc.applied, j)
				}
				sc.used = i
				st = sc.st
			}
			past = st
			err = st.check(e.op)
			if err == nil {
				conc = st.aimedAt(e.op, conc, l.order)
			}
			if err == nil && len(conc) > 0 {
				st = st.clone()
				for _, d := range conc {
					st.apply(l.order[d].op, d, anc)
				}
				// Only a lost right voids (D1). An op that fails only
				// because its target is already gone (a revoke concurrent
				// with a renunciation or another revoke of the same grant)
				// stands: denials of one thing are idempotent, and voiding
				// both would leave the grant in place (fail-open).
				if verr := st.check(e.op); verr != nil && !errors.Is(verr, ErrBadTarget) {
					err = fmt.Errorf("%w (%v)", ErrVoided, verr)
				}
			}
		}
		if err == nil {
			err = l.globalCheck(e, func(a, b int) bool { return a == b || anc(a, b) })
		}
		if j, ok := e.op.Body.(Join); ok && err == nil {
			inv := past.invites[j.Invite]
			spent := spentUses(inv, joins, i, anc)
			if spent[j.Cert.User] || uint32(len(spent)) >= inv.body.MaxUses {
				// Used up in its own past, by joins of which some lost
				// their use to concurrent ones: a join made after it saw
				// the invitation used up must not take a use back when
				// the one it saw loses (R11; replay after use).
				err = fmt.Errorf("%w: used up in its past (joins that lost their use count)", ErrInviteUnusable)
			} else {
				joins = append(joins, joinCand{ix: i, invite: j.Invite, user: j.Cert.User, max: inv.body.MaxUses, spent: spent})
				if k := sort.SearchInts(losers, i); k < len(losers) && losers[k] == i {
					err = fmt.Errorf("%w: its use went to joins with smaller IDs", ErrInviteUnusable)
				}
			}
		}
		e.valid, e.err = err == nil, err
		e.denial = e.valid && past.isDenialOp(e.op)
		if e.denial {
			e.hits = past.deniedUser(e.op)
		}
		if e.valid {
			running.apply(e.op, i, anc)
		}
	}
	return running, joins
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// replayFrom builds the state of base (the state before order index first)
// plus the valid ops in [first, end) that pick selects.
func (l *Log) replayFrom(first, end int, base *State, pick func(j int) bool) *State {
	st := l.newState()
	if base != nil {
		st = base.clone()
	}
	for j := first; j < end; j++ {
		if e := l.order[j]; e.valid && pick(j) {
			st.apply(e.op, j, l.isAnc)
		}
	}
	return st
}

// cutIn returns the latest cut inside the causal past (the index after it,
// and its state), or 0 and nil.
func (l *Log) cutIn(past func(int) bool) (int, *State) {
	for k := len(l.cuts) - 1; k >= 0; k-- {
		in := true
		for _, f := range l.cuts[k].frontier {
			in = in && past(f.ix)
		}
		if in {
			return l.cuts[k].ix + 1, l.cuts[k].state
		}
	}
	return 0, nil
}

// stateAt builds the state of the valid ops in the causal past of heads,
// starting from the latest cut inside that past.
func (l *Log) stateAt(past func(int) bool) *State {
	first, base := l.cutIn(past)
	return l.replayFrom(first, len(l.order), base, past)
}

// Rounds reports how many fixpoint rounds the last full evaluation took
// (0 while every op went through the fast path).
func (l *Log) Rounds() int { return l.rounds }
