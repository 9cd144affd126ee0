package realstack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Limits and defaults of a real-stack run.
const (
	MinNodes = 3 // a founder, an editor, a viewer
	MaxNodes = 500
	// MaxChanges bounds one run's workload.
	MaxChanges = 100_000
	// DefaultInterval is the pause between two changes of the workload.
	DefaultInterval = 10 * time.Millisecond
	// DefaultHeartbeat is the nodes' state republication period: shorter
	// than the product's (node.DefaultHeartbeat) so a run ends sooner.
	DefaultHeartbeat = 2 * time.Second
	// DefaultLatency is every link's one-way latency.
	DefaultLatency = time.Millisecond
	// SlowLatency and SlowBandwidth are a slow peer's links.
	SlowLatency   = 40 * time.Millisecond
	SlowBandwidth = 256 << 10 // bytes per second
	// DefaultConvergeTimeout bounds the wait for convergence after the
	// workload.
	DefaultConvergeTimeout = 5 * time.Minute
	// JoinConcurrency is how many devices join through the founder at once.
	JoinConcurrency = 8
	// InitialFiles is how many files the founder's folder holds before
	// anyone joins.
	InitialFiles = 20
	// dialsPerNode is how many peers each node dials at start and after a
	// heal, the way discovery would (every node can reach every other; the
	// rest connect on demand).
	dialsPerNode = 4
	// pollInterval is how often the convergence condition is checked, per
	// pollNodes devices: reading every tree took 20% of the CPU of a
	// 30-device run at one poll per 500 ms.
	pollInterval = 500 * time.Millisecond
	pollNodes    = 10
	// sampleInterval is how often goroutines are counted.
	sampleInterval = 100 * time.Millisecond
)

// ErrBadOptions: options out of range.
var ErrBadOptions = errors.New("bad real-stack simulation options")

// Options is one run. Zero values take the defaults.
type Options struct {
	Nodes   int    // devices, founder and one viewer included
	Changes int    // file changes of the workload (a concurrent edit counts once per device)
	Seed    uint64 // derives the workload, the slow peers, the partition and the restarted node

	Interval        time.Duration // between two changes; 0: DefaultInterval
	Heartbeat       time.Duration // 0: DefaultHeartbeat
	Latency         time.Duration // 0: DefaultLatency
	ConvergeTimeout time.Duration // 0: DefaultConvergeTimeout

	NoPartition bool // no partition and heal
	NoRestart   bool // no node restart
	NoSlow      bool // no slow peers

	Dir    string       // where homes and folders go; "" is a temporary directory removed after the run
	Logger *slog.Logger // the nodes' logs; nil discards them
}

func (o *Options) fill() error {
	if o.Nodes < MinNodes || o.Nodes > MaxNodes {
		return fmt.Errorf("%w: nodes must be %d to %d, not %d", ErrBadOptions, MinNodes, MaxNodes, o.Nodes)
	}
	if o.Changes < 1 || o.Changes > MaxChanges {
		return fmt.Errorf("%w: changes must be 1 to %d, not %d", ErrBadOptions, MaxChanges, o.Changes)
	}
	if o.Interval < 0 || o.Heartbeat < 0 || o.Latency < 0 || o.ConvergeTimeout < 0 {
		return fmt.Errorf("%w: durations may not be negative", ErrBadOptions)
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Latency == 0 {
		o.Latency = DefaultLatency
	}
	if o.ConvergeTimeout == 0 {
		o.ConvergeTimeout = DefaultConvergeTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}
