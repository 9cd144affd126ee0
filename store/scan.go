package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Scanner limits.
const (
	// MaxHashAttempts is how many times a file that changes while it is being
	// hashed is hashed before the scanner gives up on it for this scan (a
	// per-file ErrFileChanging; the old index entry stays).
	MaxHashAttempts = 3
	// DefaultBatchEntries is how many index entries a scan collects before it
	// commits them, so a huge first scan does not hold everything in memory.
	DefaultBatchEntries = 10_000
	// MaxResultPaths caps ScanResult.ChangedPaths.
	MaxResultPaths = 10_000
	// hashQueueDepth is how many files may wait for a hashing worker.
	hashQueueDepth = 256
)

// Errors of a scan. Per-file ones arrive in ScanResult.Errors as PathErrors.
var (
	// ErrRootNotDir: the folder root is missing or not a directory.
	ErrRootNotDir = errors.New("folder root is not a directory")
	// ErrFileChanging: the file changed every time it was hashed; its old
	// index entry is kept and the next scan tries again.
	ErrFileChanging = fmt.Errorf("file kept changing while being hashed (%d attempts)", MaxHashAttempts)
	// ErrUnsupportedType: a socket, device or named pipe; not synced.
	ErrUnsupportedType = errors.New("not a regular file, directory or symlink")
	// ErrNoDevice: ScanConfig.Device is empty.
	ErrNoDevice = errors.New("scan config has no device ID")
)

// PathError is a problem with one path that the scan skipped and went on.
type PathError struct {
	Path string // folder-relative, slash-separated
	Err  error
}

func (e PathError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e PathError) Unwrap() error { return e.Err }

// ScanConfig says what to scan and how.
type ScanConfig struct {
	Root    string   // the folder's directory on disk
	Device  DeviceID // this device: the author of every version the scan records
	Workers int      // hashing goroutines; 0 = GOMAXPROCS
	// BatchEntries is how many entries are committed at once; 0 =
	// DefaultBatchEntries. Entries of one scan may land in several commits;
	// tombstones are only written once the whole walk succeeded.
	BatchEntries int
	// Rehash reads every file even when its size, mtime, inode and mode match
	// the index: for paths reported stale (their content no longer matches
	// the index although their metadata does).
	Rehash bool
	// MayChange, if set, guards shared versions (those carrying a
	// signature): a change to or deletion of such a path is recorded only if
	// MayChange accepts it. A refused path keeps its indexed version and is
	// listed in ScanResult.Refused, for the caller to keep the user's bytes
	// aside and restore the shared file (a read-only member's edit).
	MayChange func(path string) bool
	// RequireMarker makes the scan fail with ErrMarkerMissing, recording no
	// deletion, when the folder marker (MarkerName) is not in Root: an
	// unmounted disk or a deleted folder must not read as "every file deleted".
	RequireMarker bool
	// LocalMode, if set, maps the permission bits found on disk to the ones
	// recorded: a folder that made a file read-only itself (a lock held by
	// someone else) hands back the write bits it removed, so its own chmod
	// never reads as a change.
	LocalMode func(path string, perm uint32) uint32
	// Progress, if set, is called every ScanProgressInterval while the scan
	// runs (from a goroutine of its own) and once when it ends, with what is
	// hashed so far against what the walk queued for hashing until then
	// (both grow while the walk goes on), so a UI can show a long scan move.
	Progress func(ScanProgress)

	// afterHash, when set (tests only), runs after a file was hashed and
	// before it is stat'ed again to check it did not change meanwhile.
	afterHash func(rel string, attempt int)
}

// ScanProgressInterval is how often ScanConfig.Progress is called.
const ScanProgressInterval = 250 * time.Millisecond

// ScanProgress is how far a running scan is with its hashing.
type ScanProgress struct {
	FilesToHash, FilesHashed int
	BytesToHash, BytesHashed int64
}

// ScanResult is what one scan saw and did.
type ScanResult struct {
	New, Changed, Deleted, Unchanged int // entries recorded as new, changed, tombstoned; seen unchanged
	Files, Dirs, Symlinks            int // entries present on disk among those scanned
	Ignored                          int // entries skipped by ignore rules
	FilesHashed                      int
	BytesHashed                      int64
	Errors                           []PathError     // per-file problems; the scan went on
	CaseCollisions                   []CaseCollision // siblings that are one file on Windows/macOS
	// ChangedPaths lists the paths recorded as new, changed or deleted, up to
	// MaxResultPaths (ChangedPathsTruncated then says more were).
	ChangedPaths          []string
	ChangedPathsTruncated bool
	// Refused lists the paths whose change MayChange refused.
	Refused  []string
	Duration time.Duration
}

