package scenarios

import (
	"flag"
	"testing"

	"github.com/meshfold/meshfold/simulations"
)

var long = flag.Bool("long", false, "run LongSeeds seeds of every scenario")

// CISeeds is how many seeds of each scenario CI runs; LongSeeds is -long.
const (
	CISeeds   = 2
	LongSeeds = 1000
)

func TestScenarios(t *testing.T) {
	seeds := uint64(CISeeds)
	if *long {
		seeds = LongSeeds
	}
	for _, s := range All {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel() // each run is one goroutine with no shared state
			for seed := uint64(1); seed <= seeds; seed++ {
				size := s.CI
				if *long {
					size = Size{}
				}
				r, err := Run(s, size, seed, simulations.Hooks{})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("seed %d: converged=%v in %dms, changes=%d msgs=%d bytes=%d events=%d faults=%d",
					seed, r.Converged, r.ConvergeMs, r.Changes, r.Messages, r.Bytes, r.Events, len(r.Faults))
				if !r.OK() {
					for i, v := range r.Violations {
						if i < 10 {
							t.Errorf("seed %d: %s", seed, v)
						}
					}
					t.Fatalf("seed %d failed (%d violations); options:\n%s", seed, len(r.Violations), r.Options)
				}
			}
		})
	}
}
