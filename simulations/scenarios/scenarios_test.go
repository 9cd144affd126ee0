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
				t.Logf("seed %d: converged=%v in %dms, changes=%d conflicts=%d attacks=%d msgs=%d bytes=%d events=%d faults=%d",
					seed, r.Converged, r.ConvergeMs, r.Changes, r.Conflicts, r.Attacks, r.Messages, r.Bytes, r.Events, len(r.Faults))
				if r.Options.Faults.Adversaries > 0 && r.Attacks == 0 {
					t.Errorf("seed %d: the adversaries did nothing", seed)
				}
				if r.Options.Mix.Invite > 0 && r.Joins == 0 {
					t.Errorf("seed %d: no invitation was used", seed)
				}
				if r.Changes == 0 {
					t.Errorf("seed %d: nothing changed", seed)
				}
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

// BenchmarkTeamSeed is one seed of the 20-device team scenario at its CI
// size (the full 2,000-operation size is `meshfold sim --scenario
// team-restricted-revocations`; BENCHMARKS.md, "Simulation", has its cost).
func BenchmarkTeamSeed(b *testing.B) {
	s, err := Get("team-restricted-revocations")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		r, err := Run(s, s.CI, uint64(i+1), simulations.Hooks{})
		if err != nil || !r.OK() {
			b.Fatalf("seed %d: %v %v", i+1, err, r.Violations)
		}
	}
}
