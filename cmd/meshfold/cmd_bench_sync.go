package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node"
	"github.com/meshfold/meshfold/store"
)

// The sync benchmark's data sets, targets and timings.
const (
	benchEditFileSize      = 256 << 20 // the file edited in cases (c) and (d)
	benchOverwriteSize     = 1 << 20   // bytes overwritten in the middle in (d)
	targetSyncBigVsRsync   = 1.5       // (a) time / rsync time
	targetSyncSmallVsRsync = 3.0       // (b) time / rsync time
	targetInsertWire       = 1 << 20   // (c) bytes on the wire, below
	targetOverwriteWire    = 1.6e6     // (d) bytes on the wire, below
	targetNodeRSS          = 100 << 20 // peak RSS of each node process, below
	benchSyncTimeout       = 15 * time.Minute
	benchSyncPoll          = 10 * time.Millisecond
	benchSenderPoll        = 200 * time.Millisecond
	benchSyncHeartbeat     = time.Second
	benchStreamProtocol    = "/meshfold/bench/stream/1.0.0"
	benchStreamBlock       = 1 << 20
	// benchWireSettle is longer than the 1 s sweep after which libp2p's
	// bandwidth counter (go-flow-metrics) shows bytes in its totals.
	benchWireSettle = 1500 * time.Millisecond
	// benchProfileEnv, set to a directory, makes each sync-node child write
	// a CPU profile there.
	benchProfileEnv = "MESHFOLD_BENCH_CPUPROFILE"
	// benchHeapProfileEnv, set to a directory, makes each sync-node child
	// write a heap profile there whenever its peak RSS has grown by
	// benchHeapProfileStep, so the last one written shows the heap at (about)
	// the peak, with the runtime's memory figures beside it.
	benchHeapProfileEnv = "MESHFOLD_BENCH_HEAPPROFILE"
	// benchTraceEnv, set to a directory, makes each sync-node child write an
	// execution trace there (go tool trace): where the pipeline idles.
	benchTraceEnv        = "MESHFOLD_BENCH_TRACE"
	benchHeapProfileStep = 4 << 20
	benchHeapProfileTick = 50 * time.Millisecond
)

type benchSyncOptions struct {
	dir        string
	sizeGiB    float64
	smallFiles int
	editMiB    int
	runs       int
	seed       uint8
}

func newBenchSyncCommand() *cobra.Command {
	var opts benchSyncOptions
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync between two local nodes on loopback, against rsync and a raw libp2p stream",
		Long: `bench sync syncs, between two meshfold nodes on loopback (each in a child
process of its own, so peak RSS is per node): (a) 1 GiB in 4 files, (b) 10,000
files of 4 KiB, and after a first sync of a 256 MiB file, (c) a 1-byte
insertion at its start and (d) 1 MiB overwritten in its middle. It prints time,
MB/s, bytes on the wire and peak RSS of each node, and measures in the same run
rsync -a between two local folders (followed by sync) on the same data and the
raw throughput of one libp2p stream between two hosts, then prints the ratios
and a verdict per target. rsync is installed with apt-get if missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchSync(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.dir, "dir", "", "directory to create the data sets in (default: the system temp dir)")
	cmd.Flags().Float64Var(&opts.sizeGiB, "size-gib", 1, "size of data set (a) in GiB")
	cmd.Flags().IntVar(&opts.smallFiles, "small-files", 10_000, "number of 4 KiB files in data set (b)")
	cmd.Flags().IntVar(&opts.editMiB, "edit-mib", benchEditFileSize>>20, "size of the edited file of (c) and (d) in MiB")
	cmd.Flags().IntVar(&opts.runs, "runs", 3, "runs of each case; times are the median")
	cmd.Flags().Uint8Var(&opts.seed, "seed", 0, "seed of the edited file's content and of the overwrites of (d): another seed puts the edits elsewhere relative to chunk boundaries")
	return cmd
}

// syncEvent is one JSON line of a sync-node child.
type syncEvent struct {
	Event   string  `json:"event"` // "ready", "synced", "done"
	Addr    string  `json:"addr,omitempty"`
	Digest  string  `json:"digest,omitempty"`
	Entries int     `json:"entries,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
	In      int64   `json:"in,omitempty"`
	Out     int64   `json:"out,omitempty"`
	PeakRSS int64   `json:"peak_rss,omitempty"` // bytes, 0 when the OS does not tell
	CPU     float64 `json:"cpu,omitempty"`      // CPU-seconds (user + system) of the process so far, 0 when the OS does not tell
}

