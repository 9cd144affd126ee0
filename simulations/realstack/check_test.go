package realstack

import (
	"strings"
	"testing"
)

// TestJudgeCatchesEachBrokenInvariant: the checks of a run fail on trees
// that break each invariant, and pass on trees that keep them.
func TestJudgeCatchesEachBrokenInvariant(t *testing.T) {
	a, b, v1, v2, old := hashOf([]byte("a")), hashOf([]byte("b")), hashOf([]byte("viewer 1")), hashOf([]byte("viewer 2")), hashOf([]byte("old"))
	led := func() *ledger {
		return &ledger{
			written:          map[contentHash]write{a: {node: 0, path: "x"}, b: {node: 1, path: "y"}, old: {node: 1, path: "x"}},
			superseded:       map[contentHash]bool{old: true},
			byViewer:         map[contentHash]bool{v1: true, v2: true},
			viewerSuperseded: map[contentHash]bool{v2: true},
		}
	}
	good := tree{"x": a, "y.sync-conflict-20260101-000000-abc.txt": b}
	viewer := tree{"x": a, "y.sync-conflict-20260101-000000-abc.txt": b, "mine.txt": v1}
	cases := []struct {
		name  string
		trees []tree
		want  string // "" means no violation
	}{
		{"converged", []tree{good, good, viewer}, ""},
		{"a device differs", []tree{good, {"x": a}, viewer}, "convergence: device 1"},
		{"an unsuperseded version is lost", []tree{{"x": a}, {"x": a}, {"x": a, "mine.txt": v1}}, "lost-version: 1 versions"},
		{"the viewer's change spread", []tree{good, {"x": a, "y.sync-conflict-20260101-000000-abc.txt": b, "z": v1}, viewer}, "convergence: device 1"},
		{"the viewer's change spread everywhere", []tree{{"x": a, "y": b, "z": v1}, {"x": a, "y": b, "z": v1}, {"x": a, "y": b, "z": v1}}, "unauthorized: device 0"},
		{"the viewer lacks a shared file", []tree{good, good, {"x": a, "mine.txt": v1}}, "the viewer (device 2) lacks"},
		{"the viewer lost its own change", []tree{good, good, good}, "lost-version: a change the viewer made"},
		{"the viewer holds a stranger's file", []tree{good, good, {"x": a, "y.sync-conflict-20260101-000000-abc.txt": b, "mine.txt": v1, "q": hashOf([]byte("?"))}}, "neither shared nor its own"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := judge(c.trees, 2, led())
			all := strings.Join(v.violations, "\n")
			if c.want == "" {
				if len(v.violations) > 0 || !v.converged {
					t.Fatalf("violations on good trees: %s", all)
				}
				return
			}
			if !strings.Contains(all, c.want) {
				t.Fatalf("want a violation containing %q, got %q", c.want, all)
			}
		})
	}
}