func (c *ScanConfig) validate() error {
	if c.Device == "" {
		return ErrNoDevice
	}
	st, err := os.Stat(c.Root)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRootNotDir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s", ErrRootNotDir, c.Root)
	}
	return nil
}

// Scan scans the whole folder and records every difference from the index in
// it: new and changed entries as new local versions, vanished ones as
// tombstones. Unchanged files (same size, mtime, inode and mode) are not read.
func Scan(ctx context.Context, cfg ScanConfig, idx *FolderIndex) (ScanResult, error) {
	return ScanPaths(ctx, cfg, idx, []string{""})
}

// ScanPaths scans only the given folder-relative paths ("" is the root): a
// directory with everything below it, a file or symlink on its own, and a
// path that no longer exists becomes a tombstone together with everything the
// index has below it. Directories above a path that the index lacks are
// recorded too.
func ScanPaths(ctx context.Context, cfg ScanConfig, idx *FolderIndex, paths []string) (ScanResult, error) {
	start := time.Now()
	if err := cfg.validate(); err != nil {
		return ScanResult{}, err
	}
	s := &scanner{
		cfg:     cfg,
		idx:     idx,
		ig:      NewIgnorer(cfg.Root),
		results: make(chan scanned, hashQueueDepth),
		jobs:    make(chan hashJob, hashQueueDepth),
	}
	if s.cfg.Workers <= 0 {
		s.cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if s.cfg.BatchEntries <= 0 {
		s.cfg.BatchEntries = DefaultBatchEntries
	}
	if err := s.checkMarker(); err != nil {
		return ScanResult{}, err
	}
	touched, bad := touchedRoots(paths)
	s.res.Errors = append(s.res.Errors, bad...)
	if cfg.Progress != nil {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.reportProgress(stop)
		}()
		defer func() { close(stop); <-done }()
	}
	err := s.run(ctx, touched)
	if err == nil {
		s.keepKnown()
	}
	s.res.Errors = append(s.res.Errors, s.ig.takeErrors()...)
	s.res.Duration = time.Since(start)
	s.res.BytesHashed = s.bytesHashed.Load()
	return s.res, err
}

// reportProgress calls cfg.Progress every ScanProgressInterval until stop
// closes, then once more.
func (s *scanner) reportProgress(stop <-chan struct{}) {
	t := time.NewTicker(ScanProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.cfg.Progress(s.progress())
			return
		case <-t.C:
			s.cfg.Progress(s.progress())
		}
	}
}

func (s *scanner) progress() ScanProgress {
	return ScanProgress{
		FilesToHash: int(s.filesQueued.Load()), FilesHashed: int(s.filesDone.Load()),
		BytesToHash: s.bytesQueued.Load(), BytesHashed: s.bytesHashed.Load(),
	}
}

