package simulations

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Limits of the harness. Scenarios stay inside them.
const (
	MaxNodes       = 200              // devices in one run
	MaxOps         = 100_000          // workload operations in one run
	MaxSkewMs      = 24 * 3600 * 1000 // clock skew bound: +/- 24 h
	epochMs        = 1_767_225_600_000
	scanDelayMaxMs = 2_000 // a user write waits at most this long for the scanner
	applyDelayMs   = 200   // a device plans at most once per this window
)

// Mix weighs the workload's operation kinds. Zero weights switch a kind off.
type Mix struct {
	Edit, Delete, Rename, CaseRename int // file changes by honest devices
	Grant, Revoke, Restrict          int // rights changes by managers
	Lock                             int // lock request, edits under the lock, release
	Invite                           int // an invitation used by a spare device (and replayed)
}

func (m Mix) total() int {
	return m.Edit + m.Delete + m.Rename + m.CaseRename + m.Grant + m.Revoke + m.Restrict + m.Lock + m.Invite
}

// Faults switches the nemeses on. Magnitudes are derived from the seed.
type Faults struct {
	Partitions  bool    // random halves, isolate one, bridge; healed in between
	Churn       bool    // devices leave and come back, some after a long absence
	Crashes     bool    // crash and restart; un-fsynced writes are lost
	Loss        float64 // upper bound of the message loss probability
	Dup         float64 // upper bound of the duplication probability
	Reorder     bool    // jittered latency, so messages overtake each other
	SlowPeers   int     // devices with ten times the latency
	Skew        bool    // per-device clock offsets up to +/- 24 h
	Adversaries int     // devices sending forged ops and unauthorized versions
}

// Options is one run's configuration: the scenario's shape with the
// seed-derived magnitudes filled in. String prints all of it.
type Options struct {
	Scenario string
	Seed     uint64
	Nodes    int // devices, adversaries and spare (invitable) ones included
	Spares   int // devices that start outside the folder and may be invited
	Relays   int // devices outside the folder that relay sealed messages; > 0: members have no direct links
	Ops      int
	Paths    int // distinct file names the workload uses
	Mix      Mix
	Faults   Faults

	WorkloadMs      int64 // the workload runs in [0, WorkloadMs)
	QuiesceMs       int64 // after heal: the convergence deadline
	SyncEveryMs     int64 // each device's sync tick
	Fanout          int   // peers asked per tick
	LatencyMs       int64
	JitterMs        int64
	LossP, DupP     float64
	Witnesses       int  // lock witnesses (0: no locks)
	RevokeAdversary bool // adversaries start as editors (not viewers); a scenario revokes them
}

// derive fills the magnitudes of o from r.
func (o *Options) derive(r *rand.Rand) {
	if o.Faults.Reorder || o.Faults.Loss > 0 {
		o.JitterMs = 20 + r.Int64N(400)
	}
	o.LatencyMs = 5 + r.Int64N(100)
	if o.Faults.Loss > 0 {
		o.LossP = r.Float64() * o.Faults.Loss
	}
	if o.Faults.Dup > 0 {
		o.DupP = r.Float64() * o.Faults.Dup
	}
}

// String lists every option, one per line (printed with a failure).
func (o Options) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario=%s seed=%d nodes=%d spares=%d relays=%d ops=%d paths=%d\n", o.Scenario, o.Seed, o.Nodes, o.Spares, o.Relays, o.Ops, o.Paths)
	fmt.Fprintf(&b, "mix=%+v\n", o.Mix)
	fmt.Fprintf(&b, "faults=%+v\n", o.Faults)
	fmt.Fprintf(&b, "workload=%dms quiesce=%dms sync-every=%dms fanout=%d latency=%dms jitter=%dms loss=%.4f dup=%.4f witnesses=%d",
		o.WorkloadMs, o.QuiesceMs, o.SyncEveryMs, o.Fanout, o.LatencyMs, o.JitterMs, o.LossP, o.DupP, o.Witnesses)
	return b.String()
}
