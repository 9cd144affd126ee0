package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/protocol/chunks"
	"github.com/meshfold/meshfold/protocol/index"
	"github.com/meshfold/meshfold/protocol/logsync"
	"github.com/meshfold/meshfold/protocol/state"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// Folder runner limits and timings.
const (
	// MaxCandidates bounds the remote versions a folder keeps waiting to be
	// applied; past it, index sync pauses until some are applied.
	MaxCandidates = 100_000
	// publishCoalesce is the shortest gap between two state publications.
	publishCoalesce = 200 * time.Millisecond
	// publishGapPerPeer widens that gap with the folder's size: every
	// publication reaches every member, so N devices publishing at a fixed
	// rate cost O(N²) deliveries; with the gap growing with N the folder's
	// gossip stays O(N) a second (100 devices: one publication each per 2 s).
	publishGapPerPeer = 20 * time.Millisecond
	// syncTimeout bounds one exchange with one peer.
	syncTimeout = 2 * time.Minute
	// restartBackoffMax caps the wait before a failed folder is retried.
	restartBackoffMax = time.Minute
	// dhtFindInterval is how often a folder looks for its members on the DHT.
	dhtFindInterval = 5 * time.Minute
)

// ErrMarkerMissing: the folder's marker directory is gone (store.ErrMarkerMissing).
var ErrMarkerMissing = store.ErrMarkerMissing

// Status is what a folder is doing, for the UI and tests.
type Status struct {
	State      string   // "starting", "idle", "syncing", "error"
	Err        string   // set with State "error"
	Peers      int      // peers known to share the folder
	Candidates int      // remote versions not applied yet
	Applied    int      // actions applied since start
	Rejected   int      // remote versions refused (no right, bad data)
	Unshared   int      // local changes this device may not share (read-only member)
	NoAccess   []string // folders seen by name whose files this device's user may not read
	Access     string   // "" (member), "pending" or "denied": this device's access request
	Request    string   // the access request's ID when Access is set
	NeedFiles  int      // paths with a remote version still to apply
	NeedBytes  int64    // bytes of those versions (an upper bound of what is left to fetch)
	Paused     bool     // the folder is paused (by itself or by the global switch)
	Scanning   bool     // a scan is hashing new or changed files
	ScanFiles  int      // files the running (or last) scan queued for hashing
	ScanBytes  int64    // their bytes (grows while the scan walks)
	ScanHashed int64    // of those bytes, hashed so far
}

// Folder syncs one shared folder: it scans and watches the disk, publishes its
// state, pulls the log, index entries and chunks from peers, and applies what
// the planner decides.
type Folder struct {
	n    *Node
	id   string
	root string
	idx  *store.FolderIndex
	log  *slog.Logger

	logMu sync.Mutex // guards rlog (crdt.Log is not safe for concurrent use)
	rlog  *crdt.Log

	topic     *pubsub.Topic
	published string // what the last state published said (serve's goroutine only)
	// diskMu is held by every scan (the watcher's Lock) and every apply, so a
	// scan never mistakes a half-applied remote change for a local edit.
	diskMu sync.Mutex
	kick   chan struct{}
	// lastState is the last state this device published (signed, marshalled),
	// pushed directly to a peer that joins the topic (topic_joins.go).
	lastState atomic.Pointer[[]byte]

	mu         sync.Mutex
	peers      map[peer.ID]*state.FolderState
	received   map[store.DeviceID]uint64 // highest sequence examined per author
	candidates map[string]map[versionKey]plan.Candidate
	signedTo   uint64          // local versions up to this sequence are signed or judged
	refused    map[string]bool // local changes this device's user may not make: to restore
	status     Status

	run     folderRun    // the runner goroutine, stopped while paused (daemon.go)
	fetched atomic.Int64 // bytes of chunks delivered during the current apply: progress
	locks   lockKeeper   // locks.go
}

type versionKey struct {
	author store.DeviceID
	seq    uint64
}

