package scenarios

import (
	"testing"

	"github.com/meshfold/meshfold/simulations"
)

// TestLockFenceSeeds replays the lock-contention-partition seeds (CI size)
// whose long run reused a fence: in each, a requester cut off by a partition
// withdrew its request while the witnesses completed its quorum elsewhere;
// replicas saw the grant, and when the withdrawal arrived it sorted before
// the last acks, so the converged order never granted it. With fences
// numbered in grant order, every later grant on the file moved down by one
// and a later holder acted on a fence an earlier holder had used. Fences
// are now the requests' epochs (crdt, R10).
func TestLockFenceSeeds(t *testing.T) {
	s, err := Get("lock-contention-partition")
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{323, 720, 821} {
		r, err := Run(s, s.CI, seed, simulations.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range r.Violations {
			if i < 5 {
				t.Errorf("seed %d: %s", seed, v)
			}
		}
		if !r.OK() {
			t.Errorf("seed %d: %d violations", seed, len(r.Violations))
		}
	}
}
