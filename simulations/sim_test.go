package simulations

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/store"
)

// editStorm is a small, fault-heavy shape: three devices editing a few files.
func editStorm(seed uint64) Options {
	return Options{
		Scenario: "test-edit-storm", Seed: seed, Nodes: 3, Ops: 150, Paths: 4,
		Mix:        Mix{Edit: 10, Delete: 2, Rename: 2, CaseRename: 1},
		Faults:     Faults{Loss: 0.2, Dup: 0.2, Reorder: true, Crashes: true, Skew: true, Partitions: true},
		WorkloadMs: 60_000, QuiesceMs: 120_000, SyncEveryMs: 1_000, Fanout: 2,
	}
}

// adversarial: viewers that push forged ops and versions, and a restricted
// folder whose membership changes.
func adversarial(seed uint64) Options {
	return Options{
		Scenario: "test-adversarial", Seed: seed, Nodes: 7, Ops: 150, Paths: 9,
		Mix:        Mix{Edit: 10, Grant: 2, Revoke: 1, Restrict: 1},
		Faults:     Faults{Adversaries: 2, Loss: 0.05, Reorder: true},
		WorkloadMs: 60_000, QuiesceMs: 120_000, SyncEveryMs: 1_000, Fanout: 2,
	}
}

func run(t *testing.T, o Options, h Hooks) *Result {
	t.Helper()
	w, err := NewWorld(o, h)
	if err != nil {
		t.Fatal(err)
	}
	w.Workload()
	return w.Run()
}

func report(r *Result) string {
	var b strings.Builder
	for _, v := range r.Violations {
		b.WriteString(v.String() + "\n")
	}
	return b.String() + r.Options.String()
}

// TestReplay: one seed, one code, one trace; another seed, another trace.
func TestReplay(t *testing.T) {
	for _, mk := range []func(uint64) Options{editStorm, adversarial} {
		a := run(t, mk(7), Hooks{})
		b := run(t, mk(7), Hooks{})
		if a.TraceHash != b.TraceHash {
			t.Fatalf("%s: same seed, different traces %x / %x", a.Options.Scenario, a.TraceHash, b.TraceHash)
		}
		if a.Events != b.Events || a.Bytes != b.Bytes || a.ConvergeMs != b.ConvergeMs || len(a.Violations) != len(b.Violations) {
			t.Fatalf("%s: same seed, different results: %+v / %+v", a.Options.Scenario, a, b)
		}
		if a.Events < 100 || a.Changes < 20 {
			t.Fatalf("%s: the run did almost nothing: %d events, %d changes", a.Options.Scenario, a.Events, a.Changes)
		}
		c := run(t, mk(8), Hooks{})
		if c.TraceHash == a.TraceHash {
			t.Fatalf("%s: seeds 7 and 8 gave the same trace", a.Options.Scenario)
		}
	}
}

// TestSmallShapesPass: the shapes the negative tests use hold every
// invariant with the real cores, so what the broken cores trip is theirs.
func TestSmallShapesPass(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		for _, o := range []Options{editStorm(seed), adversarial(seed)} {
			if r := run(t, o, Hooks{}); !r.OK() || !r.Converged {
				t.Fatalf("real cores fail:\n%s", report(r))
			}
		}
	}
}

// caught runs seeds 1..3 with broken hooks and wants inv violated in one.
func caught(t *testing.T, mk func(uint64) Options, h Hooks, inv string) {
	t.Helper()
	for seed := uint64(1); seed <= 3; seed++ {
		r := run(t, mk(seed), h)
		for _, v := range r.Violations {
			if v.Invariant == inv {
				t.Logf("seed %d: caught: %s", seed, v)
				return
			}
		}
	}
	t.Fatalf("the broken core went unnoticed: no %q violation in seeds 1..3", inv)
}

// A planner that drops conflict copies (fetches the winner over the local
// losing version) loses admitted versions.
func TestBrokenPlannerIsCaught(t *testing.T) {
	dropCopies := func(cfg plan.Config, local []store.FileInfo, remote []plan.Candidate) []plan.Action {
		acts := plan.Plan(cfg, local, remote)
		for i := range acts {
			if acts[i].Op == plan.ConflictCopy {
				acts[i] = plan.Action{Op: plan.Fetch, Want: acts[i].Want}
			}
		}
		return acts
	}
	caught(t, editStorm, Hooks{Plan: dropCopies}, "lost-version")
}

// A resolver that accepts every version (so a viewer's or a revoked
// member's writes) applies forged versions.
func TestBrokenResolverIsCaught(t *testing.T) {
	acceptAll := func(l *crdt.Log, author store.DeviceID, heads []cid.Cid, path string, fence uint64) (crdt.Verdict, error) {
		if _, err := realVerdict(l, author, heads, path, fence); errors.Is(err, crdt.ErrUnknownHeads) {
			return crdt.VerdictReject, err
		}
		return crdt.VerdictAccept, nil
	}
	caught(t, adversarial, Hooks{Verdict: acceptAll}, "forged-version")
}

