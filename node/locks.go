package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/store"
)

// Lock timings.
const (
	// DefaultLockLease is the lease a lock asks for. The holder's device
	// renews it by running: a witness counts the lease from the last time it
	// heard the holder's device (its folder state, every heartbeat), so a
	// lock lasts while its holder runs and ends a lease after it went quiet.
	DefaultLockLease = 30 * time.Minute
	// LockExpiryGrace is added to a lease before a witness declares it
	// expired: clocks and heartbeats are not exact.
	LockExpiryGrace = 30 * time.Second
	// lockTick is how often a folder's lock keeper looks at its locks:
	// acknowledging requests (witnesses), expiring leases and keeping locked
	// files read-only.
	lockTick = time.Second
	// DefaultLockWait is how long Lock waits for a quorum of witnesses
	// before reporting the request as pending.
	DefaultLockWait = 10 * time.Second
	// writeBits are the permission bits a lock takes away on other devices.
	writeBits = 0o222
)

// lockExpiryGrace is LockExpiryGrace in ns (tests shorten it).
var lockExpiryGrace atomic.Int64

func init() { lockExpiryGrace.Store(int64(LockExpiryGrace)) }

// Lock states as reported.
const (
	LockPending = "pending" // asked for; not enough witnesses acknowledged it yet
	LockGranted = "granted"
)

// Lock errors.
var (
	ErrLockedByOther  = errors.New("the file is locked by someone else")
	ErrNoLock         = errors.New("no lock on this file")
	ErrNotLockHolder  = errors.New("the lock is someone else's (a manager may break it with --force)")
	ErrMayNotBreak    = errors.New("only a manager may break someone else's lock")
	ErrLeaseTooLong   = fmt.Errorf("a lock lease is at most %d hours", crdt.MaxLeaseSecs/3600)
	errLockNotGranted = errors.New("not granted yet")
)

// LockInfo is one live lock or lock request of a folder.
type LockInfo struct {
	ID        string    `json:"id"`
	Folder    string    `json:"folder"`
	Path      string    `json:"path"`            // inside the folder, slash-separated
	File      string    `json:"file,omitempty"`  // the path on this device's disk
	State     string    `json:"state"`           // "pending" or "granted"
	User      string    `json:"user"`            // who asked for it
	Device    string    `json:"device"`          // the device that asked
	Mine      bool      `json:"mine"`            // this device's user holds or asked for it
	Fence     uint64    `json:"fence,omitempty"` // the fencing number of a granted lock
	Acks      int       `json:"acks"`            // witnesses that acknowledged it
	Quorum    int       `json:"quorum"`          // acknowledgements needed (0: no witnesses yet)
	LeaseSecs uint32    `json:"lease_secs"`
	Expires   time.Time `json:"expires,omitzero"` // a granted lock's end if its holder stopped now (an estimate)
}

// lockKeeper is a folder's lock state on this device: what the witness loop
// acknowledged and heard, and which files it made read-only.
type lockKeeper struct {
	mu        sync.Mutex
	heard     map[peer.ID]time.Time // when a device's folder state last arrived (monotonic)
	grantSeen map[crdt.LockID]time.Time
	acked     map[crdt.LockID]bool
	readOnly  map[string]uint32 // path -> write bits taken away from it (saved in readOnlyFile)
	loaded    bool              // readOnly was read from readOnlyFile
	lastHeads string
	lastCheck time.Time
}

func (k *lockKeeper) init() {
	if k.heard == nil {
		k.heard, k.grantSeen, k.acked, k.readOnly = map[peer.ID]time.Time{}, map[crdt.LockID]time.Time{}, map[crdt.LockID]bool{}, map[string]uint32{}
	}
}

// heardFrom notes that device d's folder state just arrived.
func (f *Folder) heardFrom(d peer.ID) {
	f.locks.mu.Lock()
	f.locks.init()
	f.locks.heard[d] = time.Now()
	f.locks.mu.Unlock()
}

// localMode is the scanner's ScanConfig.LocalMode: a file this device made
// read-only for a lock is recorded with the write bits it had.
func (f *Folder) localMode(path string, perm uint32) uint32 {
	f.locks.mu.Lock()
	defer f.locks.mu.Unlock()
	if bits, ok := f.locks.readOnly[path]; ok {
		return perm | bits
	}
	return perm
}

// lockLoop runs the folder's lock keeper until ctx ends.
func (f *Folder) lockLoop(ctx context.Context) {
	t := time.NewTicker(lockTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.keepLocks()
	}
}