// touchedRoots cleans paths, drops invalid ones (returned as errors), and
// keeps only the outermost of nested ones, sorted.
func touchedRoots(paths []string) ([]string, []PathError) {
	var out []string
	var bad []PathError
	for _, p := range paths {
		p = strings.Trim(path.Clean("/"+filepath.ToSlash(p)), "/")
		if p != "" {
			if err := ValidatePath(p); err != nil {
				bad = append(bad, PathError{Path: p, Err: err})
				continue
			}
		}
		out = append(out, p)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 && isUnder(p, kept[len(kept)-1]) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, bad
}

// isUnder reports whether p is dir or below it ("" is the root, above all).
func isUnder(p, dir string) bool {
	return dir == "" || p == dir || (strings.HasPrefix(p, dir) && p[len(dir)] == '/')
}

// known is what the scanner needs of an index entry to decide whether the
// path changed; the full record is read only for changed paths.
type known struct {
	kind    Kind
	deleted bool
	size    int64
	modTime int64
	inode   uint64
	mode    uint32
	target  string
}

// entryStat is what the scanner needs of a stat: enough to tell two states
// of a file apart without reading it.
type entryStat struct {
	mode                fs.FileMode // type bits and permissions
	size                int64
	modTime, changeTime int64 // Unix nanoseconds
	inode, dev          uint64
}

func (s entryStat) isDir() bool { return s.mode.IsDir() }

// errBecameSymlink: the file being hashed was replaced by a symlink.
var errBecameSymlink = errors.New("became a symlink")

// scanned is one entry the walker or a hashing worker decided to record.
type scanned struct {
	fi       FileInfo // Kind, Size, Mode, ModTime, Inode, Dev, SymlinkTarget, Chunks
	prev     *known   // nil: the index had nothing at fi.Path
	keepData bool     // metadata-only change of a file: reuse the indexed chunks
	vanished bool     // the file went away before it was hashed
	err      error    // per-file error: nothing is recorded
}

type hashJob struct {
	rel  string
	prev *known
}

type scanner struct {
	cfg ScanConfig
	idx *FolderIndex
	ig  *Ignorer

	// Owned by the walker goroutine until it returns.
	known      knownSet // index entries under the touched paths; those not seen on disk are gone
	errPrefix  []string // directories that could not be read: nothing below is tombstoned
	collisions []CaseCollision
	siblings   map[string]map[string][]string // ScanPaths: directory -> fold key -> names
	walkRes    ScanResult                     // counts the walker keeps
	dirs       *dirLoader                     // reads directories ahead of the walk
	knownWait  chan error                     // while set, the index pass filling known is still running
	knownAll   bool                           // known holds the whole folder's entries as of knownGen
	knownGen   uint64                         // the index's write count known is current for

	jobs    chan hashJob
	results chan scanned

	bytesHashed atomic.Int64
	filesQueued atomic.Int64 // files sent to the hashers (progress)
	bytesQueued atomic.Int64 // their sizes when stat'ed (progress)
	filesDone   atomic.Int64 // files the hashers finished (progress)
	res         ScanResult   // owned by the collector (the calling goroutine)
	batch       *Batch       // owned by the collector
	vanished    []vanishedEntry
}

// vanishedEntry is an indexed file that went away between the walk and its
// hashing.
type vanishedEntry struct {
	path string
	k    known
}

func (s *scanner) run(ctx context.Context, touched []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(s.jobs)
		return s.walk(gctx, touched)
	})
	var workers errgroup.Group
	for range s.cfg.Workers {
		workers.Go(func() error {
			for j := range s.jobs {
				r := s.hash(gctx, j)
				s.filesDone.Add(1)
				select {
				case s.results <- r:
				case <-gctx.Done():
					// Drain so the walker never blocks on a full queue.
				}
			}
			return nil
		})
	}
	go func() {
		workers.Wait()
		close(s.results)
	}()
	collectErr := s.collect(gctx)
	if collectErr != nil {
		// Unblock the walker and the workers, then wait for them.
		g.Go(func() error { return collectErr })
		for range s.results {
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The walker is done: its state is ours now.
	s.res.Files += s.walkRes.Files
	s.res.Dirs += s.walkRes.Dirs
	s.res.Symlinks += s.walkRes.Symlinks
	s.res.Ignored += s.walkRes.Ignored
	s.res.Unchanged += s.walkRes.Unchanged
	s.res.Errors = append(s.res.Errors, s.walkRes.Errors...)
	s.res.CaseCollisions = s.collisions
	return s.tombstones()
}

// collect records what the walker and the workers send, committing every
// BatchEntries entries; it returns when results is closed or on an error.
func (s *scanner) collect(ctx context.Context) error {
	s.batch = s.idx.Batch()
	for r := range s.results {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.err != nil {
			s.res.Errors = append(s.res.Errors, PathError{Path: r.fi.Path, Err: r.err})
			continue
		}
		if r.vanished {
			if r.prev != nil {
				s.vanished = append(s.vanished, vanishedEntry{r.fi.Path, *r.prev})
			}
			continue // tombstoned below
		}
		if r.fi.Kind == KindFile && !r.keepData {
			s.res.FilesHashed++
		}
		if err := s.record(r); err != nil {
			return err
		}
	}
	return nil
}

// record puts one new or changed entry into the batch.
func (s *scanner) record(r scanned) error {
	fi := r.fi
	if r.prev != nil {
		old, ok, err := s.idx.Get(fi.Path)
		if err != nil {
			return fmt.Errorf("reading index entry %q: %w", fi.Path, err)
		}
		if ok {
			fi.Version = old.Version
			if r.keepData {
				fi.Chunks = old.Chunks
			}
			if sameEntry(old, fi) {
				s.res.Unchanged++ // re-hashed (Rehash) and found as indexed
				return nil
			}
			if s.refuse(old) {
				return nil
			}
		}
	}
	if r.prev == nil || r.prev.deleted {
		s.res.New++
	} else {
		s.res.Changed++
	}
	return s.put(fi)
}

// checkMarker returns ErrMarkerMissing when the folder needs its marker and
// the marker is gone.
func (s *scanner) checkMarker() error {
	if !s.cfg.RequireMarker {
		return nil
	}
	if st, err := os.Stat(filepath.Join(s.cfg.Root, MarkerName)); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: %w", s.cfg.Root, ErrMarkerMissing)
	}
	return nil
}