type syncNodeOptions struct {
	home, folder, role, peer, target string
}

// newBenchSyncNodeCommand is the hidden child of `bench sync`: one node in a
// process of its own. The sender says "ready" (with its address and index
// digest) once every local version is signed; the receiver says "synced" once
// its index digest equals --target and nothing is left to apply. Both print
// "done" with their bytes on the wire when their stdin closes.
func newBenchSyncNodeCommand() *cobra.Command {
	var opts syncNodeOptions
	cmd := &cobra.Command{
		Use:    "sync-node",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSyncNode(cmd.Context(), opts, os.Stdin, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.home, "home", "", "node home")
	cmd.Flags().StringVar(&opts.folder, "folder", "", "folder ID")
	cmd.Flags().StringVar(&opts.role, "role", "", "sender or receiver")
	cmd.Flags().StringVar(&opts.peer, "peer", "", "multiaddr of the sender (receiver only)")
	cmd.Flags().StringVar(&opts.target, "target", "", "index digest to reach (receiver only)")
	return cmd
}

func runSyncNode(ctx context.Context, opts syncNodeOptions, stdin io.Reader, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	start := time.Now()
	if dir := os.Getenv(benchProfileEnv); dir != "" {
		pf, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", opts.role, os.Getpid())))
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if dir := os.Getenv(benchHeapProfileEnv); dir != "" {
		stop := heapAtPeak(filepath.Join(dir, fmt.Sprintf("%s-%d", opts.role, os.Getpid())))
		defer stop()
	}
	if dir := os.Getenv(benchTraceEnv); dir != "" {
		tf, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.trace", opts.role, os.Getpid())))
		if err != nil {
			return err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return err
		}
		defer trace.Stop()
	}
	cfg := node.Config{
		Home:        opts.home,
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Heartbeat:   benchSyncHeartbeat,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("role", opts.role),
	}
	if opts.peer != "" {
		ai, err := peer.AddrInfoFromString(opts.peer)
		if err != nil {
			return usageError{fmt.Errorf("--peer: %w", err)}
		}
		cfg.Bootstrap = []peer.AddrInfo{*ai}
	}
	n, err := node.Open(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		return err
	}
	f, ok := n.Folder(opts.folder)
	if !ok {
		return fmt.Errorf("folder %s is not in %s", opts.folder, opts.home)
	}
	ctx, cancel := context.WithTimeout(ctx, benchSyncTimeout)
	defer cancel()
	closed := make(chan struct{})
	go func() { io.Copy(io.Discard, stdin); close(closed) }()
	enc := json.NewEncoder(out)
	self := store.DeviceID(n.ID())
	poll := benchSyncPoll
	if opts.role == "sender" {
		poll = benchSenderPoll // untimed: keep the digest's garbage out of its peak RSS
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for reported := false; !reported; {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (status %+v)", opts.role, ctx.Err(), f.Status())
		case <-closed:
			return errors.New("stdin closed before the node was ready")
		case <-tick.C:
		}
		st := f.Status()
		if st.State != "idle" || st.Candidates > 0 {
			continue
		}
		d, err := indexDigest(f.Index(), self)
		if err != nil {
			return err
		}
		switch {
		case opts.role == "sender" && d.unsigned == 0 && d.entries > 0:
			addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
			if err != nil || len(addrs) == 0 {
				return fmt.Errorf("sender address: %v", err)
			}
			err = enc.Encode(syncEvent{Event: "ready", Addr: addrs[0].String(), Digest: d.sum, Entries: d.entries, CPU: selfCPU()})
			if err != nil {
				return err
			}
			reported = true
		case opts.role == "receiver" && d.sum == opts.target:
			if err := enc.Encode(syncEvent{Event: "synced", Entries: d.entries, Seconds: time.Since(start).Seconds(), CPU: selfCPU()}); err != nil {
				return err
			}
			reported = true
		}
	}
	select {
	case <-closed:
	case <-ctx.Done():
		return ctx.Err()
	}
	// The bandwidth counter publishes its totals once per sweep: wait for one
	// that comes after the sync.
	time.Sleep(benchWireSettle)
	in, wout := n.BytesOnWire()
	return enc.Encode(syncEvent{Event: "done", In: in, Out: wout, PeakRSS: selfPeakRSS(), CPU: selfCPU()})
}

type digest struct {
	sum      string
	entries  int // live entries
	unsigned int // versions by self without a signature
}

// indexDigest hashes what the index says the tree is: path, kind, size,
// symlink target and chunk list of every live entry, in path order.
func indexDigest(idx *store.FolderIndex, self store.DeviceID) (digest, error) {
	var d digest
	h := sha256.New()
	err := idx.Walk("", func(fi store.FileInfo) error {
		if fi.Author == self && len(fi.Signature) == 0 {
			d.unsigned++
		}
		if fi.Deleted {
			return nil
		}
		d.entries++
		fmt.Fprintf(h, "%q %d %d %q", fi.Path, fi.Kind, fi.Size, fi.SymlinkTarget)
		for _, c := range fi.Chunks {
			h.Write(c.CID.Bytes())
		}
		h.Write([]byte{'\n'})
		return nil
	})
	d.sum = hex.EncodeToString(h.Sum(nil))
	return d, err
}

// syncPair is the two node homes of one sync, prepared in process.
type syncPair struct {
	homeA, homeB string
	folder       string
	deviceA      store.DeviceID
	src, dst     string
}

// prepareSync creates node A's folder of src, shares it with node B in dst
// (ops handed over out of band, as the invitation handshake will), closes
// both, and brings A's index up to date with src, so the timed sync starts
// from a scanned sender.
func prepareSync(ctx context.Context, work, src string) (syncPair, error) {
	p := syncPair{homeA: filepath.Join(work, "home-a"), homeB: filepath.Join(work, "home-b"), src: src, dst: filepath.Join(work, "dst")}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(home string) (*node.Node, error) {
		n, err := node.Open(node.Config{Home: home, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet})
		if err == nil {
			if err = n.Start(ctx); err != nil {
				n.Close()
			}
		}
		return n, err
	}
	a, err := open(p.homeA)
	if err != nil {
		return p, err
	}
	defer a.Close()
	b, err := open(p.homeB)
	if err != nil {
		return p, err
	}
	defer b.Close()
	p.deviceA = store.DeviceID(a.ID())
	fa, err := a.CreateFolder(src, "bench")
	if err != nil {
		return p, err
	}
	p.folder = fa.ID()
	if _, err := fa.AppendOp(crdt.Grant{Principal: crdt.UserPrincipal(b.User()), Role: crdt.RoleEditor}); err != nil {
		return p, err
	}
	fb, err := b.JoinFolder(p.dst, fa.Ops())
	if err != nil {
		return p, err
	}
	cert, err := b.DeviceCert()
	if err != nil {
		return p, err
	}
	if _, err := fb.AppendOp(crdt.AddDevice{Cert: cert}); err != nil {
		return p, err
	}
	if _, err := fa.MergeOps(fb.Ops()); err != nil {
		return p, err
	}
	if err := errors.Join(b.Close(), a.Close()); err != nil {
		return p, err
	}
	return p, p.scanSender(ctx)
}

// scanSender records src's current content in node A's index (A is stopped).
func (p syncPair) scanSender(ctx context.Context) error {
	db, err := store.Open(filepath.Join(p.homeA, "index"))
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := store.Scan(ctx, store.ScanConfig{Root: p.src, Device: p.deviceA}, db.Folder(p.folder))
	if err == nil && len(res.Errors) > 0 {
		err = fmt.Errorf("scanning %s: %v", p.src, res.Errors[0])
	}
	return err
}

// syncResult is one timed sync.
type syncResult struct {
	Seconds    float64
	InA, OutA  int64
	InB, OutB  int64
	RSSA, RSSB int64
	// CPUA is the sender's CPU-seconds from "ready" to the end (serving the
	// sync), CPUB the receiver's from its start to "synced".
	CPUA, CPUB   float64
	min, max     float64 // spread over the runs, set by medianSync
	runs         int
	wireReceiver int64 // receiver's in + out
}

// syncChild is a running sync-node child.
type syncChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr bytes.Buffer
}

func startSyncChild(ctx context.Context, self string, args ...string) (*syncChild, error) {
	c := &syncChild{cmd: exec.CommandContext(ctx, self, append([]string{"bench", "sync-node"}, args...)...)}
	c.cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.lines = bufio.NewScanner(stdout)
	return c, c.cmd.Start()
}

// next reads the child's next event, which must be want.
func (c *syncChild) next(want string) (syncEvent, error) {
	var ev syncEvent
	if !c.lines.Scan() {
		c.cmd.Wait()
		return ev, fmt.Errorf("sync-node exited before %q: %v: %s", want, c.lines.Err(), bytes.TrimSpace(c.stderr.Bytes()))
	}
	if err := json.Unmarshal(c.lines.Bytes(), &ev); err != nil || ev.Event != want {
		return ev, fmt.Errorf("sync-node said %q, want %q (%v)", c.lines.Text(), want, err)
	}
	return ev, nil
}

// finish reads the counters of a child whose stdin was closed and waits for
// it. Its peak RSS is the one it reported itself (VmHWM, which starts afresh
// at exec) or else its rusage (which on Linux may include the parent's
// footprint at fork).
func (c *syncChild) finish() (done syncEvent, maxRSS int64, err error) {
	c.stdin.Close()
	done, err = c.next("done")
	if werr := c.cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("sync-node: %w: %s", werr, bytes.TrimSpace(c.stderr.Bytes()))
	}
	maxRSS = done.PeakRSS
	if maxRSS == 0 && c.cmd.ProcessState != nil {
		_, maxRSS = childUsage(c.cmd.ProcessState)
	}
	return done, maxRSS, err
}