// keepLocks does one round of lock keeping: declare witnesses if none are
// and this device's user is an owner, acknowledge requests and expire leases
// if this device is a witness, and make files locked by others read-only.
func (f *Folder) keepLocks() {
	f.logMu.Lock()
	heads := headsKey(f.rlog.Heads())
	f.logMu.Unlock()
	f.locks.mu.Lock()
	f.locks.init()
	changed := heads != f.locks.lastHeads || time.Since(f.locks.lastCheck) >= 5*lockTick
	f.locks.lastHeads, f.locks.lastCheck = heads, time.Now()
	f.locks.mu.Unlock()
	if changed {
		f.witness()
	}
	f.enforceLocks()
}

func headsKey(hs []cid.Cid) string {
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.KeyString())
	}
	return b.String()
}

// liveRequests lists the log's lock requests not ended.
func liveRequests(l *crdt.Log) []crdt.SnapLock {
	var out []crdt.SnapLock
	for _, r := range l.Snapshot().Locks {
		if !r.Ended {
			out = append(out, r)
		}
	}
	return out
}

// witness is the witness side of the lock protocol on this device.
func (f *Folder) witness() {
	f.logMu.Lock()
	live := liveRequests(f.rlog)
	witnesses := f.rlog.Witnesses()
	var owners []peer.ID
	if len(witnesses) == 0 && len(live) > 0 && f.rlog.RoleAt(f.n.User(), "") >= crdt.RoleOwner {
		// No witnesses declared: the owners' devices are (LOG-RULES R10).
		for _, d := range f.rlog.Snapshot().Devices {
			if d.Live && f.rlog.RoleAt(d.User, "") >= crdt.RoleOwner && len(owners) < crdt.MaxWitnesses {
				owners = append(owners, d.Device)
			}
		}
	}
	f.logMu.Unlock()
	if len(owners) > 0 {
		slices.Sort(owners)
		if _, err := f.AppendOp(crdt.DeclareWitnesses{Devices: owners}); err != nil {
			f.log.Warn("declaring the owners' devices as lock witnesses", "err", err)
			return
		}
		f.log.Info("declared lock witnesses", "devices", len(owners))
		witnesses = owners
	}
	if !slices.Contains(witnesses, f.n.id) {
		return
	}
	now := time.Now()
	for _, r := range live {
		if r.Granted {
			f.maybeExpire(r, now)
			continue
		}
		f.locks.mu.Lock()
		done := f.locks.acked[r.ID]
		f.locks.mu.Unlock()
		if done {
			continue
		}
		_, err := f.AppendOp(crdt.LockAck{Request: r.ID})
		switch {
		case errors.Is(err, crdt.ErrLockBusy):
			continue // another request holds this witness's slot: try again when it ends
		case errors.Is(err, crdt.ErrLockStale):
			// This witness acked this epoch or a later one for the file (a
			// concurrent request): never ackable; the requester asks again.
		case err != nil && !errors.Is(err, crdt.ErrBadTarget):
			f.log.Warn("acknowledging a lock request", "path", r.Path, "err", err)
			continue
		}
		f.locks.mu.Lock()
		f.locks.acked[r.ID] = true
		f.locks.mu.Unlock()
	}
}

// maybeExpire publishes LockExpire for a granted lock whose holder's device
// has not been heard from for a lease (plus grace), on this device's clock.
func (f *Folder) maybeExpire(r crdt.SnapLock, now time.Time) {
	f.logMu.Lock()
	h, ok := f.rlog.LockHolder(r.Path)
	f.logMu.Unlock()
	if !ok || h.ID != r.ID {
		return
	}
	f.locks.mu.Lock()
	seen, ok := f.locks.grantSeen[r.ID]
	if !ok {
		seen = now
		f.locks.grantSeen[r.ID] = now
	}
	last := seen
	if h.Device == f.n.id {
		last = now // the holder is this device, and it runs
	} else if t := f.locks.heard[h.Device]; t.After(last) {
		last = t
	}
	f.locks.mu.Unlock()
	if now.Sub(last) < time.Duration(h.LeaseSecs)*time.Second+time.Duration(lockExpiryGrace.Load()) {
		return
	}
	if _, err := f.AppendOp(crdt.LockExpire{Request: r.ID}); err != nil && !errors.Is(err, crdt.ErrBadTarget) {
		f.log.Warn("expiring a lock", "path", r.Path, "err", err)
		return
	}
	f.log.Info("lock lease ran out: the holder's device went quiet", "path", r.Path)
}