func newFolder(n *Node, log *crdt.Log, root string) (*Folder, error) {
	id := log.Folder().String()
	f := &Folder{
		n: n, id: id, root: root, idx: n.db.Folder(id), rlog: log,
		log:        n.log.With("folder", shortFolder(id)),
		kick:       make(chan struct{}, 1),
		peers:      map[peer.ID]*state.FolderState{},
		received:   map[store.DeviceID]uint64{},
		candidates: map[string]map[versionKey]plan.Candidate{},
		refused:    map[string]bool{},
		status:     Status{State: "starting"},
	}
	if err := n.ps.RegisterTopicValidator(state.Topic(id), state.NewStateValidator(func(folder string, dev peer.ID) bool {
		return folder == id && n.IsMember(folder, dev)
	})); err != nil {
		return nil, fmt.Errorf("folder state validator: %w", err)
	}
	topic, err := n.ps.Join(state.Topic(id))
	if err != nil {
		return nil, fmt.Errorf("joining the folder topic: %w", err)
	}
	f.topic = topic
	return f, nil
}

// ID is the folder ID (the CID of its genesis op).
func (f *Folder) ID() string { return f.id }

// Root is the folder's directory.
func (f *Folder) Root() string { return f.root }

// Index is the folder's index (read it; the runner writes it).
func (f *Folder) Index() *store.FolderIndex { return f.idx }

// Status reports what the folder is doing.
func (f *Folder) Status() Status {
	noAccess := f.NoAccess()
	access, request := f.access()
	f.mu.Lock()
	s := f.status
	s.NoAccess, s.Access, s.Request = noAccess, access, request
	s.Peers = len(f.peers)
	s.Candidates = f.countCandidatesLocked()
	s.NeedFiles, s.NeedBytes = f.needLocked()
	f.mu.Unlock()
	s.NeedBytes = max(0, s.NeedBytes-f.fetched.Load())
	return f.pausedStatus(s)
}

// Log runs fn with the folder's rights log, under its lock.
func (f *Folder) Log(fn func(*crdt.Log) error) error {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return fn(f.rlog)
}

// AppendOp signs an op with this device and adds it to the log, then wakes
// the runner so peers hear of it.
func (f *Folder) AppendOp(body crdt.Body) (*crdt.Op, error) {
	f.logMu.Lock()
	track := mayChangeReads(body)
	var before string
	if track {
		before = f.readScopeLocked()
	}
	op, err := f.rlog.Append(f.n.key, body, time.Now().UnixMilli())
	changed := track && err == nil && f.readScopeLocked() != before
	f.logMu.Unlock()
	if changed {
		f.rightsChanged()
	}
	if err == nil {
		f.wake()
	}
	return op, err
}

// MergeOps adds ops received out of band (an invitation handshake).
func (f *Folder) MergeOps(raws [][]byte) (crdt.MergeResult, error) {
	f.logMu.Lock()
	before := f.readScopeLocked()
	res, err := f.rlog.Merge(raws)
	changed := res.Added > 0 && f.readScopeLocked() != before
	f.logMu.Unlock()
	if changed {
		f.rightsChanged()
	}
	f.wake()
	return res, err
}

// Ops returns every op of the log (genesis first), for an invitation handshake.
func (f *Folder) Ops() [][]byte {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.rlog.OpsSince(nil)
}

func (f *Folder) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Folder) setStatus(fn func(*Status)) {
	f.mu.Lock()
	fn(&f.status)
	f.mu.Unlock()
}

// supervise runs the folder until ctx ends, restarting it with backoff after a
// failure: a failing folder is logged and shows in status, and never takes the
// node down.
func (f *Folder) supervise(ctx context.Context) {
	backoff := time.Second
	for {
		err := f.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		f.log.Error("folder stopped; retrying", "err", err, "in", backoff)
		f.setStatus(func(s *Status) { s.State, s.Err = "error", err.Error() })
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, restartBackoffMax)
	}
}