// localMode is the permission bits to record for rel (ScanConfig.LocalMode).
func (s *scanner) localMode(rel string, perm uint32) uint32 {
	if s.cfg.LocalMode == nil {
		return perm
	}
	return s.cfg.LocalMode(rel, perm)
}

// refuse reports whether a change to the shared version old must not be
// recorded (ScanConfig.MayChange), noting the path in the result if so.
func (s *scanner) refuse(old FileInfo) bool {
	if s.cfg.MayChange == nil || old.Deleted || len(old.Signature) == 0 || s.cfg.MayChange(old.Path) {
		return false
	}
	s.res.Refused = append(s.res.Refused, old.Path)
	return true
}

// sameEntry reports whether the scanned fi records exactly what old does.
func sameEntry(old, fi FileInfo) bool {
	return !old.Deleted && old.Kind == fi.Kind && old.Size == fi.Size && old.Mode == fi.Mode &&
		old.ModTime == fi.ModTime && old.Inode == fi.Inode && old.SymlinkTarget == fi.SymlinkTarget &&
		slices.EqualFunc(old.Chunks, fi.Chunks, func(a, b ChunkRef) bool { return a.Size == b.Size && a.CID.Equals(b.CID) })
}

func (s *scanner) put(fi FileInfo) error {
	s.batch.PutLocal(fi, s.cfg.Device)
	if len(s.res.ChangedPaths) < MaxResultPaths {
		s.res.ChangedPaths = append(s.res.ChangedPaths, fi.Path)
	} else {
		s.res.ChangedPathsTruncated = true
	}
	if s.batch.Len() >= s.cfg.BatchEntries {
		if err := s.batch.Commit(); err != nil {
			return fmt.Errorf("committing scan batch: %w", err)
		}
		s.batch = s.idx.Batch()
	}
	return nil
}

// tombstones records every index entry under the touched paths that the walk
// did not see, unless it is ignored or below a directory that could not be
// read, then commits.
func (s *scanner) tombstones() error {
	var gone []string
	for _, v := range s.vanished {
		s.known.put(v.path, v.k)
	}
	s.known.remaining(func(p string, k known) {
		if k.deleted || s.ig.Ignored(p, k.kind == KindDir) {
			return
		}
		if slices.ContainsFunc(s.errPrefix, func(d string) bool { return isUnder(p, d) }) {
			return
		}
		gone = append(gone, p)
	})
	slices.Sort(gone)
	if len(gone) > 0 {
		// The disk may have gone away during the walk: look again before
		// recording a single deletion.
		if err := s.checkMarker(); err != nil {
			return err
		}
	}
	for _, p := range gone {
		old, ok, err := s.idx.Get(p)
		if err != nil {
			return fmt.Errorf("reading index entry %q: %w", p, err)
		}
		if !ok || old.Deleted || s.refuse(old) {
			continue
		}
		s.res.Deleted++
		if err := s.put(FileInfo{Path: p, Kind: old.Kind, Deleted: true, Version: old.Version, ModTime: old.ModTime}); err != nil {
			return err
		}
	}
	if s.batch.Len() == 0 {
		return nil
	}
	if err := s.batch.Commit(); err != nil {
		return fmt.Errorf("committing scan batch: %w", err)
	}
	return nil
}