// enforceLocks makes files locked by another user read-only on disk and gives
// back the write bits of those whose lock ended. It holds diskMu, so a scan
// never sees a chmod without the matching localMode answer.
func (f *Folder) enforceLocks() {
	me := f.n.User()
	f.logMu.Lock()
	locked := map[string]bool{}
	for _, r := range liveRequests(f.rlog) {
		if h, ok := f.rlog.LockHolder(r.Path); ok && h.User != me {
			locked[h.Path] = true
		}
	}
	f.logMu.Unlock()
	f.diskMu.Lock()
	defer f.diskMu.Unlock()
	f.locks.mu.Lock()
	defer f.locks.mu.Unlock()
	f.locks.init()
	if !f.locks.loaded {
		f.locks.loaded = true
		f.loadReadOnly()
	}
	before := fmt.Sprint(f.locks.readOnly)
	defer func() {
		if fmt.Sprint(f.locks.readOnly) != before {
			f.saveReadOnly()
		}
	}()
	for p, bits := range f.locks.readOnly {
		if locked[p] {
			continue
		}
		delete(f.locks.readOnly, p)
		if st, err := lstatIn(f.root, p); err == nil && st.Mode().IsRegular() {
			if err := chmodIn(f.root, p, st.Mode().Perm()|fs.FileMode(bits)); err != nil {
				f.log.Warn("restoring write permission after a lock", "path", p, "err", err)
			}
		}
	}
	for p := range locked {
		st, err := lstatIn(f.root, p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		perm := st.Mode().Perm()
		if perm&writeBits == 0 {
			if _, ok := f.locks.readOnly[p]; !ok {
				// Read-only already (a restart): give back what the index recorded.
				bits := uint32(0o200)
				if fi, ok, err := f.idx.Get(p); err == nil && ok {
					bits = fi.Mode & writeBits
				}
				f.locks.readOnly[p] = bits
			}
			continue
		}
		f.locks.readOnly[p] = uint32(perm) & writeBits
		if err := chmodIn(f.root, p, perm&^writeBits); err != nil {
			delete(f.locks.readOnly, p)
			f.log.Warn("making a locked file read-only", "path", p, "err", err)
		}
	}
}

// readOnlyFile keeps, in the folder marker, the files this device made
// read-only for locks, so a lock that ended while the daemon was down still
// gets its write bits back, and the first scan after a restart does not read
// the missing bits as the user's change.
const readOnlyFile = store.MarkerName + "/lock-readonly.json"

func (f *Folder) loadReadOnly() {
	raw, err := os.ReadFile(filepath.Join(f.root, readOnlyFile))
	if err != nil {
		return
	}
	var m map[string]uint32
	if err := json.Unmarshal(raw, &m); err != nil {
		f.log.Warn("ignoring a corrupt "+readOnlyFile, "err", err)
		return
	}
	for p, bits := range m {
		if store.ValidatePath(p) == nil {
			f.locks.readOnly[p] = bits & writeBits
		}
	}
}

func (f *Folder) saveReadOnly() {
	raw, _ := json.Marshal(f.locks.readOnly)
	if err := writeFileAtomic(filepath.Join(f.root, readOnlyFile), raw, 0o600); err != nil {
		f.log.Warn("saving the read-only files of locks", "err", err)
	}
}

// lstatIn and chmodIn work on a path inside root without following a
// symlink planted on the way.
func lstatIn(root, p string) (fs.FileInfo, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Lstat(p)
}

func chmodIn(root, p string, mode fs.FileMode) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Chmod(p, mode)
}

// locateFile finds the folder holding the file at abs (an absolute path on
// this device) and the file's path inside it.
func (n *Node) locateFile(abs string) (*Folder, string, error) {
	abs = filepath.Clean(abs)
	ref, rel, err := FolderOf(n.folderRefs(), abs)
	if err != nil {
		return nil, "", err
	}
	f, ok := n.Folder(ref.ID)
	if rel == "" || !ok {
		return nil, "", fmt.Errorf("%s: %w", abs, ErrNotInFolder)
	}
	if err := store.ValidatePath(rel); err != nil || rel == store.MarkerName || strings.HasPrefix(rel, store.MarkerName+"/") {
		return nil, "", fmt.Errorf("%s: not a file meshfold syncs", abs)
	}
	return f, rel, nil
}