func (f *Folder) serve(ctx context.Context) error {
	if st, err := os.Stat(filepath.Join(f.root, store.MarkerName)); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: %w", f.root, store.ErrMarkerMissing)
	}
	root, err := os.OpenRoot(f.root)
	if err != nil {
		return err
	}
	defer root.Close()
	f.removeTempFiles()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sub, err := f.topic.Subscribe(pubsub.WithBufferSize(pubsubQueue))
	if err != nil {
		return err
	}
	defer sub.Cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait
	wg.Go(func() { f.readStates(ctx, sub) })
	joins, err := f.topic.EventHandler()
	if err != nil {
		return err
	}
	wg.Go(func() { f.watchJoins(ctx, joins) })
	f.enforceLocks() // before the first scan: a file left read-only by a lock is known as such
	wg.Go(func() { f.lockLoop(ctx) })

	fatal := make(chan error, 1)
	w, err := store.NewWatcher(store.WatchConfig{
		Scan: store.ScanConfig{Root: f.root, Device: store.DeviceID(f.n.id), MayChange: f.mayWrite, RequireMarker: true, LocalMode: f.localMode,
			Progress: f.scanProgress},
		Lock: &f.diskMu,
		OnScan: func(ev store.WatchEvent) {
			if errors.Is(ev.Err, store.ErrMarkerMissing) {
				select {
				case fatal <- ev.Err:
				default:
				}
				return
			}
			if ev.Err != nil {
				f.log.Warn("scan failed", "err", ev.Err)
			} else {
				f.n.metrics.scan.Observe(ev.Result.Duration.Seconds())
			}
			if len(ev.Result.Refused) > 0 {
				f.mu.Lock()
				for _, p := range ev.Result.Refused {
					f.refused[p] = true
				}
				f.mu.Unlock()
			}
			f.wake()
		},
	}, f.idx)
	if err != nil {
		return err
	}
	watchErr := make(chan error, 1)
	wg.Go(func() { watchErr <- w.Run(ctx) })

	applier := &Applier{Root: root, Index: f.idx, Fetcher: f, FetcherVerifies: true, Log: f.log}
	if f.n.cfg.DHT {
		if err := f.n.disc.AdvertiseFolder(f.id); err != nil {
			f.log.Warn("announcing the folder on the DHT", "err", err)
		}
		wg.Go(func() { f.findPeersLoop(ctx) })
	}
	heartbeat := time.NewTicker(f.n.cfg.Heartbeat)
	defer heartbeat.Stop()
	var lastPublish time.Time
	republish := true // the next publication goes out even if the state is unchanged
	f.setStatus(func(s *Status) { s.State, s.Err = "idle", "" })
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-watchErr:
			return fmt.Errorf("watcher: %w", err)
		case err := <-fatal:
			return err
		case <-heartbeat.C:
			lastPublish, republish = time.Time{}, true
		case <-f.kick:
		}
		if err := f.signLocal(); err != nil {
			return err
		}
		f.restoreRefused(ctx, applier)
		gap := f.publishGap()
		if time.Since(lastPublish) >= gap {
			// Every peer's state wakes this loop: republishing an unchanged
			// state each time made every device publish 5 times a second
			// for good, the gossip carrying 95% of all bytes at 12 devices.
			sent, err := f.publish(ctx, republish)
			if err != nil {
				f.log.Warn("publishing folder state", "err", err)
			}
			if sent {
				lastPublish, republish = time.Now(), false
			}
		} else {
			time.AfterFunc(gap-time.Since(lastPublish), f.wake)
		}
		f.syncRound(ctx, applier)
	}
}

// findPeersLoop asks the DHT for the folder's members now and then, and
// connects to those found (their states then arrive on the topic).
func (f *Folder) findPeersLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := f.n.disc.FindFolderPeers(ctx, f.id); err != nil && ctx.Err() == nil {
			f.log.Debug("finding folder peers on the DHT", "err", err)
		}
		t.Reset(dhtFindInterval)
	}
}

// removeTempFiles deletes the temporary files a killed process left while
// assembling downloads; they were never recorded, so nothing is lost.
func (f *Folder) removeTempFiles() {
	filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), store.TempFilePrefix) {
			if err := os.Remove(p); err == nil {
				f.log.Info("removed an unfinished download", "path", p)
			}
		}
		return nil
	})
}

