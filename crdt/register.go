package crdt

// ancFunc reports whether the op at order index a is a causal ancestor of
// the op at order index b.
type ancFunc func(a, b int) bool

// Register entry kinds.
const (
	regAdd    uint8 = 1 // a grant: concurrent grants give the max
	regChange uint8 = 2 // a change (demotion or promotion): concurrent changes give the min
	regDel    uint8 = 3 // a revoke or renunciation: wins over anything concurrent (remove)
)

type regEntry struct {
	ix   int
	kind uint8
	val  Role
	dead bool // an assignment that does not follow some remove of the register: it never counts (D3)
	tomb bool // a remove that a later assignment superseded, kept for D3
}

// register is a multi-value register over the op DAG: it keeps the causal
// frontier of the assignments made to one key (a grant, a group membership,
// a device certification, a restriction), plus the removes that a later
// assignment superseded (tombstones). Assigning drops the entries the new
// assignment causally follows and keeps the concurrent ones. Its value is a
// function of the set of assignments, never of their order (entries are put
// in a topological order): an assignment counts only if it follows every
// remove of the set, so a remove wins over anything concurrent with it even
// after a later assignment superseded the remove (LOG-RULES D3: a grant a
// revoke beat does not come back when someone grants again after the
// revoke); a remove on the frontier gives none; otherwise concurrent changes
// give the lowest role, concurrent grants the highest.
//
// Only the maximal removes are kept as tombstones (a remove that precedes
// another adds nothing: what does not follow the earlier one does not
// follow the later one either), so a register holds at most as many
// tombstones as there are concurrent removes of its key.
type register []regEntry

func (r register) put(e regEntry, anc ancFunc) register {
	out := make(register, 0, len(r)+1)
	for _, x := range r {
		isRemove := x.tomb || x.kind == regDel
		if isRemove && e.kind != regDel && !anc(x.ix, e.ix) {
			e.dead = true // e does not follow this remove
		}
		switch {
		case anc(x.ix, e.ix):
			if isRemove && e.kind != regDel {
				x.tomb = true
				out = append(out, x)
			}
			// other superseded entries, and removes that e (a remove
			// itself) follows, are dropped
		case x.tomb:
			out = append(out, x)
		default:
			if e.kind == regDel {
				x.dead = true // concurrent with a remove
			}
			out = append(out, x)
		}
	}
	return append(out, e)
}

func (r register) value() Role {
	var add, chg Role
	haveChg := false
	for _, e := range r {
		if e.tomb || e.dead {
			continue
		}
		switch e.kind {
		case regDel:
			return RoleNone
		case regChange:
			if !haveChg || e.val < chg {
				chg = e.val
			}
			haveChg = true
		default:
			if e.val > add {
				add = e.val
			}
		}
	}
	if haveChg {
		return chg
	}
	return add
}

func (r register) on() bool { return r.value() != RoleNone }
