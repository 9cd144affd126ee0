package crdt

import "testing"

// TestRegisterTombstones: a remove beats a concurrent assignment even after
// a later assignment superseded the remove (D3), whatever topological order
// the entries are put in, and only the maximal removes are kept.
func TestRegisterTombstones(t *testing.T) {
	// The DAG by order index: 0 base grant; 1 grant(editor) and 2 revoke,
	// concurrent, both after 0; 3 grant(viewer) after 2; 4 revoke after 3;
	// 5 grant(organizer) after 4.
	parents := map[int][]int{1: {0}, 2: {0}, 3: {2}, 4: {3}, 5: {4}}
	var anc ancFunc
	anc = func(a, b int) bool {
		for _, p := range parents[b] {
			if p == a || anc(a, p) {
				return true
			}
		}
		return false
	}
	entries := map[int]regEntry{
		0: {ix: 0, kind: regAdd, val: RoleManager},
		1: {ix: 1, kind: regAdd, val: RoleEditor},
		2: {ix: 2, kind: regDel},
		3: {ix: 3, kind: regAdd, val: RoleViewer},
		4: {ix: 4, kind: regDel},
		5: {ix: 5, kind: regAdd, val: RoleOrganizer},
	}
	for _, tc := range []struct {
		order []int
		want  Role
	}{
		{[]int{0, 1, 2}, RoleNone},
		{[]int{0, 2, 1}, RoleNone},
		{[]int{0, 1, 2, 3}, RoleViewer}, // the editor grant the revoke beat stays dead
		{[]int{0, 2, 1, 3}, RoleViewer},
		{[]int{0, 2, 3, 1}, RoleViewer},
		{[]int{0, 1, 2, 3, 4}, RoleNone},
		{[]int{0, 2, 3, 1, 4, 5}, RoleOrganizer},
		{[]int{0, 1, 2, 3, 4, 5}, RoleOrganizer},
	} {
		var r register
		for _, i := range tc.order {
			r = r.put(entries[i], anc)
		}
		if got := r.value(); got != tc.want {
			t.Errorf("order %v: value %s, want %s (%+v)", tc.order, got, tc.want, r)
		}
		tombs := 0
		for _, e := range r {
			if e.tomb {
				tombs++
			}
		}
		if tombs > 1 {
			t.Errorf("order %v: %d tombstones kept, want at most the maximal remove (%+v)", tc.order, tombs, r)
		}
	}
}