// readStates takes peers' folder states off the topic (the validator already
// checked signature and membership) and wakes the runner.
func (f *Folder) readStates(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		st, ok := msg.ValidatorData.(*state.FolderState)
		if !ok {
			if st, err = state.Unmarshal(msg.Data); err != nil {
				continue
			}
		}
		if st.Device == f.n.id {
			continue
		}
		f.mu.Lock()
		f.peers[st.Device] = st
		f.mu.Unlock()
		f.heardFrom(st.Device)
		f.wake()
	}
}

// mayWrite is the scanner's guard: may this device's user change path?
func (f *Folder) mayWrite(path string) bool {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.rlog.Can(f.n.User(), crdt.ActionWrite, path)
}

// restoreRefused undoes local changes this device's user may not make (a
// read-only member's edit or delete): the user's bytes are kept as a conflict
// copy that is never shared, and the shared version comes back.
func (f *Folder) restoreRefused(ctx context.Context, applier *Applier) {
	f.mu.Lock()
	paths := make([]string, 0, len(f.refused))
	for p := range f.refused {
		paths = append(paths, p)
	}
	f.refused = map[string]bool{}
	f.mu.Unlock()
	if len(paths) == 0 {
		return
	}
	slices.Sort(paths)
	f.diskMu.Lock()
	defer f.diskMu.Unlock()
	var actions []plan.Action
	for _, p := range paths {
		shared, ok, err := f.idx.Get(p)
		if err != nil || !ok || shared.Deleted {
			continue
		}
		if st, err := applier.Root.Lstat(p); err == nil && !st.IsDir() {
			copyName, err := applier.KeepAside(p, plan.ConflictName(p, st.ModTime().UnixNano(), ShortID(f.n.id)))
			if err != nil {
				f.log.Error("keeping a refused local change aside", "path", p, "err", err)
				continue
			}
			f.writableCopy(p, copyName)
			f.log.Warn("this device may not change the file: kept the change as a local conflict copy and restored the shared version",
				"path", p, "copy", copyName)
		}
		actions = append(actions, plan.Action{Op: plan.Fetch, Want: shared})
	}
	res, err := applier.Apply(ctx, actions)
	f.fetched.Store(0) // restoring is not the progress of remote changes
	if err != nil || len(res.Skipped) > 0 {
		f.log.Error("restoring shared versions", "err", err, "skipped", res.Skipped)
		f.mu.Lock()
		for _, s := range res.Skipped {
			f.refused[s.Path] = true // try again on the next round
		}
		f.mu.Unlock()
	}
	f.setStatus(func(s *Status) { s.Unshared += len(paths) })
}

// scanProgress records how far a running scan's hashing is, for the status
// and its event stream (store.ScanConfig.Progress).
func (f *Folder) scanProgress(p store.ScanProgress) {
	f.setStatus(func(s *Status) {
		s.Scanning = p.FilesHashed < p.FilesToHash
		s.ScanFiles, s.ScanBytes, s.ScanHashed = p.FilesToHash, p.BytesToHash, min(p.BytesHashed, p.BytesToHash)
	})
}

// publishGap is the shortest gap between two publications of this folder's
// state: publishCoalesce, widened by publishGapPerPeer for every peer known to
// share the folder, at most half the heartbeat.
func (f *Folder) publishGap() time.Duration {
	f.mu.Lock()
	peers := len(f.peers)
	f.mu.Unlock()
	return min(max(publishCoalesce, time.Duration(peers)*publishGapPerPeer), max(publishCoalesce, f.n.cfg.Heartbeat/2))
}

// maxSignBatch bounds the versions signLocal records in one index batch: one
// batch of 10,000 new versions held ~14 MB in leveldb's batch buffer plus its
// journal copy and memtable, the sender's peak RSS in bench sync (b). A crash
// between batches leaves the rest unsigned, to be signed on the next pass.
const maxSignBatch = 1000