// syncOnce starts A's child, waits for it to be ready, then starts B's and
// times from B's start until B's index matches A's.
func syncOnce(ctx context.Context, self string, p syncPair) (syncResult, error) {
	var r syncResult
	a, err := startSyncChild(ctx, self, "--home", p.homeA, "--folder", p.folder, "--role", "sender")
	if err != nil {
		return r, err
	}
	defer a.cmd.Process.Kill() // no-op once it exited
	ready, err := a.next("ready")
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	b, err := startSyncChild(ctx, self, "--home", p.homeB, "--folder", p.folder, "--role", "receiver",
		"--peer", ready.Addr, "--target", ready.Digest)
	if err != nil {
		return r, err
	}
	defer b.cmd.Process.Kill()
	synced, err := b.next("synced")
	if err != nil {
		return r, err
	}
	r.Seconds = max(time.Since(t0).Seconds(), 1e-9)
	a.stdin.Close() // both settle their counters at once
	doneB, rssB, err := b.finish()
	if err != nil {
		return r, err
	}
	doneA, rssA, err := a.finish()
	if err != nil {
		return r, err
	}
	r.InA, r.OutA, r.RSSA = doneA.In, doneA.Out, rssA
	r.InB, r.OutB, r.RSSB = doneB.In, doneB.Out, rssB
	r.CPUA, r.CPUB = doneA.CPU-ready.CPU, synced.CPU
	r.wireReceiver = r.InB + r.OutB
	return r, nil
}