// walk visits every touched path, sending what changed to the collector and
// files to hash to the workers.
func (s *scanner) walk(ctx context.Context, touched []string) error {
	s.dirs = newDirLoader(s)
	defer s.dirs.close()
	ancestors := make(map[string]bool)
	for _, p := range touched {
		if p == "" {
			// The index pass and the first directories' stats overlap: the
			// walk needs known only once it visits the root's entries.
			s.dirs.queue("")
			s.knownWait = make(chan error, 1)
			go func() { s.knownWait <- s.loadKnown(p) }()
			err := s.walkDir(ctx, "")
			if s.knownWait != nil { // walkDir failed before it waited
				<-s.knownWait
				s.knownWait = nil
			}
			if err != nil {
				return err
			}
			continue
		}
		if err := s.loadKnown(p); err != nil {
			return err
		}
		info, err := lstatPath(s.abs(p))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue // gone: tombstoned with everything below
		}
		if err != nil {
			s.walkRes.Errors = append(s.walkRes.Errors, PathError{Path: p, Err: err})
			s.errPrefix = append(s.errPrefix, p)
			continue
		}
		if s.ig.Ignored(p, info.isDir()) {
			s.walkRes.Ignored++
			continue
		}
		if err := s.ensureAncestors(ctx, p, ancestors); err != nil {
			return err
		}
		if err := s.collideWithSiblings(p); err != nil {
			s.walkRes.Errors = append(s.walkRes.Errors, PathError{Path: path.Dir(p), Err: err})
		}
		if err := s.visit(ctx, p, info, true); err != nil {
			return err
		}
	}
	return nil
}

// loadKnown reads the index headers under p into known. For the whole
// folder, it takes the last full scan's copy instead if no write to the
// index came since (keepKnown).
func (s *scanner) loadKnown(p string) error {
	if p == "" {
		s.knownAll, s.knownGen = true, s.idx.gen.Load() // before the copy is checked or the index read
		if c := s.idx.scanKnown.Swap(nil); c != nil && c.gen == s.knownGen {
			s.known = c.set
			s.known.reset()
			return nil
		}
	}
	if err := s.known.load(s.idx, p); err != nil {
		return fmt.Errorf("reading index under %q: %w", p, err)
	}
	return nil
}

// awaitKnown waits for the index pass that walk started alongside the root's
// listing, if it is still running.
func (s *scanner) awaitKnown() error {
	if s.knownWait == nil {
		return nil
	}
	err := <-s.knownWait
	s.knownWait = nil
	return err
}

// ensureAncestors records the directories above p that the index lacks.
func (s *scanner) ensureAncestors(ctx context.Context, p string, done map[string]bool) error {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		dir := p[:i]
		if done[dir] {
			continue
		}
		done[dir] = true
		fi, ok, err := s.idx.Get(dir)
		if err != nil {
			return fmt.Errorf("reading index entry %q: %w", dir, err)
		}
		if ok && !fi.Deleted && fi.Kind == KindDir {
			continue
		}
		info, err := lstatPath(s.abs(dir))
		if err != nil || !info.isDir() {
			continue // raced with a removal; a later scan sorts it out
		}
		if ok {
			s.known.put(dir, known{kind: fi.Kind, deleted: fi.Deleted, mode: fi.Mode})
		}
		if err := s.visit(ctx, dir, info, false); err != nil {
			return err
		}
	}
	return nil
}

// collideWithSiblings flags case collisions between p and its siblings. Each
// directory is listed once per scan, and each collision reported once, however
// many of its paths were touched.
func (s *scanner) collideWithSiblings(p string) error {
	dir, name := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	groups, ok := s.siblings[dir]
	if !ok {
		f, err := os.Open(s.abs(dir))
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		slices.Sort(names)
		groups = make(map[string][]string, len(names))
		for _, n := range names {
			if !s.ig.ignoredEntry(joinRel(dir, n), n, false) {
				k := foldKey(n)
				groups[k] = append(groups[k], n)
			}
		}
		if s.siblings == nil {
			s.siblings = make(map[string]map[string][]string)
		}
		s.siblings[dir] = groups
	}
	key := foldKey(name)
	same := groups[key]
	if len(same) < 2 {
		return nil
	}
	delete(groups, key) // reported once
	s.collisions = append(s.collisions, caseCollisions(dir, same)...)
	return nil
}

func (s *scanner) abs(rel string) string {
	if rel == "" {
		return s.cfg.Root
	}
	return filepath.Join(s.cfg.Root, filepath.FromSlash(rel))
}

