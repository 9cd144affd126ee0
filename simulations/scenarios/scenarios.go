package scenarios

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/meshfold/meshfold/simulations"
)

// ErrUnknown is returned for a scenario name not in the library.
var ErrUnknown = errors.New("scenarios: unknown scenario")

// Scenario is one named run shape.
type Scenario struct {
	Name  string
	Doc   string
	Nodes int // default device count
	// Shape fills the options for nodes devices (the seed is set by Run).
	Shape func(nodes int) simulations.Options
	// Workload schedules the run's operations; nil uses World.Workload.
	Workload func(w *simulations.World)
	// CI is the smaller size the package's tests run on every push (the
	// -long flag and the CLI use the full size).
	CI Size
}

// Size overrides a scenario's device and operation counts; zero fields keep
// the scenario's own.
type Size struct {
	Nodes, Ops int
}

// All is the library, in a fixed order.
var All = []Scenario{
	{
		Name:  "two-device-edit-storm",
		Doc:   "Two devices edit, delete and rename the same few files under loss, duplication, reordering, crashes and skew: they converge, no admitted version is lost, concurrent edits become conflict copies.",
		Nodes: 2,
		CI:    Size{Ops: 300},
		Shape: func(n int) simulations.Options {
			o := base(n, 400)
			o.Paths = 6
			o.Mix = simulations.Mix{Edit: 10, Delete: 2, Rename: 2, CaseRename: 1}
			o.Faults = simulations.Faults{Loss: 0.2, Dup: 0.2, Reorder: true, Crashes: true, Skew: true}
			return o
		},
	},
	{
		Name:  "team-restricted-revocations",
		Doc:   "A team shares a folder with a restricted subfolder while managers grant, revoke and restrict concurrently with edits, under partitions: rights states converge, entries only go to readers, no version by a writer without the right is applied.",
		Nodes: 20,
		CI:    Size{Ops: 120},
		Shape: func(n int) simulations.Options {
			o := base(n, 2000)
			o.Mix = simulations.Mix{Edit: 30, Delete: 4, Rename: 3, CaseRename: 1, Grant: 4, Revoke: 3, Restrict: 2}
			o.Faults = simulations.Faults{Partitions: true, Loss: 0.05, Dup: 0.05, Reorder: true, SlowPeers: 2, Skew: true}
			return o
		},
	},
	{
		Name:  "lock-contention-partition",
		Doc:   "Editors contend for locks on a few files while five witnesses are partitioned and skewed: never two live grants on a file, fences never reused, the holder's versions survive.",
		Nodes: 9,
		CI:    Size{Ops: 60},
		Shape: func(n int) simulations.Options {
			o := base(n, 600)
			o.Paths = 4
			o.Witnesses = 5
			o.Mix = simulations.Mix{Edit: 6, Lock: 6, Delete: 1}
			o.Faults = simulations.Faults{Partitions: true, Crashes: true, Loss: 0.05, Reorder: true, Skew: true}
			return o
		},
	},
	{
		Name:  "churn-50",
		Doc:   "Fifty devices leave and return (some only at the end, after a long absence) and crash while editing: everyone converges after the heal.",
		Nodes: 50,
		CI:    Size{Ops: 40},
		Shape: func(n int) simulations.Options {
			o := base(n, 2000)
			o.Fanout = 2
			o.Mix = simulations.Mix{Edit: 20, Delete: 3, Rename: 2, Grant: 1, Revoke: 1}
			o.Faults = simulations.Faults{Churn: true, Crashes: true, Loss: 0.02, Reorder: true}
			return o
		},
	},
	{
		Name:  "forged-op-adversary",
		Doc:   "Adversary members (viewers) push escalations, forged signatures, replayed ops and versions they may not write: no forged op is valid and no forged version is applied anywhere.",
		Nodes: 12,
		CI:    Size{Ops: 100},
		Shape: func(n int) simulations.Options {
			o := base(n, 800)
			o.Mix = simulations.Mix{Edit: 10, Delete: 1, Grant: 1, Revoke: 1}
			o.Faults = simulations.Faults{Adversaries: 3, Partitions: true, Loss: 0.05, Reorder: true}
			return o
		},
	},
	{
		Name:  "revoked-writer",
		Doc:   "Adversaries start as editors, are revoked mid-run and keep writing with fresh and back-dated heads: none of their post-revocation versions is applied, concurrent ones are quarantined, never lost.",
		Nodes: 10,
		CI:    Size{Ops: 150},
		Shape: func(n int) simulations.Options {
			o := base(n, 600)
			o.RevokeAdversary = true
			o.Mix = simulations.Mix{Edit: 10, Delete: 1}
			o.Faults = simulations.Faults{Adversaries: 2, Loss: 0.05, Reorder: true}
			return o
		},
		Workload: revokeAdversaries,
	},
	{
		Name:  "invitation-replay",
		Doc:   "Managers hand out one- and two-use invitations to spare devices, one more device than allowed tries each, and an adversary replays used ones: admissions never exceed the use count.",
		Nodes: 14,
		CI:    Size{Ops: 100},
		Shape: func(n int) simulations.Options {
			o := base(n, 600)
			o.Spares = n / 3
			o.Mix = simulations.Mix{Edit: 10, Invite: 3}
			o.Faults = simulations.Faults{Adversaries: 1, Partitions: true, Loss: 0.05, Reorder: true, Skew: true}
			return o
		},
	},
	{
		Name:  "relay-only-blind-relays",
		Doc:   "Members have no direct links and reach each other only through three relays outside the folder that store sealed messages for absent members and forward them, under churn, partitions, loss and reordering: members converge, and no relay is ever handed a byte of a path.",
		Nodes: 15,
		CI:    Size{Ops: 120},
		Shape: func(n int) simulations.Options {
			o := base(n, 600)
			o.Relays = 3
			o.Mix = simulations.Mix{Edit: 12, Delete: 2, Rename: 2, CaseRename: 1, Grant: 1, Revoke: 1, Restrict: 1}
			o.Faults = simulations.Faults{Churn: true, Partitions: true, Loss: 0.05, Dup: 0.05, Reorder: true}
			return o
		},
	},
}

