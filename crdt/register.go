package crdt

// ancFunc reports whether the op at order index a is a causal ancestor of
// the op at order index b.
type ancFunc func(a, b int) bool

// Register entry kinds.
const (
	regAdd    uint8 = 1 // a grant: concurrent grants give the max
	regChange uint8 = 2 // a change (demotion or promotion): concurrent changes give the min
	regDel    uint8 = 3 // a revoke or renunciation: wins over anything concurrent
)

type regEntry struct {
	ix   int
	kind uint8
	val  Role
}

// register is a multi-value register over the op DAG: it keeps the causal
// frontier of the assignments made to one key (a grant, a group membership,
// a device certification, a restriction). Assigning drops the entries the new
// assignment causally follows and keeps the concurrent ones. Its value is
// therefore a function of the set of assignments, never of their order:
// remove wins over anything concurrent (LOG-RULES D3), concurrent changes
// give the lowest role, concurrent grants the highest.
type register []regEntry

func (r register) put(e regEntry, anc ancFunc) register {
	out := make(register, 0, len(r)+1)
	for _, x := range r {
		if !anc(x.ix, e.ix) {
			out = append(out, x)
		}
	}
	return append(out, e)
}

func (r register) value() Role {
	var add, chg Role
	haveChg := false
	for _, e := range r {
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