// walkDir visits the entries of directory rel and recurses into directories.
func (s *scanner) walkDir(ctx context.Context, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := s.dirs.take(rel)
	if err := d.err; err != nil {
		if rel == "" {
			return fmt.Errorf("reading folder root: %w", err)
		}
		s.walkRes.Errors = append(s.walkRes.Errors, PathError{Path: rel, Err: err})
		s.errPrefix = append(s.errPrefix, rel)
		return nil
	}
	s.ig.sawDir(rel, slices.ContainsFunc(d.entries, func(e dirEntry) bool { return e.name == IgnoreFileName }))
	paths := childPaths(rel, d.entries)
	// Both filtered in place: the i-th kept entry was at i or after.
	children := paths[:0]
	kept := d.entries[:0]
	var subdirs []string
	var rules dirRules
	rulesLoaded := false
	for i, e := range d.entries {
		child := paths[i]
		if !rulesLoaded && !IsBuiltinIgnored(e.name) {
			// Looked up at the first entry that needs them, as
			// ignoredEntry would: an ignore file is read on first use.
			rules, rulesLoaded = s.ig.rulesFor(rel), true
		}
		if rules.ignored(child, e.name, e.isDir) {
			s.walkRes.Ignored++
			continue
		}
		if err := validateChild(child, e.name); err != nil {
			s.walkRes.Errors = append(s.walkRes.Errors, PathError{Path: child, Err: err})
			s.errPrefix = append(s.errPrefix, child)
			continue
		}
		children = append(children, child)
		kept = append(kept, e)
		if e.err == nil && e.st.isDir() {
			subdirs = append(subdirs, child)
		}
	}
	s.dirs.queue(subdirs...)
	if err := s.awaitKnown(); err != nil {
		return err
	}
	for i, child := range children {
		info, err := kept[i].st, kept[i].err
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.walkRes.Errors = append(s.walkRes.Errors, PathError{Path: child, Err: err})
			s.errPrefix = append(s.errPrefix, child)
			continue
		}
		if err := s.visit(ctx, child, info, true); err != nil {
			return err
		}
	}
	s.collisions = append(s.collisions, entryCollisions(rel, kept)...)
	releaseEntries(d.entries) // kept aliases it; nothing else does
	return nil
}

// entryCollisions is caseCollisions of the entries' names, without a slice
// of them in the common case where none can collide.
func entryCollisions(rel string, entries []dirEntry) []CaseCollision {
	if len(entries) < 2 || !slices.ContainsFunc(entries, func(e dirEntry) bool { return !allPlainASCII([]string{e.name}) }) {
		return nil
	}
	names := make([]string, len(entries))
	for i := range entries {
		names[i] = entries[i].name
	}
	return caseCollisions(rel, names)
}

// childPaths returns the folder-relative path of every entry of directory
// rel, all in one allocation.
func childPaths(rel string, entries []dirEntry) []string {
	paths := make([]string, len(entries))
	if rel == "" {
		for i := range entries {
			paths[i] = entries[i].name
		}
		return paths
	}
	size := 0
	for i := range entries {
		size += len(rel) + 1 + len(entries[i].name)
	}
	var b strings.Builder
	b.Grow(size)
	for i := range entries {
		b.WriteString(rel)
		b.WriteByte('/')
		b.WriteString(entries[i].name)
	}
	all := b.String() // not written again: the paths may alias it
	off := 0
	for i := range entries {
		n := len(rel) + 1 + len(entries[i].name)
		paths[i] = all[off : off+n]
		off += n
	}
	return paths
}

// validateChild is ValidatePath for the entry name of a directory whose own
// path was already validated.
func validateChild(child, name string) error {
	if len(child) == len(name) {
		return ValidatePath(child) // at the root: drive letters and the like
	}
	if len(child) > MaxPathLength {
		return fmt.Errorf(errInvalidPathTemplate, child, ErrPathTooLong)
	}
	if err := validateComponent(name); err != nil {
		return fmt.Errorf(errInvalidPathTemplate, child, err)
	}
	return nil
}