// signLocal signs the local versions made since the last call, naming the log
// heads they were made under, so any member may forward them. A version this
// device's user may not write stays unsigned: it is never served.
func (f *Folder) signLocal() error {
	self := store.DeviceID(f.n.id)
	f.diskMu.Lock()
	defer f.diskMu.Unlock()
	var toSign []store.FileInfo
	f.mu.Lock()
	from := f.signedTo + 1
	f.mu.Unlock()
	last := from - 1
	if err := f.idx.Since(self, from, func(fi store.FileInfo) error {
		last = max(last, fi.Seq)
		if len(fi.Signature) == 0 {
			toSign = append(toSign, fi)
		}
		return nil
	}); err != nil {
		return err
	}
	if len(toSign) == 0 {
		f.mu.Lock()
		f.signedTo = last
		f.mu.Unlock()
		return nil
	}
	f.logMu.Lock()
	heads := f.rlog.Heads()
	user := f.n.User()
	allowed := make([]bool, len(toSign))
	for i, fi := range toSign {
		allowed[i] = f.rlog.Can(user, crdt.ActionWrite, fi.Path)
	}
	f.logMu.Unlock()
	b := f.idx.Batch()
	unshared := 0
	for i, fi := range toSign {
		if !allowed[i] {
			unshared++
			continue
		}
		fi.LogHeads = heads
		sig, err := index.SignVersion(f.id, fi, f.n.key)
		if err != nil {
			return err
		}
		fi.Signature = sig
		b.Put(fi)
		if b.Len() >= maxSignBatch {
			if err := b.Commit(); err != nil {
				return fmt.Errorf("recording signatures: %w", err)
			}
			b = f.idx.Batch()
		}
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("recording signatures: %w", err)
	}
	f.mu.Lock()
	f.signedTo = last
	f.status.Unshared += unshared
	f.mu.Unlock()
	if unshared > 0 {
		f.log.Warn("local changes not shared: this device's user may not write them", "count", unshared)
	}
	return nil
}

// publish sends this device's signed folder state on the folder topic if it
// changed since the last publication, or always with force.
func (f *Folder) publish(ctx context.Context, force bool) (bool, error) {
	self := store.DeviceID(f.n.id)
	seq, err := f.idx.Sequence(self)
	if err != nil {
		return false, err
	}
	f.mu.Lock()
	var seen store.VersionVector
	for d, s := range f.received {
		if d != self && s > 0 {
			seen = seen.Update(d, s)
		}
	}
	// What peers can get from here also moves when local versions get signed
	// or received ones applied (index answers stop before either): a new
	// publication then tells them to ask again, instead of the heartbeat.
	settled := fmt.Sprint(f.signedTo, f.status.Applied)
	f.mu.Unlock()
	f.logMu.Lock()
	heads := f.rlog.Heads()
	f.logMu.Unlock()
	key := fmt.Sprint(seq, seen, heads, settled)
	if !force && key == f.published {
		return false, nil
	}
	st := &state.FolderState{Folder: f.id, Device: f.n.id, Seq: seq, Seen: seen, LogHeads: heads, Time: time.Now().UnixNano()}
	if err := st.Sign(f.n.key); err != nil {
		return false, err
	}
	raw := st.Marshal()
	f.lastState.Store(&raw)
	f.pushRelayed(raw) // gossip skips relayed connections (relay.go)
	if err := f.topic.Publish(ctx, raw); err != nil {
		return false, err
	}
	f.published = key
	return true, nil
}