// lockInfos reports the folder's live locks and requests (on path only, if
// path is not "").
func (f *Folder) lockInfos(path string) []LockInfo {
	me := f.n.User()
	f.logMu.Lock()
	live := liveRequests(f.rlog)
	quorum := 0
	if w := len(f.rlog.Witnesses()); w > 0 {
		quorum = w/2 + 1
	}
	var out []LockInfo
	for _, r := range live {
		if path != "" && r.Path != path {
			continue
		}
		li := LockInfo{ID: refString(r.ID), Folder: f.id, Path: r.Path, File: filepath.Join(f.root, filepath.FromSlash(r.Path)),
			State: LockPending, User: r.User.String(), Mine: r.User == me, Acks: r.Acks, Quorum: quorum}
		if c, err := r.ID.Cid(); err == nil {
			if op, ok := f.rlog.Get(c); ok {
				li.Device = op.Author.String()
				if b, ok := op.Body.(crdt.LockRequest); ok {
					li.LeaseSecs = b.LeaseSecs
				}
			}
		}
		if h, ok := f.rlog.LockHolder(r.Path); ok && h.ID == r.ID {
			li.State, li.Fence = LockGranted, h.Fence
		}
		out = append(out, li)
	}
	f.logMu.Unlock()
	f.locks.mu.Lock()
	for i := range out {
		if out[i].State != LockGranted {
			continue
		}
		last := time.Now()
		if out[i].Device != f.n.id.String() {
			if t, ok := f.locks.heard[peer.ID(mustDecodePeer(out[i].Device))]; ok {
				last = t
			}
		}
		out[i].Expires = last.Add(time.Duration(out[i].LeaseSecs) * time.Second).UTC().Truncate(time.Second)
	}
	f.locks.mu.Unlock()
	return out
}

func mustDecodePeer(s string) peer.ID {
	p, err := peer.Decode(s)
	if err != nil {
		return ""
	}
	return p
}

func refString(r crdt.Ref) string {
	if c, err := r.Cid(); err == nil {
		return c.String()
	}
	return fmt.Sprintf("%x", string(r))
}

// Locks lists the live locks and lock requests of every folder.
func (n *Node) Locks() []LockInfo {
	var out []LockInfo
	for _, f := range n.folderList() {
		out = append(out, f.lockInfos("")...)
	}
	return out
}

func (n *Node) folderList() []*Folder {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Folder, 0, len(n.folders))
	for _, f := range n.folders {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *Folder) int { return strings.Compare(a.id, b.id) })
	return out
}

// Lock asks for an exclusive lock on the file at abs (an absolute path inside
// a synced folder) with the given lease (0: DefaultLockLease), and waits until
// a quorum of witnesses granted it or ctx ends; then it reports the request
// as pending (editing goes on; the lock is granted once the witnesses are
// reachable). A lock this user already holds or asked for is reported as is.
func (n *Node) Lock(ctx context.Context, abs string, lease time.Duration) (LockInfo, error) {
	if lease == 0 {
		lease = DefaultLockLease
	}
	if lease < time.Second || lease > time.Duration(crdt.MaxLeaseSecs)*time.Second {
		return LockInfo{}, ErrLeaseTooLong
	}
	f, rel, err := n.locateFile(abs)
	if err != nil {
		return LockInfo{}, err
	}
	if st, err := lstatIn(f.root, rel); err != nil || st.IsDir() {
		return LockInfo{}, fmt.Errorf("%s: only an existing file can be locked", abs)
	}
	var mine *LockInfo
	for _, li := range f.lockInfos(rel) {
		if li.Mine {
			mine = &li
		} else if li.State == LockGranted {
			return li, fmt.Errorf("%s: %w (by %s until about %s)", rel, ErrLockedByOther, ShortID(mustDecodePeer(li.User)), li.Expires.Format(time.RFC3339))
		}
	}
	if mine == nil {
		if _, err := f.AppendOp(crdt.LockRequest{Path: rel, LeaseSecs: uint32(lease / time.Second)}); err != nil {
			if errors.Is(err, crdt.ErrUnauthorized) {
				return LockInfo{}, fmt.Errorf("%s: only editors may lock a file: %w", rel, err)
			}
			return LockInfo{}, err
		}
	}
	f.keepLocks() // a witness acknowledges its own device's request at once
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		for _, li := range f.lockInfos(rel) {
			if li.Mine && li.State == LockGranted {
				return li, nil
			}
		}
		select {
		case <-ctx.Done():
			for _, li := range f.lockInfos(rel) {
				if li.Mine {
					return li, nil
				}
			}
			return LockInfo{}, fmt.Errorf("%s: %w", rel, errLockNotGranted)
		case <-t.C:
		}
	}
}