func medianSync(runs []syncResult) syncResult {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b syncResult) int { return cmp.Compare(a.Seconds, b.Seconds) })
	m := sorted[len(sorted)/2]
	m.min, m.max, m.runs = sorted[0].Seconds, sorted[len(sorted)-1].Seconds, len(runs)
	for _, r := range runs {
		m.RSSA, m.RSSB = max(m.RSSA, r.RSSA), max(m.RSSB, r.RSSB)
	}
	return m
}

// sameTree returns an error naming the first difference between the files
// under a and b (the folder marker directory aside).
func sameTree(a, b string) error {
	seen := 0
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		if rel == store.MarkerName {
			return filepath.SkipDir
		}
		seen++
		st, err := os.Lstat(filepath.Join(b, rel))
		if err != nil {
			return err
		}
		if d.IsDir() != st.IsDir() {
			return fmt.Errorf("%s: kind differs", rel)
		}
		if d.IsDir() {
			return nil
		}
		return sameFile(p, filepath.Join(b, rel))
	})
	if err != nil {
		return err
	}
	count := 0
	err = filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == store.MarkerName {
			return filepath.SkipDir
		}
		count++
		return err
	})
	if err == nil && count != seen {
		err = fmt.Errorf("%s has %d entries, %s has %d", b, count, a, seen)
	}
	return err
}