// visit decides what to do with one entry present on disk, and recurses into
// directories if recurse is set.
func (s *scanner) visit(ctx context.Context, rel string, st entryStat, recurse bool) error {
	k, had := s.known.take(rel) // what is not taken by the end of the walk is gone
	// prev copies k to the heap only for entries that are sent on: an
	// unchanged one (nearly all of them on a rescan) costs no allocation.
	prev := func() *known {
		if !had {
			return nil
		}
		c := k
		return &c
	}
	fi := FileInfo{Path: rel, Mode: s.localMode(rel, uint32(st.mode.Perm())), ModTime: st.modTime, Inode: st.inode, Dev: st.dev}
	live := had && !k.deleted
	switch mode := st.mode; {
	case mode.IsDir():
		s.walkRes.Dirs++
		fi.Kind = KindDir
		if live && k.kind == KindDir && k.mode == fi.Mode {
			s.walkRes.Unchanged++
		} else if err := s.send(ctx, scanned{fi: fi, prev: prev()}); err != nil {
			return err
		}
		if !recurse {
			return nil
		}
		return s.walkDir(ctx, rel)
	case mode&fs.ModeSymlink != 0:
		s.walkRes.Symlinks++
		target, err := os.Readlink(s.abs(rel))
		if err != nil {
			s.walkRes.Errors = append(s.walkRes.Errors, PathError{Path: rel, Err: err})
			return nil
		}
		fi.Kind, fi.SymlinkTarget = KindSymlink, filepath.ToSlash(target)
		if live && k.kind == KindSymlink && k.target == fi.SymlinkTarget {
			s.walkRes.Unchanged++
			return nil
		}
		return s.send(ctx, scanned{fi: fi, prev: prev()})
	case mode.IsRegular():
		s.walkRes.Files++
		fi.Kind, fi.Size = KindFile, st.size
		if !s.cfg.Rehash && live && k.kind == KindFile && k.size == fi.Size && k.modTime == fi.ModTime && k.inode == fi.Inode {
			if k.mode == fi.Mode {
				s.walkRes.Unchanged++
				return nil
			}
			return s.send(ctx, scanned{fi: fi, prev: prev(), keepData: true})
		}
		s.filesQueued.Add(1) // before the send: a hasher may finish it at once
		s.bytesQueued.Add(st.size)
		select {
		case s.jobs <- hashJob{rel: rel, prev: prev()}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	default:
		s.walkRes.Errors = append(s.walkRes.Errors, PathError{Path: rel, Err: ErrUnsupportedType})
		return nil
	}
}

func (s *scanner) send(ctx context.Context, r scanned) error {
	select {
	case s.results <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hash reads and chunks one file, retrying while it changes underneath.
func (s *scanner) hash(ctx context.Context, j hashJob) scanned {
	abs := s.abs(j.rel)
	for attempt := 1; attempt <= MaxHashAttempts; attempt++ {
		if ctx.Err() != nil {
			return scanned{fi: FileInfo{Path: j.rel}, err: ctx.Err()}
		}
		fi, stable, err := s.hashOnce(abs, j.rel, attempt)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return scanned{fi: FileInfo{Path: j.rel}, prev: j.prev, vanished: true}
		case err != nil:
			return scanned{fi: FileInfo{Path: j.rel}, err: err}
		case stable:
			return scanned{fi: fi, prev: j.prev}
		}
	}
	return scanned{fi: FileInfo{Path: j.rel}, err: ErrFileChanging}
}

// hashOnce hashes the file at abs once. stable is false when the file
// changed between the stat before and the stat after.
func (s *scanner) hashOnce(abs, rel string, attempt int) (fi FileInfo, stable bool, err error) {
	f, err := openNoFollow(abs)
	if err != nil {
		if errors.Is(err, errBecameSymlink) {
			return FileInfo{}, false, nil // not what we are hashing: retried, then reported
		}
		return FileInfo{}, false, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return FileInfo{}, false, err
	}
	if !before.Mode().IsRegular() {
		return FileInfo{}, false, nil
	}
	var n int64
	var chunks []ChunkRef
	err = HashChunks(f, func(c Chunk, _ []byte) error {
		chunks = append(chunks, ChunkRef{CID: c.CID, Size: uint32(c.Length)})
		n += int64(c.Length)
		s.bytesHashed.Add(int64(c.Length)) // as it goes: progress of a large file
		return nil
	})
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return FileInfo{}, false, fmt.Errorf("hashing: %w", err)
	}
	if s.cfg.afterHash != nil {
		s.cfg.afterHash(rel, attempt)
	}
	after, err := os.Lstat(abs)
	if err != nil {
		return FileInfo{}, false, err
	}
	b, a := statFromInfo(before), statFromInfo(after)
	if b != a || n != b.size {
		return FileInfo{}, false, nil
	}
	return FileInfo{Path: rel, Kind: KindFile, Size: n, Mode: s.localMode(rel, uint32(before.Mode().Perm())),
		ModTime: b.modTime, Inode: b.inode, Dev: b.dev, Chunks: chunks}, true, nil
}