// syncRound brings this device up to date with every peer's announced state:
// the log first (rights decide what index entries mean), then index entries,
// then chunks through the planner and the applier.
func (f *Folder) syncRound(ctx context.Context, applier *Applier) {
	ctx = allowLimited(ctx) // peers may be reachable only through a relay (relay.go)
	f.mu.Lock()
	states := make([]*state.FolderState, 0, len(f.peers))
	for _, st := range f.peers {
		states = append(states, st)
	}
	f.mu.Unlock()
	slices.SortFunc(states, func(a, b *state.FolderState) int { return strings.Compare(string(a.Device), string(b.Device)) })
	for _, st := range states {
		if ctx.Err() != nil {
			return
		}
		if err := f.pullLog(ctx, st); err != nil {
			f.log.Warn("log sync", "peer", ShortID(st.Device), "err", err)
			continue
		}
		if !f.sameLog(st) {
			// The peer filters what it sends with its own view of the
			// rights; until that view includes ours (our join, a grant) it
			// would withhold entries for good. It pulls our log when it sees
			// our state, republishes, and the next round asks it.
			f.log.Debug("index sync waits for the peer's log to catch up", "peer", ShortID(st.Device))
			continue
		}
		if err := f.pullIndex(ctx, st); err != nil {
			f.log.Warn("index sync", "peer", ShortID(st.Device), "err", err)
		}
		f.n.disc.Remember(st.Device)
	}
	if f.countCandidates() > 0 {
		f.apply(ctx, applier)
	}
}

// sameLog reports whether the peer announced exactly our log heads. After
// pulling its log ours contains its, so equality means its log contains ours.
func (f *Folder) sameLog(st *state.FolderState) bool {
	f.logMu.Lock()
	mine := f.rlog.Heads()
	f.logMu.Unlock()
	return slices.EqualFunc(wire.SortCIDs(mine), wire.SortCIDs(slices.Clone(st.LogHeads)), func(a, b cid.Cid) bool { return a.Equals(b) })
}