func sameFile(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return err
	}
	defer fb.Close()
	ba, bb := make([]byte, benchStreamBlock), make([]byte, benchStreamBlock)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return fmt.Errorf("%s and %s differ", a, b)
		}
		if ea != nil || eb != nil {
			if errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF) {
				return nil
			}
			return cmp.Or(ea, eb)
		}
	}
}

// ensureRsync finds rsync, installing it with apt-get when missing.
func ensureRsync(out io.Writer) (string, error) {
	if p, err := exec.LookPath("rsync"); err == nil {
		return p, nil
	}
	fmt.Fprintln(out, "rsync not found: installing it with apt-get")
	if msg, err := exec.Command("apt-get", "install", "-y", "rsync").CombinedOutput(); err != nil {
		return "", fmt.Errorf("installing rsync: %w: %s", err, bytes.TrimSpace(msg))
	}
	return exec.LookPath("rsync")
}

// timeRsync times `rsync -a src/ dst/` followed by sync.
func timeRsync(ctx context.Context, rsync, src, dst string) (float64, error) {
	t0 := time.Now()
	args := []string{"-a", "--exclude", "/" + store.MarkerName, src + "/", dst + "/"}
	if msg, err := exec.CommandContext(ctx, rsync, args...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("rsync: %w: %s", err, bytes.TrimSpace(msg))
	}
	if msg, err := exec.CommandContext(ctx, "sync").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("sync: %w: %s", err, bytes.TrimSpace(msg))
	}
	return max(time.Since(t0).Seconds(), 1e-9), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// streamThroughput sends size bytes over one libp2p stream between two hosts
// on loopback (same transports and security as a node) and returns MB/s.
func streamThroughput(ctx context.Context, size int64) (float64, error) {
	keyA, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return 0, err
	}
	keyB, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return 0, err
	}
	loop := []string{"/ip4/127.0.0.1/tcp/0"}
	ha, err := node.NewHost(node.HostConfig{Key: keyA, ListenAddrs: loop})
	if err != nil {
		return 0, err
	}
	defer ha.Close()
	hb, err := node.NewHost(node.HostConfig{Key: keyB, ListenAddrs: loop})
	if err != nil {
		return 0, err
	}
	defer hb.Close()
	hb.SetStreamHandler(benchStreamProtocol, func(s network.Stream) {
		defer s.Close()
		if _, err := io.CopyBuffer(io.Discard, s, make([]byte, benchStreamBlock)); err == nil {
			s.Write([]byte{1})
		}
	})
	if err := ha.Connect(ctx, peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}); err != nil {
		return 0, err
	}
	t0 := time.Now()
	s, err := ha.NewStream(ctx, hb.ID(), benchStreamProtocol)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	buf := make([]byte, benchStreamBlock)
	fillRandom(rand.NewChaCha8([32]byte{'s', 't', 'r', 'e', 'a', 'm'}), buf)
	for left := size; left > 0; left -= int64(len(buf)) {
		if _, err := s.Write(buf[:min(int64(len(buf)), left)]); err != nil {
			return 0, err
		}
	}
	if err := s.CloseWrite(); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		return 0, fmt.Errorf("stream acknowledgement: %w", err)
	}
	return float64(size) / 1e6 / time.Since(t0).Seconds(), nil
}

