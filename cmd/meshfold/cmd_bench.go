package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/trace"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/store"
)

func init() { registered = append(registered, newBenchCommand) }

// The scan benchmark's data sets and targets.
const (
	benchBigFiles      = 4       // the large set is this many random files
	benchSmallFileSize = 4 << 10 // bytes per file of the small set
	benchSmallPerDir   = 100     // small files per directory
	benchWriteBlock    = 4 << 20 // bytes generated and written at once
	benchChunkBufBytes = 64 << 20
	benchChunkRounds   = 3
	// benchRescans is how many more warm rescans each warm child runs after
	// its first, in the same process: what a running daemon's periodic
	// full rescan costs (its first rescan is what a daemon's start-up scan
	// costs).
	benchRescans        = 3
	targetColdGBps      = 2.0  // cold scan of the large set, on 2 cores
	targetWarmColdRatio = 0.10 // warm rescan / cold scan time, small set
	targetChunkVsBLAKE3 = 0.35 // chunk+hash / BLAKE3 alone, one core
	benchFolderID       = "bench"
	benchDevice         = store.DeviceID("bench")
	// benchChildEnv is set in the environment of the phase child processes.
	benchChildEnv = "MESHFOLD_BENCH_CHILD"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure meshfold's speed against baselines measured in the same run",
	}
	cmd.AddCommand(newBenchScanCommand(), newBenchScanPhaseCommand(), newBenchSyncCommand(), newBenchSyncNodeCommand())
	return cmd
}

type benchScanOptions struct {
	dir        string
	sizeGiB    float64
	smallFiles int
	workers    int
	runs       int
}

