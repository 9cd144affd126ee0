package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/simulations/realstack"
)

// simRealOptions are the flags of `meshfold sim real`.
type simRealOptions struct {
	opts       realstack.Options
	logFile    string
	cpuProfile string
}

// newSimRealCommand is `meshfold sim real`, the real-stack tier; cmd_sim.go
// adds it under `sim`.
func newSimRealCommand() *cobra.Command {
	var o simRealOptions
	cmd := &cobra.Command{
		Use:   "real",
		Short: "Run real meshfold nodes in one process on an in-memory network and check they converge",
		Long: `sim real runs the real-stack tier: --nodes real nodes (each with its own
home, goleveldb index and folder on disk) on an in-memory libp2p network
(mocknet), one founder, editors and one viewer, all joined through the real
invitation handshake. It makes --changes seeded file changes (creates, edits,
deletes, renames, the same file edited on several devices at once, the
viewer's forbidden edits) while a few devices have slow links, the network is
split in two halves from 30% to 70% of the changes, and one device is down
from 45% to 60% (its disk still changes). Then it waits for convergence and
checks: every editor's tree is identical, the viewer holds that tree plus only
its own unshared changes, no version an editor wrote and nobody superseded is
lost (conflict copies count), and none of the viewer's changes reached anyone.

It prints wall time, convergence time, peak RSS, goroutines at the peak and
bytes moved. Thread scheduling differs between runs of one seed: the seed fixes
the workload's choices and the faults, and the invariants must hold whatever
the interleaving. The exit status is non-zero when an invariant is broken.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSimReal(cmd, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.opts.Nodes, "nodes", 10, fmt.Sprintf("devices (%d to %d): a founder, editors and one viewer", realstack.MinNodes, realstack.MaxNodes))
	f.IntVar(&o.opts.Changes, "changes", 100, "file changes to make")
	f.Uint64Var(&o.opts.Seed, "seed", 1, "seed of the workload and the faults")
	f.DurationVar(&o.opts.Interval, "interval", realstack.DefaultInterval, "pause between two changes")
	f.DurationVar(&o.opts.Heartbeat, "heartbeat", realstack.DefaultHeartbeat, "how often nodes republish their state")
	f.DurationVar(&o.opts.ConvergeTimeout, "timeout", realstack.DefaultConvergeTimeout, "how long to wait for convergence after the last change")
	f.BoolVar(&o.opts.NoPartition, "no-partition", false, "do not split the network")
	f.BoolVar(&o.opts.NoRestart, "no-restart", false, "do not restart a device")
	f.BoolVar(&o.opts.NoSlow, "no-slow", false, "no slow links")
	f.StringVar(&o.opts.Dir, "dir", "", "keep the devices' homes and folders here (default: a temporary directory, removed)")
	f.StringVar(&o.logFile, "log", "", "write the nodes' logs (info and above) to this file")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}

func runSimReal(cmd *cobra.Command, o simRealOptions) error {
	out := cmd.OutOrStdout()
	if o.logFile != "" {
		lf, err := os.Create(o.logFile)
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		defer lf.Close()
		o.opts.Logger = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	r, err := realstack.Run(cmd.Context(), o.opts)
	if err != nil {
		return usageOrRun(err)
	}
	printSimReal(out, r)
	if !r.OK() {
		fmt.Fprintf(out, "replay: meshfold sim real --nodes %d --changes %d --seed %d\n", r.Options.Nodes, r.Options.Changes, r.Options.Seed)
		return fmt.Errorf("%w: %d violations", errSimFailed, len(r.Violations))
	}
	return nil
}

func usageOrRun(err error) error {
	if errors.Is(err, realstack.ErrBadOptions) {
		return usageError{err}
	}
	return err
}

func printSimReal(out io.Writer, r *realstack.Result) {
	o := r.Options
	fmt.Fprintf(out, "real-stack: %d nodes on mocknet, %d changes, seed %d\n", o.Nodes, r.Changes, o.Seed)
	kinds := make([]string, 0, len(r.ByKind))
	for k, n := range r.ByKind {
		if n != 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	slices.Sort(kinds)
	fmt.Fprintf(out, "  changes:      %s\n", strings.Join(kinds, ", "))
	fmt.Fprintf(out, "  faults:       slow links on %v; partition side %v; restarted device %d; viewer device %d\n", r.Slow, r.Partitioned, r.Restarted, r.Viewer)
	fmt.Fprintf(out, "  wall time:    %s (set-up and joins %s, changes %s, convergence %s)\n",
		r.Wall.Round(time.Millisecond), r.Setup.Round(time.Millisecond), r.Workload.Round(time.Millisecond), r.Converge.Round(time.Millisecond))
	if r.EditorsConverge >= 0 {
		fmt.Fprintf(out, "  editors converged %s after the last change (the viewer aside)\n", r.EditorsConverge.Round(time.Millisecond))
	} else {
		fmt.Fprintln(out, "  editors never converged")
	}
	rss := "unknown"
	if r.PeakRSS > 0 {
		rss = fmt.Sprintf("%.0f MiB", float64(r.PeakRSS)/(1<<20))
	}
	fmt.Fprintf(out, "  peak RSS:     %s; goroutines at peak: %d\n", rss, r.PeakGoroutines)
	fmt.Fprintf(out, "  bytes moved:  %.1f MiB sent, %.1f MiB received (streams of every node)\n", float64(r.BytesOut)/(1<<20), float64(r.BytesIn)/(1<<20))
	protos := make([]string, 0, len(r.BytesByProto))
	for p := range r.BytesByProto {
		protos = append(protos, p)
	}
	slices.SortFunc(protos, func(a, b string) int { return int(r.BytesByProto[b] - r.BytesByProto[a]) })
	for _, p := range protos {
		fmt.Fprintf(out, "    %-28s %8.1f MiB received\n", p, float64(r.BytesByProto[p])/(1<<20))
	}
	fmt.Fprintf(out, "  final tree:   %d files, %d conflict copies; %d spare copies of shared versions on the viewer\n", r.Files, r.Conflicts, r.ViewerSpares)
	if r.OK() {
		fmt.Fprintln(out, "  invariants:   converged, no version lost, nothing unauthorized applied")
		return
	}
	fmt.Fprintf(out, "  invariants:   BROKEN (converged: %v)\n", r.Converged)
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(out, "    ... %d more\n", len(r.Violations)-20)
			break
		}
		fmt.Fprintf(out, "    %s\n", v)
	}
}