// syncCase is one measured case: meshfold's median run and rsync's median time.
type syncCase struct {
	name  string
	bytes int64
	sync  syncResult
	rsync float64
}

func runBenchSync(ctx context.Context, opts benchSyncOptions, out io.Writer) error {
	if opts.sizeGiB <= 0 || opts.smallFiles <= 0 || opts.editMiB <= 0 || opts.runs <= 0 {
		return usageError{errors.New("--size-gib, --small-files, --edit-mib and --runs must be positive")}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding own executable for the node processes: %w", err)
	}
	rsync, err := ensureRsync(out)
	if err != nil {
		return err
	}
	base, err := os.MkdirTemp(opts.dir, "meshfold-bench-sync-")
	if err != nil {
		return fmt.Errorf("creating the bench directory: %w", err)
	}
	defer os.RemoveAll(base)
	fmt.Fprintf(out, "meshfold bench sync: %s %s/%s, GOMAXPROCS=%d, NumCPU=%d, %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), rsync)
	fmt.Fprintf(out, "data sets under %s (removed at the end); two nodes on loopback TCP, each in its own process\n\n", base)

	big, err := makeBigSet(ctx, filepath.Join(base, "big"), int64(opts.sizeGiB*(1<<30)))
	if err != nil {
		return err
	}
	small, err := makeSmallSet(ctx, filepath.Join(base, "small"), opts.smallFiles)
	if err != nil {
		return err
	}
	editDir := filepath.Join(base, "edit")
	editFile := filepath.Join(editDir, "edit.bin")
	editSize := int64(opts.editMiB) << 20
	if err := os.MkdirAll(editDir, 0o755); err != nil {
		return err
	}
	if err := writeRandomFile(ctx, editFile, editSize, rand.NewChaCha8([32]byte{'e', 'd', 'i', 't', 31: opts.seed}), make([]byte, benchWriteBlock)); err != nil {
		return err
	}

	fmt.Fprintf(out, "%-34s %9s %10s %11s %21s %10s %10s\n", "case", "time", "MB/s", "wire (B)", "A in/out", "RSS A", "RSS B")
	var cases []syncCase
	show := func(c syncCase) {
		r := c.sync
		fmt.Fprintf(out, "%-34s %8.3fs %10.1f %11s %21s %6.1f MiB %6.1f MiB  (%.3f-%.3fs over %d runs)\n",
			c.name, r.Seconds, float64(c.bytes)/1e6/r.Seconds, humanBytes(r.wireReceiver),
			humanBytes(r.InA)+"/"+humanBytes(r.OutA), float64(r.RSSA)/(1<<20), float64(r.RSSB)/(1<<20), r.min, r.max, r.runs)
		fmt.Fprintf(out, "%-34s %8.3fs %10.1f   -> meshfold/rsync time %.2fx\n", "  rsync -a + sync", c.rsync, float64(c.bytes)/1e6/c.rsync, r.Seconds/c.rsync)
		if r.CPUA > 0 || r.CPUB > 0 {
			fmt.Fprintf(out, "%-34s CPU-s of the median run: sender %.2f (from ready), receiver %.2f (from its start)\n", "", r.CPUA, r.CPUB)
		}
	}
	for _, set := range []benchSet{big, small} {
		if err := warmPageCache(set.root); err != nil {
			return err
		}
		var runs []syncResult
		var rs []float64
		for range opts.runs {
			work, err := os.MkdirTemp(base, "run-")
			if err != nil {
				return err
			}
			p, err := prepareSync(ctx, work, set.root)
			if err != nil {
				return fmt.Errorf("%s: preparing the nodes: %w", set.name, err)
			}
			r, err := syncOnce(ctx, self, p)
			if err != nil {
				return fmt.Errorf("%s: %w", set.name, err)
			}
			if err := sameTree(set.root, p.dst); err != nil {
				return fmt.Errorf("%s: after sync: %w", set.name, err)
			}
			runs = append(runs, r)
			if err := os.RemoveAll(work); err != nil {
				return err
			}
			dst := filepath.Join(base, "rsync-dst")
			t, err := timeRsync(ctx, rsync, set.root, dst)
			if err != nil {
				return err
			}
			rs = append(rs, t)
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
		}
		c := syncCase{name: set.name, bytes: set.bytes, sync: medianSync(runs), rsync: median(rs)}
		show(c)
		cases = append(cases, c)
	}

	// (c) and (d): a first sync of the edited file, then the edits, each
	// synced by restarted nodes (the sender rescanned while stopped).
	p, err := prepareSync(ctx, filepath.Join(base, "edit-work"), editDir)
	if err != nil {
		return fmt.Errorf("edited file: preparing the nodes: %w", err)
	}
	first, err := syncOnce(ctx, self, p)
	if err != nil {
		return fmt.Errorf("edited file, first sync: %w", err)
	}
	if err := sameTree(editDir, p.dst); err != nil {
		return fmt.Errorf("edited file, first sync: %w", err)
	}
	rsyncDst := filepath.Join(base, "edit-rsync")
	firstRsync, err := timeRsync(ctx, rsync, editDir, rsyncDst)
	if err != nil {
		return err
	}
	show(syncCase{name: fmt.Sprintf("first sync of a %s file", humanBytes(editSize)), bytes: editSize, sync: medianSync([]syncResult{first}), rsync: firstRsync})
	edits := []struct {
		name  string
		apply func(run int) error
	}{
		{"1-byte insertion at the start", func(run int) error { return insertAtStart(editFile, filepath.Join(base, "edit.tmp"), byte(run)) }},
		{humanBytes(benchOverwriteSize) + " overwritten in the middle", func(run int) error { return overwriteMiddle(editFile, run, opts.seed) }},
	}
	editRuns := make([][]syncResult, len(edits))
	editRsync := make([][]float64, len(edits))
	for run := range opts.runs {
		for i, e := range edits {
			if err := e.apply(run); err != nil {
				return err
			}
			if err := p.scanSender(ctx); err != nil {
				return err
			}
			r, err := syncOnce(ctx, self, p)
			if err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
			if err := sameTree(editDir, p.dst); err != nil {
				return fmt.Errorf("%s: after sync: %w", e.name, err)
			}
			editRuns[i] = append(editRuns[i], r)
			t, err := timeRsync(ctx, rsync, editDir, rsyncDst)
			if err != nil {
				return err
			}
			editRsync[i] = append(editRsync[i], t)
		}
	}
	var maxWire [2]int64
	for i, e := range edits {
		c := syncCase{name: e.name, bytes: editSize, sync: medianSync(editRuns[i]), rsync: median(editRsync[i])}
		show(c)
		cases = append(cases, c)
		var each []string
		for _, r := range editRuns[i] {
			maxWire[i] = max(maxWire[i], r.wireReceiver)
			each = append(each, humanBytes(r.wireReceiver))
		}
		fmt.Fprintf(out, "%-34s wire (B) per run: %s (edits differ run to run, so do chunk boundaries)\n", "", strings.Join(each, ", "))
	}

	var streams []float64
	for range opts.runs {
		mbps, err := streamThroughput(ctx, big.bytes)
		if err != nil {
			return fmt.Errorf("raw libp2p stream: %w", err)
		}
		streams = append(streams, mbps)
	}
	stream := median(streams)
	bigMBps := float64(big.bytes) / 1e6 / cases[0].sync.Seconds
	fmt.Fprintf(out, "\nraw libp2p stream between two hosts on loopback (TCP, in one process): %.1f MB/s for %s (median of %d)\n",
		stream, humanBytes(big.bytes), len(streams))
	fmt.Fprintf(out, "meshfold %s: %.1f MB/s = %.2fx the raw stream\n", big.name, bigMBps, bigMBps/stream)
	fmt.Fprintf(out, "time: from starting the receiving node's process until its index matches the sender's (every file durable);\n")
	fmt.Fprintf(out, "wire (B): bytes the receiving node sent + received in that time, pubsub and log/index sync included.\n\n")

	var rss int64
	for _, c := range append(cases, syncCase{sync: first}) {
		rss = max(rss, c.sync.RSSA, c.sync.RSSB)
	}
	a, b := cases[0], cases[1]
	verdict(out, a.sync.Seconds <= targetSyncBigVsRsync*a.rsync, "%s: %.2fx rsync's time (target <= %.1fx)", a.name, a.sync.Seconds/a.rsync, targetSyncBigVsRsync)
	verdict(out, b.sync.Seconds <= targetSyncSmallVsRsync*b.rsync, "%s: %.2fx rsync's time (target <= %.1fx), every file fsynced before it is recorded", b.name, b.sync.Seconds/b.rsync, targetSyncSmallVsRsync)
	verdict(out, maxWire[0] < targetInsertWire, "1-byte insertion at the start of %s: %s on the wire, worst of %d runs (target < %s)", humanBytes(editSize), humanBytes(maxWire[0]), opts.runs, humanBytes(targetInsertWire))
	verdict(out, float64(maxWire[1]) < targetOverwriteWire, "%s overwritten in the middle: %.2f MB on the wire, worst of %d runs (target < %.1f MB)", humanBytes(benchOverwriteSize), float64(maxWire[1])/1e6, opts.runs, targetOverwriteWire/1e6)
	verdict(out, rss < targetNodeRSS, "peak RSS per node: %.1f MiB at most (target < %d MiB)", float64(rss)/(1<<20), targetNodeRSS>>20)
	return nil
}

// insertAtStart writes b followed by name's content to tmp and renames tmp
// over name.
func insertAtStart(name, tmp string, b byte) error {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = out.Write([]byte{b})
	if err == nil {
		_, err = io.CopyBuffer(out, in, make([]byte, benchWriteBlock))
	}
	if err = errors.Join(err, out.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// overwriteMiddle replaces benchOverwriteSize bytes in the middle of name
// with new random bytes (from run and seed).
func overwriteMiddle(name string, run int, seed uint8) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	buf := make([]byte, min(benchOverwriteSize, st.Size()))
	fillRandom(rand.NewChaCha8([32]byte{'o', 'v', 'e', 'r', byte(run), 31: seed}), buf)
	_, err = f.WriteAt(buf, (st.Size()-int64(len(buf)))/2)
	return errors.Join(err, f.Close())
}

// selfPeakRSS is this process's peak resident set (VmHWM) in bytes, 0 where
// /proc does not say.
func selfPeakRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// heapAtPeak writes base+".heap.pprof" (and base+".memstats.txt") each time
// this process's peak RSS has grown by benchHeapProfileStep, until stop is
// called. Errors end the sampling silently: it is a diagnostic aid.
func heapAtPeak(base string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var last int64
		t := time.NewTicker(benchHeapProfileTick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			peak := selfPeakRSS()
			if peak < last+benchHeapProfileStep {
				continue
			}
			last = peak
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			f, err := os.Create(base + ".heap.pprof")
			if err != nil {
				return
			}
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
			os.WriteFile(base+".memstats.txt", fmt.Appendf(nil,
				"VmHWM %d MiB\nHeapInuse %d MiB\nHeapIdle-HeapReleased %d MiB\nStackInuse %d MiB\nSys %d MiB\nNextGC %d MiB\nNumGC %d\n",
				peak>>20, ms.HeapInuse>>20, (ms.HeapIdle-ms.HeapReleased)>>20, ms.StackInuse>>20, ms.Sys>>20, ms.NextGC>>20, ms.NumGC), 0o644)
		}
	}()
	return func() { close(done); <-finished }
}