func base(nodes, ops int) simulations.Options {
	return simulations.Options{
		Nodes: nodes, Ops: ops, Paths: 24,
		WorkloadMs: 120_000, QuiesceMs: 300_000, SyncEveryMs: 1_000, Fanout: 3,
	}
}

// revokeAdversaries: the normal workload, and the founder revokes every
// adversary a third of the way in.
func revokeAdversaries(w *simulations.World) {
	w.Workload()
	w.At(w.Opt.WorkloadMs/3, "revoke-adversaries", func() { w.RevokeAdversaries() })
}

// Get finds a scenario by name.
func Get(name string) (Scenario, error) {
	for _, s := range All {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, 0, len(All))
	for _, s := range All {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return Scenario{}, fmt.Errorf("%w %q (have %v)", ErrUnknown, name, names)
}

// Run runs s at size (zero fields: the scenario's defaults) with one seed.
func Run(s Scenario, size Size, seed uint64, hooks simulations.Hooks) (*simulations.Result, error) {
	return RunTraced(s, size, seed, hooks, nil)
}

// RunTraced is Run that also writes every trace line to trace (if not nil):
// the event-by-event story of a failing seed.
func RunTraced(s Scenario, size Size, seed uint64, hooks simulations.Hooks, trace io.Writer) (*simulations.Result, error) {
	nodes := size.Nodes
	if nodes == 0 {
		nodes = s.Nodes
	}
	o := s.Shape(nodes)
	if size.Ops > 0 {
		o.Ops = size.Ops
	}
	o.Scenario, o.Seed = s.Name, seed
	w, err := simulations.NewWorld(o, hooks)
	if err != nil {
		return nil, err
	}
	w.Log = trace
	if s.Workload != nil {
		s.Workload(w)
	} else {
		w.Workload()
	}
	return w.Run(), nil
}
