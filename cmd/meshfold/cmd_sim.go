package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/simulations"
	"github.com/meshfold/meshfold/simulations/scenarios"
)

func init() { registered = append(registered, newSimCommand) }

// simLongSeeds is how many seeds --long runs.
const simLongSeeds = 1000

// errSimFailed: at least one seed broke an invariant.
var errSimFailed = errors.New("simulation found invariant violations")

type simOptions struct {
	scenario string
	nodes    int
	seed     uint64
	seeds    int
	long     bool
	list     bool
	report   string
	trace    string
	ops      int
	ci       bool
	jobs     int
	cpuprof  string
}

// simMaxJobs bounds --jobs (seeds run at once, one goroutine each).
const simMaxJobs = 64

// simGCPercent is the garbage collector target while simulating: a seed's
// heap is small and short-lived, and the default (100) spends about a third
// of the CPU in the collector. GOGC in the environment still wins.
const simGCPercent = 400

func newSimCommand() *cobra.Command {
	var o simOptions
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run deterministic simulations of a folder's devices under faults and check the invariants",
		Long: `sim runs a named scenario from simulations/scenarios on the deterministic tier:
the real rights log and sync planner on simulated devices, network, clock and
disk, all derived from one seed. It prints a summary (convergence time in
simulated seconds, messages and bytes per change, invariant verdicts) and, for
a failing seed, its options and the exact command that replays it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSim(cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.scenario, "scenario", "", "scenario name (see --list)")
	f.IntVar(&o.nodes, "nodes", 0, "devices (0: the scenario's default)")
	f.Uint64Var(&o.seed, "seed", 1, "first seed")
	f.IntVar(&o.seeds, "seeds", 1, "how many consecutive seeds to run")
	f.BoolVar(&o.long, "long", false, fmt.Sprintf("run %d seeds", simLongSeeds))
	f.BoolVar(&o.list, "list", false, "list the scenarios and exit")
	f.StringVar(&o.report, "report", "", "write an SVG report of the first seed (plots of convergence, bytes per device, faults)")
	f.StringVar(&o.trace, "trace", "", "write the first seed's event-by-event trace to this file")
	f.IntVar(&o.ops, "ops", 0, "workload operations (0: the scenario's default)")
	f.BoolVar(&o.ci, "ci", false, "run at the scenario's CI size (the one go test uses), unless --nodes/--ops say otherwise")
	f.IntVar(&o.jobs, "jobs", 1, fmt.Sprintf("seeds to run at once (at most %d); results are reported in seed order", simMaxJobs))
	f.StringVar(&o.cpuprof, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	cmd.AddCommand(newSimRealCommand()) // the real-stack tier, cmd_sim_real.go
	return cmd
}

func runSim(out io.Writer, o simOptions) error {
	if o.list {
		for _, s := range scenarios.All {
			fmt.Fprintf(out, "%-30s %3d devices  %s\n", s.Name, s.Nodes, s.Doc)
		}
		return nil
	}
	s, err := scenarios.Get(o.scenario)
	if err != nil {
		return usageError{err}
	}
	if o.long {
		o.seeds = simLongSeeds
	}
	if o.jobs == 0 {
		o.jobs = 1 // the zero options (tests, callers) run one seed at a time
	}
	if o.seeds < 1 || o.nodes < 0 || o.nodes > simulations.MaxNodes || o.ops < 0 || o.ops > simulations.MaxOps || o.jobs < 1 || o.jobs > simMaxJobs {
		return usageError{fmt.Errorf("--seeds must be at least 1, --nodes at most %d, --ops at most %d, --jobs 1..%d",
			simulations.MaxNodes, simulations.MaxOps, simMaxJobs)}
	}
	size := scenarios.Size{Nodes: o.nodes, Ops: o.ops}
	if o.ci {
		size = s.CI
		if o.nodes > 0 {
			size.Nodes = o.nodes
		}
		if o.ops > 0 {
			size.Ops = o.ops
		}
	}
	nodes := size.Nodes
	if nodes == 0 {
		nodes = s.Nodes
	}
	size.Nodes = nodes
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(simGCPercent))
	}
	replay := fmt.Sprintf("meshfold sim --scenario %s --nodes %d", s.Name, nodes)
	if size.Ops > 0 {
		replay += fmt.Sprintf(" --ops %d", size.Ops)
	}
	if o.cpuprof != "" {
		f, err := os.Create(o.cpuprof)
		if err != nil {
			return fmt.Errorf("sim: cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("sim: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start, cpu0 := time.Now(), cpuTime()
	results := runSeeds(s, size, o)
	var (
		conv         []int64
		changes      int
		msgs, bytes  int64
		failed       []uint64
		byInv        = map[string]int{}
		notConverged int
		conflicts    int
		attacks      int
		firstOpts    string
	)
	for i := 0; i < o.seeds; i++ {
		seed := o.seed + uint64(i)
		res := <-results[i]
		if res.err != nil {
			return res.err
		}
		r := res.r
		if i == 0 {
			firstOpts = r.Options.String()
			if o.report != "" {
				if err := writeSimReport(o.report, r); err != nil {
					return err
				}
			}
		}
		changes += r.Changes
		conflicts += r.Conflicts
		attacks += r.Attacks
		msgs += r.Messages
		bytes += r.Bytes
		if r.Converged {
			conv = append(conv, r.ConvergeMs)
		} else {
			notConverged++
		}
		for _, v := range r.Violations {
			byInv[v.Invariant]++
		}
		if !r.OK() {
			failed = append(failed, seed)
			fmt.Fprintf(out, "FAIL seed %d (trace %x): %d violations\n", seed, r.TraceHash[:8], len(r.Violations))
			for j, v := range r.Violations {
				if j == 10 {
					fmt.Fprintf(out, "  ... %d more\n", len(r.Violations)-10)
					break
				}
				fmt.Fprintf(out, "  %s\n", v)
			}
			fmt.Fprintf(out, "  options:\n    %s\n", strings.ReplaceAll(r.Options.String(), "\n", "\n    "))
			fmt.Fprintf(out, "  replay: %s --seed %d\n", replay, seed)
		} else if o.seeds == 1 {
			fmt.Fprintf(out, "seed %d trace %x\n", seed, r.TraceHash[:8])
		}
	}
	fmt.Fprintf(out, "scenario %s: %d devices, seeds %d..%d\n", s.Name, nodes, o.seed, o.seed+uint64(o.seeds)-1)
	if o.seeds == 1 {
		fmt.Fprintf(out, "options:\n  %s\n", strings.ReplaceAll(firstOpts, "\n", "\n  "))
	}
	if len(conv) > 0 {
		slices.Sort(conv)
		fmt.Fprintf(out, "convergence after heal: p50 %.1f s, p99 %.1f s, max %.1f s (simulated); %d seeds did not converge\n",
			float64(conv[len(conv)/2])/1000, float64(conv[(len(conv)*99)/100])/1000, float64(conv[len(conv)-1])/1000, notConverged)
	} else {
		fmt.Fprintf(out, "convergence after heal: none of %d seeds converged\n", o.seeds)
	}
	if changes > 0 {
		fmt.Fprintf(out, "per change: %.1f messages, %.0f bytes (%d changes, %d messages, %d bytes)\n",
			float64(msgs)/float64(changes), float64(bytes)/float64(changes), changes, msgs, bytes)
	}
	fmt.Fprintf(out, "conflict copies made: %d; adversary attacks (forged ops and versions): %d\n", conflicts, attacks)
	wall, cpu := time.Since(start).Seconds(), cpuTime()-cpu0
	fmt.Fprintf(out, "time: %.1f s wall, %.1f CPU-s (%.2f CPU-s per seed, %d at once)\n", wall, cpu, cpu/float64(o.seeds), o.jobs)
	for _, inv := range []string{"convergence", "lost-version", "forged-op", "forged-version", "privacy", "relay-privacy", "lock", "invite", "equivocation", "store", "harness"} {
		verdict := "ok"
		if byInv[inv] > 0 {
			verdict = fmt.Sprintf("VIOLATED %d times", byInv[inv])
		}
		fmt.Fprintf(out, "  %-15s %s\n", inv, verdict)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %d of %d seeds (first: %d)", errSimFailed, len(failed), o.seeds, failed[0])
	}
	return nil
}

type seedResult struct {
	r   *simulations.Result
	err error
}

// runSeeds starts the seeds on o.jobs workers (each world is one goroutine
// with no shared state); the i-th channel delivers seed o.seed+i's result
// once.
func runSeeds(s scenarios.Scenario, size scenarios.Size, o simOptions) []chan seedResult {
	out := make([]chan seedResult, o.seeds)
	for i := range out {
		out[i] = make(chan seedResult, 1)
	}
	next := make(chan int)
	go func() {
		for i := 0; i < o.seeds; i++ {
			next <- i
		}
		close(next)
	}()
	for j := 0; j < o.jobs; j++ {
		go func() {
			for i := range next {
				out[i] <- runSeed(s, size, o, i)
			}
		}()
	}
	return out
}

func runSeed(s scenarios.Scenario, size scenarios.Size, o simOptions, i int) seedResult {
	var trace io.Writer
	var traceFile *os.File
	if i == 0 && o.trace != "" {
		f, err := os.Create(o.trace)
		if err != nil {
			return seedResult{err: fmt.Errorf("trace: %w", err)}
		}
		traceFile, trace = f, f
	}
	r, err := scenarios.RunTraced(s, size, o.seed+uint64(i), simulations.Hooks{}, trace)
	if traceFile != nil {
		if cerr := traceFile.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("trace: %w", cerr)
		}
	}
	if err != nil {
		return seedResult{err: usageError{err}}
	}
	return seedResult{r: r}
}

func writeSimReport(path string, r *simulations.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := simulations.WriteSVG(f, r); err != nil {
		f.Close()
		return fmt.Errorf("report: %w", err)
	}
	return f.Close()
}