func newBenchScanCommand() *cobra.Command {
	var opts benchScanOptions
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Cold scan and warm rescan of a large and a many-small-files data set, plus chunking vs BLAKE3",
		Long: `bench scan writes two data sets under a temporary directory (by default
1 GiB in 4 random files, and 10,000 files of 4 KiB), reads them once to warm
the page cache, then runs cold scans (new index) and warm rescans (nothing changed) of
each in child processes, alternately (each warm rescan rescans the index the
cold scan before it built), reporting the median time, throughput and the
children's peak RSS, and the warm/cold ratio of each pair of runs. Each warm
child rescans a few more times in the same process: its first rescan is what
a daemon's start-up scan costs ("warm"), the later ones what its periodic
full rescan costs ("rescan"). It also measures chunk+hash against BLAKE3 alone on one
core and, as a core check, how much more BLAKE3 work two goroutines get done
than one (2.00x = two free cores; a cold scan cannot use more), and prints a
verdict line per target.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchScan(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.dir, "dir", "", "directory to create the data sets in (default: the system temp dir)")
	cmd.Flags().Float64Var(&opts.sizeGiB, "size-gib", 1, "size of the large data set in GiB")
	cmd.Flags().IntVar(&opts.smallFiles, "small-files", 10_000, "number of 4 KiB files in the small data set")
	cmd.Flags().IntVar(&opts.runs, "runs", 5, "cold/warm run pairs; times are the median")
	cmd.Flags().IntVar(&opts.workers, "workers", 0, "hashing goroutines (default: one per CPU)")
	return cmd
}

// phaseReport is what a scan-phase child prints.
type phaseReport struct {
	Seconds     float64 `json:"seconds"`
	BytesHashed int64   `json:"bytes_hashed"`
	New         int     `json:"new"`
	Unchanged   int     `json:"unchanged"`
	Errors      int     `json:"errors"`
	// ScanCPUSeconds is the child's own CPU time (user + system) during the
	// scan alone: process start and opening the index excluded.
	ScanCPUSeconds float64 `json:"scan_cpu_seconds"`
	// Rescans are the scans the child ran after its first, in the same
	// process (phaseOptions.rescans).
	Rescans    []phaseReport `json:"rescans,omitempty"`
	MaxRSS     int64         `json:"-"` // filled by the parent from the child's rusage
	CPUSeconds float64       `json:"-"` // user + system time of the whole child process

	minSeconds, maxSeconds float64 // spread over the runs, set by medianPhase
	scanCPU                float64 // median ScanCPUSeconds over the runs, set by medianPhase
}

type phaseOptions struct {
	root, home string
	workers    int
	rescans    int // more scans after the first, in the same process
	// trace, if set, is where the child writes an execution trace of its
	// scan (go tool trace), to look at how the scan's goroutines share
	// the cores.
	trace string
}

// newBenchScanPhaseCommand is the hidden child of `bench scan`: one scan in
// a process of its own, so its peak RSS is its own.
func newBenchScanPhaseCommand() *cobra.Command {
	var opts phaseOptions
	cmd := &cobra.Command{
		Use:    "scan-phase",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScanPhase(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.root, "root", "", "folder to scan")
	cmd.Flags().StringVar(&opts.home, "home", "", "index directory")
	cmd.Flags().IntVar(&opts.workers, "workers", 0, "hashing goroutines")
	cmd.Flags().StringVar(&opts.trace, "trace", "", "write an execution trace of the scan to this file")
	cmd.Flags().IntVar(&opts.rescans, "rescans", 0, "scans to run after the first, in the same process")
	return cmd
}

func runScanPhase(ctx context.Context, opts phaseOptions, out io.Writer) error {
	db, err := store.Open(opts.home)
	if err != nil {
		return err
	}
	defer db.Close()
	if opts.trace != "" {
		stop, err := startTrace(opts.trace)
		if err != nil {
			return err
		}
		defer stop()
	}
	scan := func() (phaseReport, error) {
		cpu0 := selfCPU()
		res, err := store.Scan(ctx, store.ScanConfig{Root: opts.root, Device: benchDevice, Workers: opts.workers}, db.Folder(benchFolderID))
		if err != nil {
			return phaseReport{}, err
		}
		return phaseReport{
			Seconds: res.Duration.Seconds(), BytesHashed: res.BytesHashed,
			New: res.New, Unchanged: res.Unchanged, Errors: len(res.Errors),
			ScanCPUSeconds: selfCPU() - cpu0,
		}, nil
	}
	r, err := scan()
	if err != nil {
		return err
	}
	for range opts.rescans {
		again, err := scan()
		if err != nil {
			return err
		}
		r.Rescans = append(r.Rescans, again)
	}
	return json.NewEncoder(out).Encode(r)
}

// startTrace starts an execution trace into file name; stop ends it.
func startTrace(name string) (stop func(), err error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("creating the trace file: %w", err)
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting the trace: %w", err)
	}
	return func() { trace.Stop(); f.Close() }, nil
}

// benchSet is one data set.
type benchSet struct {
	name  string
	root  string
	bytes int64
	files int
	dirs  int
}

func runBenchScan(ctx context.Context, opts benchScanOptions, out io.Writer) error {
	if opts.sizeGiB <= 0 || opts.smallFiles <= 0 || opts.runs <= 0 {
		return usageError{errors.New("--size-gib, --small-files and --runs must be positive")}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding own executable for the phase processes: %w", err)
	}
	base, err := os.MkdirTemp(opts.dir, "meshfold-bench-")
	if err != nil {
		return fmt.Errorf("creating the bench directory: %w", err)
	}
	defer os.RemoveAll(base)

	fmt.Fprintf(out, "meshfold bench scan: %s %s/%s, GOMAXPROCS=%d, NumCPU=%d\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(out, "data sets under %s (removed at the end)\n\n", base)

	bigSize := int64(opts.sizeGiB * (1 << 30))
	big, err := makeBigSet(ctx, filepath.Join(base, "big"), bigSize)
	if err != nil {
		return err
	}
	small, err := makeSmallSet(ctx, filepath.Join(base, "small"), opts.smallFiles)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "%-26s %-6s %10s %12s %10s %10s %9s %9s\n", "data set", "phase", "time", "throughput", "peak RSS", "hashed", "CPU", "scan CPU")
	results := map[string][3]phaseReport{}
	for i, set := range []benchSet{big, small} {
		if err := warmPageCache(set.root); err != nil {
			return err
		}
		// Cold and warm runs alternate (each warm run rescans the index the
		// cold run before it built), so a change in the machine's load
		// between runs hits both phases alike.
		// The warm child rescans benchRescans more times in the same
		// process ("rescan": the median of those).
		var runs [3][]phaseReport
		for run := range opts.runs {
			home := filepath.Join(base, fmt.Sprintf("home-%d-%d", i, run))
			for p, phase := range []string{"cold", "warm"} {
				rescans := 0
				if phase == "warm" {
					rescans = benchRescans
				}
				r, err := runPhase(ctx, self, phaseOptions{root: set.root, home: home, workers: opts.workers, rescans: rescans})
				if err != nil {
					return fmt.Errorf("%s %s scan: %w", set.name, phase, err)
				}
				runs[p] = append(runs[p], r)
			}
			warm := runs[1][run]
			if len(warm.Rescans) != benchRescans {
				return fmt.Errorf("%s: the warm child ran %d rescans, want %d", set.name, len(warm.Rescans), benchRescans)
			}
			again := medianPhase(warm.Rescans)
			again.MaxRSS, again.CPUSeconds = warm.MaxRSS, warm.CPUSeconds
			runs[2] = append(runs[2], again)
		}
		var phases [3]phaseReport
		for p, phase := range []string{"cold", "warm", "rescan"} {
			r := medianPhase(runs[p])
			phases[p] = r
			fmt.Fprintf(out, "%-26s %-6s %9.3fs %7.2f GB/s %6.1f MiB %10s %8.3fs %8.4fs  (%.3f-%.3fs over %d runs)\n", set.name, phase, r.Seconds,
				float64(set.bytes)/1e9/r.Seconds, float64(r.MaxRSS)/(1<<20), humanBytes(r.BytesHashed), r.CPUSeconds,
				r.scanCPU, r.minSeconds, r.maxSeconds, len(runs[p]))
		}
		for p, phase := range []string{"warm", "rescan"} {
			pairs := make([]float64, opts.runs)
			for run := range opts.runs {
				pairs[run] = runs[p+1][run].Seconds / runs[0][run].Seconds
			}
			slices.Sort(pairs)
			fmt.Fprintf(out, "%-26s %s/cold of each run pair: %s\n", "", phase, percents(pairs))
		}
		for _, r := range runs[1] {
			for _, w := range append([]phaseReport{r}, r.Rescans...) {
				if w.Unchanged != set.files+set.dirs || w.BytesHashed != 0 || w.Errors != 0 {
					return fmt.Errorf("%s: a warm rescan did not find the data set unchanged: %+v", set.name, w)
				}
			}
		}
		if phases[0].New != set.files+set.dirs || phases[0].Errors != 0 {
			return fmt.Errorf("%s: the cold scan did not see the data set as expected: %+v", set.name, phases[0])
		}
		results[set.name] = phases
	}

	buf := make([]byte, benchChunkBufBytes)
	fillRandom(rand.NewChaCha8([32]byte{'c', 'h', 'u', 'n', 'k'}), buf)
	chunkMBps, blakeMBps := store.MeasureChunkThroughput(buf, benchChunkRounds)
	chunkRatio := chunkMBps / blakeMBps
	fmt.Fprintf(out, "\nsingle core: chunk+hash %.0f MB/s, BLAKE3 alone %.0f MB/s (%d MiB random buffer, best of %d)\n",
		chunkMBps, blakeMBps, benchChunkBufBytes>>20, benchChunkRounds)
	speedup, one, two := measureCoreScaling(buf)
	fmt.Fprintf(out, "core check: BLAKE3 of %d MiB on one goroutine %.0f ms, two buffers on two goroutines at once %.0f ms: %.2fx the work per second (2.00 = two free cores)\n\n",
		benchChunkBufBytes>>20, 1e3*one.Seconds(), 1e3*two.Seconds(), speedup)

	bigCold := results[big.name][0]
	coldGBps := float64(big.bytes) / 1e9 / bigCold.Seconds
	fmt.Fprintf(out, "time = scan time inside the child; CPU = user+system time of the whole child process; scan CPU = the child's during the scan (median).\n")
	fmt.Fprintf(out, "warm = the first rescan in a new process; rescan = the median of %d more in that process (CPU and RSS: of the whole warm child).\n", benchRescans)
	fmt.Fprintf(out, "cold scan of %s used %.2f CPU-s: %.2f GB per CPU-second (over %.0f%% of a core on average during the scan).\n\n",
		big.name, bigCold.CPUSeconds, float64(big.bytes)/1e9/bigCold.CPUSeconds, 100*bigCold.CPUSeconds/bigCold.Seconds)
	sm := results[small.name]
	ratio, again := sm[1].Seconds/sm[0].Seconds, sm[2].Seconds/sm[0].Seconds
	verdict(out, coldGBps >= targetColdGBps, "cold scan of %s: %.2f GB/s (target >= %.0f GB/s on 2 cores; this run: GOMAXPROCS=%d)",
		big.name, coldGBps, targetColdGBps, runtime.GOMAXPROCS(0))
	verdict(out, ratio < targetWarmColdRatio, "warm rescan of %s: %.1f%% of the cold scan time (target < %.0f%%), in a new process (a daemon's start-up scan)",
		small.name, 100*ratio, 100*targetWarmColdRatio)
	verdict(out, again < targetWarmColdRatio, "warm rescan of %s: %.1f%% of the cold scan time (target < %.0f%%), in a process that scanned before (a daemon's periodic rescan)",
		small.name, 100*again, 100*targetWarmColdRatio)
	verdict(out, chunkRatio >= targetChunkVsBLAKE3, "chunk+hash vs BLAKE3 alone, one core: %.1f%% (target >= %.0f%%)",
		100*chunkRatio, 100*targetChunkVsBLAKE3)
	return nil
}

// percents formats ratios as percentages.
func percents(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.1f%%", 100*r)
	}
	return strings.Join(parts, ", ")
}

// medianPhase is the run with the median scan time; its peak RSS is the
// highest of all runs, and minSeconds/maxSeconds show the spread.
func medianPhase(runs []phaseReport) phaseReport {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b phaseReport) int { return cmp.Compare(a.Seconds, b.Seconds) })
	m := sorted[len(sorted)/2]
	m.minSeconds, m.maxSeconds = sorted[0].Seconds, sorted[len(sorted)-1].Seconds
	cpus := make([]float64, len(runs))
	for i, r := range runs {
		m.MaxRSS = max(m.MaxRSS, r.MaxRSS)
		cpus[i] = r.ScanCPUSeconds
	}
	slices.Sort(cpus)
	m.scanCPU = cpus[len(cpus)/2]
	return m
}

func verdict(out io.Writer, pass bool, format string, args ...any) {
	v := "FAIL"
	if pass {
		v = "PASS"
	}
	fmt.Fprintf(out, "verdict: %s %s\n", v, fmt.Sprintf(format, args...))
}

// runPhase runs one scan in a child process and returns its report with
// the child's peak RSS.
func runPhase(ctx context.Context, self string, opts phaseOptions) (phaseReport, error) {
	args := []string{"bench", "scan-phase", "--root", opts.root, "--home", opts.home, "--rescans", fmt.Sprint(opts.rescans)}
	if opts.workers > 0 {
		args = append(args, "--workers", fmt.Sprint(opts.workers))
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return phaseReport{}, fmt.Errorf("phase process: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var r phaseReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return phaseReport{}, fmt.Errorf("phase process output %q: %w", stdout.String(), err)
	}
	r.Seconds = max(r.Seconds, 1e-9)
	r.CPUSeconds, r.MaxRSS = childUsage(cmd.ProcessState)
	return r, nil
}

func fillRandom(r *rand.ChaCha8, buf []byte) {
	_, _ = r.Read(buf) // never fails
}

// makeBigSet writes benchBigFiles random files totalling size bytes.
func makeBigSet(ctx context.Context, dir string, size int64) (benchSet, error) {
	set := benchSet{name: fmt.Sprintf("%s in %d files", humanBytes(size), benchBigFiles), root: dir, files: benchBigFiles}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return set, err
	}
	rng := rand.NewChaCha8([32]byte{'b', 'i', 'g'})
	buf := make([]byte, benchWriteBlock)
	per := size / benchBigFiles
	for i := range benchBigFiles {
		n := per
		if i == benchBigFiles-1 {
			n = size - per*(benchBigFiles-1)
		}
		if err := writeRandomFile(ctx, filepath.Join(dir, fmt.Sprintf("big-%d.bin", i)), n, rng, buf); err != nil {
			return set, err
		}
		set.bytes += n
	}
	return set, nil
}

func writeRandomFile(ctx context.Context, name string, n int64, rng *rand.ChaCha8, buf []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	for n > 0 {
		if err := ctx.Err(); err != nil {
			f.Close()
			return err
		}
		b := buf[:min(int64(len(buf)), n)]
		fillRandom(rng, b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		n -= int64(len(b))
	}
	return f.Close()
}

// makeSmallSet writes count random files of benchSmallFileSize bytes,
// benchSmallPerDir to a directory.
func makeSmallSet(ctx context.Context, dir string, count int) (benchSet, error) {
	set := benchSet{name: fmt.Sprintf("%d files of %s", count, humanBytes(benchSmallFileSize)), root: dir, files: count,
		dirs: (count + benchSmallPerDir - 1) / benchSmallPerDir}
	rng := rand.NewChaCha8([32]byte{'s', 'm', 'a', 'l', 'l'})
	buf := make([]byte, benchSmallFileSize)
	for i := range count {
		if i%1000 == 0 {
			if err := ctx.Err(); err != nil {
				return set, err
			}
		}
		sub := filepath.Join(dir, fmt.Sprintf("d%04d", i/benchSmallPerDir))
		if i%benchSmallPerDir == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return set, err
			}
		}
		fillRandom(rng, buf)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d", i)), buf, 0o644); err != nil {
			return set, err
		}
		set.bytes += benchSmallFileSize
	}
	return set, nil
}

// warmPageCache reads every file under root once, so the cold scan measures
// hashing and indexing rather than the disk.
func warmPageCache(root string) error {
	buf := make([]byte, 1<<20)
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(io.Discard, f, buf)
		return err
	})
}
