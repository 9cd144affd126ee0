package realstack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node"
	"github.com/meshfold/meshfold/protocol/join"
)

// Result is what one run did and found.
type Result struct {
	Options Options

	Wall     time.Duration // the whole run: set-up, workload, convergence
	Setup    time.Duration // starting the nodes and every join
	Workload time.Duration // making the changes (nemeses included)
	Converge time.Duration // from the last change to convergence (or the timeout)
	// EditorsConverge is from the last change to the first poll where every
	// editor's tree was the same and nothing was left to apply (-1: never).
	EditorsConverge time.Duration

	PeakRSS        uint64 // bytes, the process's high-water mark (VmHWM); 0 if unknown
	PeakGoroutines int
	BytesIn        int64 // every node's received stream bytes
	BytesOut       int64
	BytesByProto   map[string]int64 // received bytes per protocol

	Changes   int            // changes made on disk
	ByKind    map[string]int // changes by kind
	Conflicts int            // conflict copies in the final tree
	// ViewerSpares are conflict copies on the viewer that hold a shared
	// version rather than its own change: harmless duplicates, reported.
	ViewerSpares int
	Files        int   // files in the final tree
	Slow         []int // devices with slow links
	Partitioned  []int // one side of the partition
	Restarted    int   // the device restarted from its home (-1: none)
	Viewer       int   // the viewer device

	Converged  bool
	Violations []string
}

// OK: converged and no invariant broken.
func (r *Result) OK() bool { return r.Converged && len(r.Violations) == 0 }

// write is a version a device wrote.
type write struct {
	node, change int
	path         string
}

// ledger is what the workload did, for the invariants.
type ledger struct {
	written    map[contentHash]write // by editors
	superseded map[contentHash]bool  // versions an editor edited over or deleted
	byViewer   map[contentHash]bool  // versions the viewer wrote (may not spread)
	// versions of the viewer's that the viewer itself edited over or deleted
	viewerSuperseded map[contentHash]bool
}

// Run builds opts.Nodes real nodes on a mocknet, shares one folder through
// the real invitation handshake, runs the seeded workload with its nemeses,
// waits for convergence and checks the invariants. An error means the run
// could not be carried out; a broken invariant is in Result.Violations.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	r := &Result{Options: opts, ByKind: map[string]int{}, Restarted: -1}
	start := time.Now()
	dir := opts.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "meshfold-realstack-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var peakG atomic.Int64
	stopSampling := sampleGoroutines(&peakG)
	defer stopSampling()

	rng := rand.New(rand.NewChaCha8(seedBytes(opts.Seed)))
	link := mocknet.LinkOptions{Latency: opts.Latency}
	slow := mocknet.LinkOptions{Latency: SlowLatency, Bandwidth: SlowBandwidth}
	c := newCluster(dir, opts.Nodes, link, slow, opts.Heartbeat, opts.Logger)
	defer c.close()

	s := &sim{c: c, rng: rng, opts: opts, r: r, led: &ledger{written: map[contentHash]write{}, superseded: map[contentHash]bool{}, byViewer: map[contentHash]bool{}, viewerSuperseded: map[contentHash]bool{}}}
	r.Viewer = opts.Nodes - 1
	c.members[r.Viewer].viewer = true
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	r.Setup = time.Since(start)
	wStart := time.Now()
	if err := s.workload(ctx); err != nil {
		return nil, err
	}
	r.Workload = time.Since(wStart)
	cStart := time.Now()
	r.EditorsConverge = -1
	v := s.waitConverged(ctx, func() {
		if r.EditorsConverge < 0 {
			r.EditorsConverge = time.Since(cStart)
		}
	})
	r.Converge = time.Since(cStart)
	r.Wall = time.Since(start)
	r.Converged, r.Violations, r.Conflicts, r.Files, r.ViewerSpares = v.converged, v.violations, v.conflicts, v.files, v.viewerSpares
	r.BytesIn, r.BytesOut = c.bytes()
	r.BytesByProto = c.proto.snapshot()
	r.PeakGoroutines = int(peakG.Load())
	r.PeakRSS = peakRSS()
	return r, nil
}

