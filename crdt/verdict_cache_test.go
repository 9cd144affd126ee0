package crdt

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/ipfs/go-cid"
)

// verdictCacheSeeds: random runs of the property generator in which every
// step is followed by version-verdict queries (fewer under -race, where
// each costs about ten times more).
const verdictCacheSeeds, verdictCacheSeedsRace = 150, 20

// TestVerdictCacheMatchesFresh is the differential test of the verdict
// cache kept across fast-path appends (keepVerdicts): after every step of a
// random run, each replica's answers to random VersionVerdict questions
// (heads seen anywhere earlier in the run, random authors, paths and
// fences) equal those of a fresh replica of the same ops, whose cache is
// empty.
func TestVerdictCacheMatchesFresh(t *testing.T) {
	w := newPropWorld(t)
	authors := append([]*actor{w.founder}, w.members...)
	paths := []string{"f0", "f1", "d0/x", "d1/y", "m0/z", "top"}
	seeds := int64(verdictCacheSeeds)
	if raceEnabled() {
		seeds = verdictCacheSeedsRace
	}
	asked, kept, stale := 0, 0, 0
	type answer struct {
		gen    uint64
		heads  []cid.Cid
		a      *actor
		path   string
		fence  uint64
		v      Verdict
		failed bool
	}
	for seed := int64(1); seed <= seeds; seed++ {
		p := &propRun{t: t, w: w, rng: rand.New(rand.NewSource(seed)), inviteBy: map[InviteID]int{}, decoded: map[string]*Op{}}
		g := Genesis{Name: "verdicts", Founders: []DeviceCert{w.founder.cert}, Nonce: []byte(fmt.Sprint(seed))}
		l0, err := NewFolder(w.founder.dev, g, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.setupTeam(l0)
		var history [][]cid.Cid
		memo := make([][]answer, propReplicas)
		for step := 0; step < 2*propSteps; step++ {
			if p.pick(4) == 0 {
				if src, dst := p.pick(propReplicas), p.pick(propReplicas); src != dst {
					p.deliver(p.reps[src], p.reps[dst])
				}
			} else {
				p.randomOp()
			}
			for _, r := range p.reps {
				history = append(history, r.Heads())
			}
			for ri, r := range p.reps {
				var fresh *Log
				for q := 0; q < 4; q++ {
					heads := history[p.pick(len(history))]
					a := authors[p.pick(len(authors))]
					path := paths[p.pick(len(paths))]
					fence := uint64(p.pick(3))
					before := len(r.verdicts)
					got, gerr := r.VersionVerdict(a.did, heads, path, fence)
					if before > 0 && len(r.verdicts) == before {
						kept++ // answered from the cache
					}
					if fresh == nil {
						fresh = freshReplica(t, r)
					}
					want, werr := fresh.VersionVerdict(a.did, heads, path, fence)
					asked++
					if got != want || (gerr == nil) != (werr == nil) {
						t.Fatalf("seed %d step %d replica %d: verdict(%s, %s, fence %d) = %v, %v; a fresh replica says %v, %v",
							seed, step, ri, a.name, path, fence, got, gerr, want, werr)
					}
					if gerr == nil {
						memo[ri] = append(memo[ri], answer{r.VerdictGeneration(), heads, a, path, fence, got, false})
					}
				}
				// Answers kept from earlier steps under an unchanged
				// VerdictGeneration still hold.
				gen := r.VerdictGeneration()
				live := memo[ri][:0]
				for _, m := range memo[ri] {
					if m.gen != gen {
						continue
					}
					live = append(live, m)
					if fresh == nil {
						fresh = freshReplica(t, r)
					}
					want, werr := fresh.VersionVerdict(m.a.did, m.heads, m.path, m.fence)
					stale++
					if werr != nil || want != m.v {
						t.Fatalf("seed %d step %d replica %d: VerdictGeneration stayed %d, but verdict(%s, %s, fence %d) went from %v to %v, %v",
							seed, step, ri, gen, m.a.name, m.path, m.fence, m.v, want, werr)
					}
				}
				memo[ri] = live[max(0, len(live)-32):]
			}
		}
	}
	t.Logf("%d verdicts compared, %d answered from the cache, %d kept answers re-checked", asked, kept, stale)
	if kept == 0 || stale < asked/4 {
		t.Fatal("too few verdicts came from the cache or survived a step: the test does not exercise them")
	}
}

// freshReplica rebuilds r's ops into a new log with an empty verdict cache.
func freshReplica(t *testing.T, r *Log) *Log {
	t.Helper()
	g, _ := r.Get(r.Folder())
	f, err := newFromGenesis(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ops []*Op
	for _, raw := range r.OpsSince(nil)[1:] {
		op, ok := r.Get(opCID(raw))
		if !ok {
			t.Fatal("an op of OpsSince is not in the log")
		}
		ops = append(ops, op)
	}
	var res MergeResult
	if err := f.mergeOps(ops, &res); err != nil {
		t.Fatal(err)
	}
	return f
}