// A read filter that lets everything through leaks restricted paths.
func TestLeakyFilterIsCaught(t *testing.T) {
	all := func(*crdt.Log, store.DeviceID, string) bool { return true }
	restricted := func(seed uint64) Options {
		o := adversarial(seed)
		o.Mix = Mix{Edit: 10, Restrict: 3, Revoke: 2}
		return o
	}
	caught(t, restricted, Hooks{MayRead: all}, "privacy")
}

func TestBadOptions(t *testing.T) {
	for _, mut := range []func(*Options){
		func(o *Options) { o.Nodes = 1 },
		func(o *Options) { o.Nodes = MaxNodes + 1 },
		func(o *Options) { o.Ops = MaxOps + 1 },
		func(o *Options) { o.Paths = 0 },
		func(o *Options) { o.Faults.Adversaries = o.Nodes },
		func(o *Options) { o.SyncEveryMs = 0 },
	} {
		o := editStorm(1)
		mut(&o)
		if _, err := NewWorld(o, Hooks{}); !errors.Is(err, ErrBadOptions) {
			t.Fatalf("%+v: err %v, want ErrBadOptions", o, err)
		}
	}
}

func TestWriteSVG(t *testing.T) {
	r := run(t, editStorm(3), Hooks{})
	var b bytes.Buffer
	if err := WriteSVG(&b, r); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(strings.TrimSpace(s), "</svg>") ||
		strings.Count(s, "<rect") < len(r.BytesPerNode) || !strings.Contains(s, "<polyline") {
		t.Fatalf("not the report: %.300s", s)
	}
	if len(r.Faults) > 0 && !strings.Contains(s, "<title>") {
		t.Fatal("faults missing from the timeline")
	}
}

// TestIncrementalPlanMatchesFull: with checkIncremental on, every apply
// also plans every path; the incremental plan must give the same actions
// (the paths it leaves out are in sync).
func TestIncrementalPlanMatchesFull(t *testing.T) {
	checkIncremental = true
	defer func() { checkIncremental = false }()
	locks := func(seed uint64) Options {
		o := editStorm(seed)
		o.Nodes, o.Witnesses, o.Mix = 6, 3, Mix{Edit: 6, Lock: 6, Delete: 1, Rename: 1}
		return o
	}
	team := func(seed uint64) Options {
		o := adversarial(seed)
		o.Nodes, o.Ops, o.Paths, o.Faults = 10, 400, 12, Faults{Partitions: true, Loss: 0.05, Reorder: true}
		o.Mix = Mix{Edit: 30, Delete: 4, Rename: 3, CaseRename: 1, Grant: 4, Revoke: 3, Restrict: 2}
		return o
	}
	for seed := uint64(1); seed <= 3; seed++ {
		for _, o := range []Options{editStorm(seed), adversarial(seed), locks(seed), team(seed)} {
			if r := run(t, o, Hooks{}); !r.OK() {
				t.Fatalf("incremental planning differs or breaks an invariant:\n%s", report(r))
			}
		}
	}
}

// relayed: members linked only through relays, which must see no path.
func relayed(seed uint64) Options {
	return Options{
		Scenario: "test-relayed", Seed: seed, Nodes: 7, Relays: 2, Ops: 120, Paths: 6,
		Mix:        Mix{Edit: 10, Delete: 2, Rename: 2, Restrict: 1},
		Faults:     Faults{Churn: true, Loss: 0.05, Reorder: true},
		WorkloadMs: 60_000, QuiesceMs: 120_000, SyncEveryMs: 1_000, Fanout: 2,
	}
}

// TestRelayedConverges: through relays alone (stored and forwarded while
// members are away) the members converge, and relays carry real traffic.
func TestRelayedConverges(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		r := run(t, relayed(seed), Hooks{})
		if !r.OK() || !r.Converged {
			t.Fatalf("relayed run fails:\n%s", report(r))
		}
		// Every hop has a relay at one end, so the relays' bytes (sent plus
		// received) come to about all the bytes moved.
		if relays := r.BytesPerNode[5] + r.BytesPerNode[6]; relays < r.Bytes*9/10 || r.Bytes == 0 {
			t.Fatalf("seed %d: the relays (n5, n6) moved %d and %d of %d bytes", seed, r.BytesPerNode[5], r.BytesPerNode[6], r.Bytes)
		}
	}
}

// A relay handed plaintext (sealing switched off) sees paths.
func TestPlaintextRelayIsCaught(t *testing.T) {
	plain := func(_ [32]byte, _ uint64, b []byte) []byte { return b }
	caught(t, relayed, Hooks{Seal: plain}, "relay-privacy")
}