type sim struct {
	c    *cluster
	rng  *rand.Rand
	opts Options
	r    *Result
	led  *ledger
	fid  string
	seq  int // names of new files
}

func seedBytes(seed uint64) [32]byte {
	var b [32]byte
	for i := range 4 {
		v := seed + uint64(i)*0x9e3779b97f4a7c15
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// setup starts every node, makes the founder's folder with a few files, and
// has every other device join it through the real invitation handshake: the
// editors with one multi-use invitation, the viewer with its own.
func (s *sim) setup(ctx context.Context) error {
	c := s.c
	if !s.opts.NoSlow {
		for _, i := range s.pickDistinct(max(1, s.opts.Nodes/10), 1) {
			c.slow[i] = true // links made from now on are slow
			s.r.Slow = append(s.r.Slow, i)
		}
		slices.Sort(s.r.Slow)
	}
	for _, m := range c.members {
		if err := c.start(m, nil); err != nil {
			return err
		}
	}
	for _, m := range c.members {
		for range dialsPerNode {
			o := c.members[s.rng.IntN(len(c.members))]
			if o != m {
				if err := m.n.Host().Connect(ctx, o.n.AddrInfo()); err != nil {
					return fmt.Errorf("connecting %s to %s: %w", m.name, o.name, err)
				}
			}
		}
	}
	founder := c.members[0]
	if err := os.MkdirAll(founder.root, 0o755); err != nil {
		return err
	}
	for range InitialFiles {
		p, data := s.newFile(0)
		if err := s.writeFile(founder, p, data); err != nil {
			return err
		}
		s.led.written[hashOf(data)] = write{node: 0, change: -1, path: p}
	}
	f, err := founder.n.CreateFolder(founder.root, "realstack")
	if err != nil {
		return err
	}
	s.fid = f.ID()
	editors := len(c.members) - 2
	edKey, err := founder.n.Invite(s.fid, node.InviteOptions{Role: crdt.RoleEditor, Uses: uint32(editors)})
	if err != nil {
		return err
	}
	viewKey, err := founder.n.Invite(s.fid, node.InviteOptions{Role: crdt.RoleViewer})
	if err != nil {
		return err
	}
	sem := make(chan struct{}, JoinConcurrency)
	var wg sync.WaitGroup
	errs := make([]error, len(c.members))
	for _, m := range c.members[1:] {
		key := edKey
		if m.viewer {
			key = viewKey
		}
		parsed, err := join.ParseKey(key.String())
		if err != nil {
			return err
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := m.n.Join(ctx, parsed, m.root); err != nil {
				errs[m.i] = fmt.Errorf("%s joining: %w", m.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pickDistinct picks k distinct devices, none below from.
func (s *sim) pickDistinct(k, from int) []int {
	all := make([]int, 0, s.opts.Nodes)
	for i := from; i < s.opts.Nodes-1; i++ { // never the viewer
		all = append(all, i)
	}
	s.rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return all[:min(k, len(all))]
}

// workload makes opts.Changes changes on the devices' disks, paced by
// opts.Interval, with the nemeses at fixed points of it: a partition into two
// halves from 30% to 70% of the changes, a device down from 45% to 60% (its
// disk still changes: offline edits), and slow peers throughout.
func (s *sim) workload(ctx context.Context) error {
	n := s.opts.Changes
	partAt, healAt := n*3/10, n*7/10
	downAt, upAt := n*45/100, n*60/100
	var down *member
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	for k := 0; k < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !s.opts.NoPartition && k >= partAt && s.r.Partitioned == nil {
			side := map[int]bool{}
			for _, i := range s.pickDistinct(s.opts.Nodes/2, 0) {
				side[i] = true
				s.r.Partitioned = append(s.r.Partitioned, i)
			}
			slices.Sort(s.r.Partitioned)
			if err := s.c.partition(side); err != nil {
				return fmt.Errorf("partition: %w", err)
			}
		}
		if !s.opts.NoPartition && k >= healAt && s.r.Partitioned != nil && len(s.c.cut) > 0 {
			if err := s.c.heal(s.rng.IntN, dialsPerNode); err != nil {
				return fmt.Errorf("heal: %w", err)
			}
		}
		if !s.opts.NoRestart && k >= downAt && down == nil && s.r.Restarted < 0 {
			down = s.c.members[s.pickDistinct(1, 1)[0]]
			s.r.Restarted = down.i
			if err := s.c.stop(down); err != nil {
				return fmt.Errorf("stopping %s: %w", down.name, err)
			}
		}
		if down != nil && k >= upAt {
			if err := s.c.start(down, s.bootstrapFor(down)); err != nil {
				return fmt.Errorf("restarting: %w", err)
			}
			down = nil
		}
		made, err := s.change(k)
		if err != nil {
			return err
		}
		k += made
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if down != nil {
		return s.c.start(down, s.bootstrapFor(down))
	}
	return nil
}

// bootstrapFor is a few running devices for a restarted one to dial (besides
// its address book), as discovery would find them.
func (s *sim) bootstrapFor(m *member) []peer.AddrInfo {
	var out []peer.AddrInfo
	for range dialsPerNode {
		o := s.c.members[s.rng.IntN(len(s.c.members))]
		if o != m && o.n != nil {
			out = append(out, o.n.AddrInfo())
		}
	}
	return out
}

// change makes one seeded change on some device's disk and returns how many
// changes that was (a concurrent edit is one per device).
func (s *sim) change(k int) (int, error) {
	c := s.c
	roll := s.rng.IntN(100)
	if roll < 4 {
		return s.viewerChange(k)
	}
	m := c.members[s.rng.IntN(len(c.members)-1)] // an editor or the founder
	files, err := s.files(m)
	if err != nil {
		return 0, err
	}
	if len(files) == 0 || roll < 35 {
		p, data := s.newFile(k)
		return 1, s.record(m, "create", k, p, data, nil)
	}
	p := files[s.rng.IntN(len(files))]
	switch {
	case roll < 65: // edit
		return 1, s.edit(m, k, p)
	case roll < 75: // delete
		old, err := os.ReadFile(s.abs(m, p))
		if err != nil {
			return 0, nil // changed under us by a sync: pick again
		}
		if err := os.Remove(s.abs(m, p)); err != nil {
			return 0, nil
		}
		s.led.superseded[hashOf(old)] = true
		s.r.ByKind["delete"]++
		s.r.Changes++
		return 1, nil
	case roll < 85: // rename
		np := s.newPath()
		if err := os.MkdirAll(filepath.Dir(s.abs(m, np)), 0o755); err != nil {
			return 0, err
		}
		if err := os.Rename(s.abs(m, p), s.abs(m, np)); err != nil {
			return 0, nil
		}
		s.r.ByKind["rename"]++
		s.r.Changes++
		return 1, nil
	default: // the same file edited on 2 or 3 devices at once
		made := 0
		for _, o := range c.members[:len(c.members)-1] {
			if made == 2+s.rng.IntN(2) {
				break
			}
			if o != m && s.rng.IntN(3) != 0 {
				continue
			}
			if _, err := os.Stat(s.abs(o, p)); err != nil {
				continue
			}
			if err := s.edit(o, k+made, p); err != nil {
				return made, err
			}
			made++
		}
		if made > 1 {
			s.r.ByKind["concurrent-edit"] += made
			s.r.ByKind["edit"] -= made
		}
		return max(made, 1), nil
	}
}

// edit rewrites p on m, over what m has there now.
func (s *sim) edit(m *member, k int, p string) error {
	old, err := os.ReadFile(s.abs(m, p))
	if err != nil {
		return nil // changed under us by a sync
	}
	_, data := s.newFile(k)
	return s.record(m, "edit", k, p, data, old)
}

// viewerChange has the viewer edit, create or delete a file: the viewer may
// not, so none of it may reach another device.
func (s *sim) viewerChange(k int) (int, error) {
	m := s.c.members[s.r.Viewer]
	files, err := s.files(m)
	if err != nil {
		return 0, err
	}
	var shared []string
	for _, p := range files {
		if !isConflictCopy(p) {
			shared = append(shared, p)
		}
	}
	if len(shared) == 0 || s.rng.IntN(3) == 0 {
		p, data := s.newFile(k)
		s.led.byViewer[hashOf(data)] = true
		return 1, s.record(m, "viewer-create", k, p, data, nil)
	}
	p := shared[s.rng.IntN(len(shared))]
	old, err := os.ReadFile(s.abs(m, p))
	if err != nil {
		return 0, nil // changed under us by a sync: pick again
	}
	if s.rng.IntN(4) == 0 {
		if err := os.Remove(s.abs(m, p)); err == nil {
			s.led.viewerSuperseded[hashOf(old)] = true
			s.r.ByKind["viewer-delete"]++
			s.r.Changes++
		}
		return 1, nil
	}
	_, data := s.newFile(k)
	s.led.byViewer[hashOf(data)] = true
	s.led.viewerSuperseded[hashOf(old)] = true
	return 1, s.record(m, "viewer-edit", k, p, data, nil)
}

// record writes data to p on m the way an editor saves (a whole new file
// renamed over the old one) and notes it in the ledger.
func (s *sim) record(m *member, kind string, k int, p string, data, old []byte) error {
	if err := s.writeFile(m, p, data); err != nil {
		return err
	}
	h := hashOf(data)
	if !m.viewer {
		s.led.written[h] = write{node: m.i, change: k, path: p}
		if old != nil {
			s.led.superseded[hashOf(old)] = true
		}
	}
	s.r.ByKind[kind]++
	s.r.Changes++
	return nil
}

func (s *sim) writeFile(m *member, p string, data []byte) error {
	dst := s.abs(m, p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	scratch := filepath.Join(filepath.Dir(m.root), "scratch")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(scratch, "save")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func (s *sim) abs(m *member, p string) string { return filepath.Join(m.root, filepath.FromSlash(p)) }

// files lists m's files (conflict copies included), sorted.
func (s *sim) files(m *member) ([]string, error) {
	t, err := readTree(m.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(t))
	for p := range t {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// newPath is a fresh file name in one of a few directories.
func (s *sim) newPath() string {
	s.seq++
	name := "f" + strconv.Itoa(s.seq) + ".txt"
	if d := s.rng.IntN(12); d < 10 {
		return path.Join("d"+strconv.Itoa(d), name)
	}
	return name
}

// newFile is a fresh path and fresh contents: mostly small, now and then a
// file of several chunks.
func (s *sim) newFile(k int) (string, []byte) {
	size := 64 + s.rng.IntN(4096)
	if s.rng.IntN(50) == 0 {
		size = 64<<10 + s.rng.IntN(448<<10)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(s.rng.Uint32())
	}
	copy(data, fmt.Sprintf("change %d seed %d seq %d\n", k, s.opts.Seed, s.seq))
	return s.newPath(), data
}

// waitConverged polls the devices' trees until the invariants hold on two
// polls in a row with nothing left to apply, or the timeout; it returns the
// last verdict.
func (s *sim) waitConverged(ctx context.Context, editorsDone func()) verdict {
	deadline := time.Now().Add(s.opts.ConvergeTimeout)
	var last verdict
	var lastHash contentHash
	stable := false
	for {
		trees := make([]tree, len(s.c.members))
		for i, m := range s.c.members {
			t, err := readTree(m.root)
			if err != nil {
				t = tree{}
			}
			trees[i] = t
		}
		last = judge(trees, s.r.Viewer, s.led)
		ref := trees[0].hash()
		idle := true
		for _, m := range s.c.members {
			if f, ok := m.n.Folder(s.fid); !ok || f.Status().Candidates > 0 {
				idle = false
			}
		}
		if idle && last.editorsSame {
			editorsDone()
		}
		if last.converged && idle {
			if stable && ref == lastHash {
				return last
			}
			stable, lastHash = true, ref
		} else {
			stable = false
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if !last.converged && len(last.violations) == 0 {
				last.violations = append(last.violations, "convergence: devices still had remote changes to apply at the deadline")
			}
			last.converged = false
			return last
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval * time.Duration(max(1, len(s.c.members)/pollNodes))):
		}
	}
}

// sampleGoroutines records the most goroutines seen until the returned stop
// is called.
func sampleGoroutines(peak *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(sampleInterval)
		defer t.Stop()
		for {
			if g := int64(runtime.NumGoroutine()); g > peak.Load() {
				peak.Store(g)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// peakRSS is the process's resident-set high-water mark (Linux), or 0.
func peakRSS() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