func (f *Folder) pullLog(ctx context.Context, st *state.FolderState) error {
	f.logMu.Lock()
	missing := false
	for _, h := range st.LogHeads {
		if !f.rlog.Has(h) {
			missing = true
		}
	}
	mine := f.rlog.Heads()
	f.logMu.Unlock()
	if !missing {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	var batch [][]byte
	_, err := logsync.Open(ctx, f.n.host, st.Device, f.id, mine, logsync.PullFuncs{
		Have: func(c cid.Cid) bool {
			f.logMu.Lock()
			defer f.logMu.Unlock()
			return f.rlog.Has(c)
		},
		Parents: func(raw []byte) ([]cid.Cid, error) {
			op, err := crdt.DecodeOp(raw)
			if err != nil {
				return nil, err
			}
			return op.Parents, nil
		},
		Deliver: func(_ cid.Cid, raw []byte) error {
			batch = append(batch, raw)
			return nil
		},
	})
	if len(batch) > 0 {
		res, mErr := f.MergeOps(batch)
		if mErr != nil {
			return mErr
		}
		if len(res.Rejected) > 0 {
			f.log.Warn("log ops refused", "peer", ShortID(st.Device), "count", len(res.Rejected), "first", res.Rejected[0])
			f.n.metrics.rejectedOps.Add(float64(len(res.Rejected)))
		}
	}
	return err
}

// pullIndex asks the peer for the versions of every author it holds more of
// than this device has examined.
func (f *Folder) pullIndex(ctx context.Context, st *state.FolderState) error {
	self := store.DeviceID(f.n.id)
	want := map[store.DeviceID]uint64{store.DeviceID(st.Device): st.Seq}
	for _, c := range st.Seen.Counters {
		want[c.Device] = c.Value
	}
	authors := make([]store.DeviceID, 0, len(want))
	for d := range want {
		authors = append(authors, d)
	}
	slices.Sort(authors)
	for _, d := range authors {
		if d == self {
			continue
		}
		for {
			f.mu.Lock()
			from := f.received[d]
			full := f.countCandidatesLocked() >= MaxCandidates
			f.mu.Unlock()
			if from >= want[d] || full {
				break
			}
			rctx, cancel := context.WithTimeout(ctx, syncTimeout)
			end, err := index.Open(rctx, f.n.host, st.Device, index.Request{Folder: f.id, Device: d, FromSeq: from}, nil, f.accept)
			cancel()
			if err != nil {
				return err
			}
			f.mu.Lock()
			if end.Through > f.received[d] {
				f.received[d] = end.Through
			}
			f.mu.Unlock()
			if !end.More {
				// The peer examined everything it has of d; what it withheld
				// (paths we may not read) we will never get from it.
				f.mu.Lock()
				f.received[d] = max(f.received[d], min(want[d], end.Through))
				f.mu.Unlock()
				break
			}
		}
	}
	return nil
}

// accept judges one received version against the rights log and keeps it as
// a candidate for the planner.
func (f *Folder) accept(fi store.FileInfo) error {
	if err := store.ValidatePath(fi.Path); err != nil {
		f.reject(fi, err)
		return nil
	}
	if fi.Path == store.MarkerName || store.IsBuiltinIgnored(filepath.Base(fi.Path)) {
		f.reject(fi, errors.New("a reserved name"))
		return nil
	}
	f.logMu.Lock()
	// Versions carry no fence: one by the current holder's user that the
	// lock would turn into a copy is judged again with the holder's fence
	// (accepted if written under the grant).
	v, err := f.rlog.VersionVerdict(peer.ID(fi.Author), fi.LogHeads, fi.Path, 0)
	if h, ok := f.rlog.LockHolder(fi.Path); ok && err == nil && v == crdt.VerdictConflictCopy {
		if u, ok := f.rlog.DeviceUser(peer.ID(fi.Author)); ok && u == h.User {
			v, err = f.rlog.VersionVerdict(peer.ID(fi.Author), fi.LogHeads, fi.Path, h.Fence)
		}
	}
	f.logMu.Unlock()
	if err != nil {
		// Heads we lack: the version is examined again after the next log pull.
		f.reject(fi, err)
		return nil
	}
	var pv plan.Verdict
	switch v {
	case crdt.VerdictAccept:
		pv = plan.Accept
	case crdt.VerdictQuarantine:
		// Kept aside, never applied to the tree, never lost.
		pv = plan.Quarantine
	case crdt.VerdictConflictCopy:
		// Written against a lock: kept beside the file as a conflict copy.
		pv = plan.LockConflict
	default:
		f.reject(fi, errors.New("the author had no right to write this path"))
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.candidates[fi.Path]
	if m == nil {
		m = map[versionKey]plan.Candidate{}
		f.candidates[fi.Path] = m
	}
	m[versionKey{fi.Author, fi.Seq}] = plan.Candidate{Version: fi, Verdict: pv}
	return nil
}

func (f *Folder) reject(fi store.FileInfo, why error) {
	f.log.Warn("remote version refused", "path", fi.Path, "author", ShortID(peer.ID(fi.Author)), "why", why)
	f.setStatus(func(s *Status) { s.Rejected++ })
	f.n.metrics.rejectedVersions.Inc()
}

// apply plans over the candidate paths and executes the plan, holding diskMu
// so scans wait; then it drops candidates that no longer call for work.
func (f *Folder) apply(ctx context.Context, applier *Applier) {
	f.diskMu.Lock()
	defer f.diskMu.Unlock()
	f.mu.Lock()
	paths := make([]string, 0, len(f.candidates))
	var remote []plan.Candidate
	for p, m := range f.candidates {
		paths = append(paths, p)
		for _, c := range m {
			remote = append(remote, c)
		}
	}
	f.mu.Unlock()
	local, err := f.localEntries(paths)
	if err != nil {
		f.log.Error("reading the index", "err", err)
		return
	}
	cfg := plan.Config{Local: store.DeviceID(f.n.id), ShortID: func(d store.DeviceID) string { return ShortID(peer.ID(d)) }}
	actions := plan.Plan(cfg, local, remote)
	if len(actions) > 0 {
		f.setStatus(func(s *Status) { s.State = "syncing" })
		start := time.Now()
		f.fetched.Store(0)
		res, err := applier.Apply(ctx, actions)
		f.n.metrics.pull.Observe(time.Since(start).Seconds())
		if err != nil {
			f.log.Error("applying remote changes", "err", err)
		}
		f.setStatus(func(s *Status) { s.Applied += res.Applied; s.State = "idle" })
	}
	// Keep only what still calls for work (a skipped action, a missing chunk).
	local, err = f.localEntries(paths)
	if err != nil {
		return
	}
	still := map[string]bool{}
	for _, a := range plan.Plan(cfg, local, remote) {
		if a.Op != plan.Quarantined && a.Op != plan.KeepCopy {
			still[a.Want.Path] = true
		}
	}
	f.mu.Lock()
	for _, p := range paths {
		if !still[p] {
			delete(f.candidates, p)
		}
	}
	f.fetched.Store(0)
	f.mu.Unlock()
	if len(still) > 0 {
		time.AfterFunc(time.Second, f.wake) // retry soon: a rescan or a peer may unblock it
	}
}

func (f *Folder) localEntries(paths []string) ([]store.FileInfo, error) {
	var out []store.FileInfo
	for _, p := range paths {
		fi, ok, err := f.idx.Get(p)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, fi)
		}
	}
	return out, nil
}