// Unlock ends this user's lock (or request) on the file at abs; with force it
// breaks someone else's (managers and up).
func (n *Node) Unlock(abs string, force bool) (LockInfo, error) {
	f, rel, err := n.locateFile(abs)
	if err != nil {
		return LockInfo{}, err
	}
	infos := f.lockInfos(rel)
	if len(infos) == 0 {
		return LockInfo{}, fmt.Errorf("%s: %w", rel, ErrNoLock)
	}
	var ended *LockInfo
	for _, li := range infos {
		if !li.Mine {
			continue
		}
		id, err := parseRef(li.ID)
		if err != nil {
			return LockInfo{}, err
		}
		if _, err := f.AppendOp(crdt.LockRelease{Request: id}); err != nil {
			return LockInfo{}, fmt.Errorf("releasing the lock on %s: %w", rel, err)
		}
		ended = &li
	}
	if ended != nil {
		f.keepLocks()
		return *ended, nil
	}
	if !force {
		return infos[0], fmt.Errorf("%s: %w", rel, ErrNotLockHolder)
	}
	for _, li := range infos {
		id, err := parseRef(li.ID)
		if err != nil {
			return LockInfo{}, err
		}
		if _, err := f.AppendOp(crdt.LockBreak{Request: id}); err != nil {
			if errors.Is(err, crdt.ErrUnauthorized) {
				return li, fmt.Errorf("%s: %w", rel, ErrMayNotBreak)
			}
			return li, fmt.Errorf("breaking the lock on %s: %w", rel, err)
		}
		ended = &li
	}
	f.keepLocks()
	return *ended, nil
}

func parseRef(s string) (crdt.Ref, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return "", fmt.Errorf("bad ID %q: %w", s, err)
	}
	return crdt.RefOf(c), nil
}

type lockReq struct {
	Path  string `json:"path"`
	Lease string `json:"lease"` // a duration; "" is DefaultLockLease
	Wait  string `json:"wait"`  // how long to wait for the witnesses; "" is DefaultLockWait
}

type unlockReq struct {
	Path  string `json:"path"`
	Force bool   `json:"force"`
}

func init() {
	apiRoutes = append(apiRoutes, func(a *API, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/locks", func(w http.ResponseWriter, _ *http.Request) {
			locks := a.n.Locks()
			if locks == nil {
				locks = []LockInfo{}
			}
			apiJSON(w, locks)
		})
		mux.HandleFunc("POST /v1/locks", a.lock)
		mux.HandleFunc("POST /v1/locks/release", a.unlock)
	})
}

func (a *API) lock(w http.ResponseWriter, r *http.Request) {
	var req lockReq
	if !decode(w, r, &req) {
		return
	}
	lease, err := ParseDuration(req.Lease)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	wait, err := ParseDuration(req.Wait)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if wait == 0 {
		wait = DefaultLockWait
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	li, err := a.n.Lock(ctx, req.Path, lease)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrLockedByOther) {
			code = http.StatusConflict
		}
		apiError(w, code, err)
		return
	}
	apiJSON(w, li)
}

func (a *API) unlock(w http.ResponseWriter, r *http.Request) {
	var req unlockReq
	if !decode(w, r, &req) {
		return
	}
	li, err := a.n.Unlock(req.Path, req.Force)
	switch {
	case errors.Is(err, ErrMayNotBreak), errors.Is(err, ErrNotLockHolder):
		apiError(w, http.StatusForbidden, err)
	case err != nil:
		apiError(w, http.StatusBadRequest, err)
	default:
		apiJSON(w, li)
	}
}

// writableCopy gives a conflict copy of a file this device made read-only for
// a lock the write bits the file had: the copy is the user's to edit.
func (f *Folder) writableCopy(p, copyName string) {
	f.locks.mu.Lock()
	bits, ok := f.locks.readOnly[p]
	f.locks.mu.Unlock()
	if !ok {
		return
	}
	if st, err := lstatIn(f.root, copyName); err == nil && st.Mode().IsRegular() {
		if err := chmodIn(f.root, copyName, st.Mode().Perm()|fs.FileMode(bits)); err != nil {
			f.log.Warn("making a conflict copy writable", "copy", copyName, "err", err)
		}
	}
}