func (f *Folder) countCandidates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.countCandidatesLocked()
}

func (f *Folder) countCandidatesLocked() int {
	n := 0
	for _, m := range f.candidates {
		n += len(m)
	}
	return n
}

// countFetched wraps deliver so every chunk delivered counts in the
// folder's fetched bytes (status and metrics).
func (f *Folder) countFetched(deliver func(cid.Cid, []byte) error) func(cid.Cid, []byte) error {
	return func(c cid.Cid, data []byte) error {
		f.fetched.Add(int64(len(data)))
		return deliver(c, data)
	}
}

// Fetch gets chunks (ChunkFetcher): first from the files of this device's
// other folders, then from every peer sharing this folder.
func (f *Folder) Fetch(ctx context.Context, want []cid.Cid, deliver func(cid.Cid, []byte) error) error {
	deliver = f.countFetched(deliver)
	var remote []cid.Cid
	for _, c := range want {
		if data, ok := f.n.chunkElsewhere(f, c); ok {
			if err := deliver(c, data); err != nil {
				return err
			}
			continue
		}
		remote = append(remote, c)
	}
	if len(remote) == 0 {
		return nil
	}
	want = remote
	f.mu.Lock()
	peers := make([]peer.ID, 0, len(f.peers))
	for p := range f.peers {
		peers = append(peers, p)
	}
	f.mu.Unlock()
	slices.Sort(peers)
	if len(peers) == 0 {
		return errors.New("no peer shares this folder right now")
	}
	return f.fetchPreferDirect(ctx, want, peers, deliver)
}

// fetchFrom fetches want from peers with the chunk exchange protocol.
func (f *Folder) fetchFrom(ctx context.Context, want []cid.Cid, peers []peer.ID, deliver func(cid.Cid, []byte) error) (chunks.Stats, error) {
	return chunks.Fetch(ctx, chunks.FetchOptions{
		Folder:  f.id,
		Open:    chunks.OpenWith(f.n.host),
		Buffers: fetchBuffers(ctx), // fetch_buffers.go
		Penalize: func(p peer.ID, why error) {
			f.log.Warn("peer sent bad data; dropped for this transfer", "peer", ShortID(p), "why", why)
			f.n.metrics.rejectedChunks.Inc()
		},
	}, want, peers, deliver)
}

// canRead answers the servers: may device p read path here?
func (f *Folder) canRead(p peer.ID, path string) bool {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	user, ok := f.rlog.DeviceUser(p)
	return ok && f.rlog.Can(user, crdt.ActionRead, path)
}

// readChunk serves a chunk from a file the requester may read, into buf
// when it fits (nil: a new slice).
func (f *Folder) readChunk(c cid.Cid, allowed func(path string) bool, buf []byte) ([]byte, error) {
	data, err := f.idx.ReadChunkInto(f.root, c, allowed, buf)
	switch {
	case errors.Is(err, store.ErrChunkNotFound), errors.Is(err, fs.ErrNotExist):
		return nil, wire.ErrNotFound
	case errors.Is(err, store.ErrChunkNotAllowed):
		return nil, wire.ErrNoAccess
	case errors.Is(err, store.ErrChunkChanged):
		return nil, wire.ErrChanged
	}
	return data, err
}

func shortFolder(id string) string {
	if len(id) > 12 {
		return id[len(id)-12:]
	}
	return id
}
