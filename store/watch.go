package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher defaults.
const (
	// DefaultDebounce is how long the watcher waits after the last change
	// before it scans the touched paths.
	DefaultDebounce = 250 * time.Millisecond
	// DefaultMaxDelay is the longest a change waits for its scan while
	// changes keep arriving.
	DefaultMaxDelay = 5 * time.Second
	// DefaultRescanInterval is how often the watcher scans the whole folder
	// anyway, in case an event was lost.
	DefaultRescanInterval = time.Hour
	// MaxPendingPaths is how many touched paths the watcher remembers; past
	// it, the next scan is a full one.
	MaxPendingPaths = 10_000
)

// WatchConfig configures a Watcher.
type WatchConfig struct {
	Scan           ScanConfig
	Debounce       time.Duration // 0 = DefaultDebounce
	MaxDelay       time.Duration // 0 = DefaultMaxDelay
	RescanInterval time.Duration // 0 = DefaultRescanInterval; negative = never
	// OnScan, if set, is called from the watcher's goroutine after every
	// scan. It must not block for long: the next scan waits for it.
	OnScan func(WatchEvent)
	// Lock, if set, is held during every scan. A caller that also writes to
	// the folder and the index (the sync engine applying remote changes)
	// holds it too, so a scan never sees a half-applied change as a local
	// edit.
	Lock sync.Locker
}

// WatchEvent reports one scan the watcher ran.
type WatchEvent struct {
	Full   bool     // a scan of the whole folder (start, safety net, lost events, ignore rules changed)
	Stale  bool     // a re-hash of paths the index reported stale
	Paths  []string // the touched paths scanned, for an incremental scan
	Result ScanResult
	Err    error // the scan failed (the watcher goes on)
	// Unwatched lists directories that could not be watched since the last
	// report (e.g. the inotify watch limit was reached): changes in them are
	// only seen by the periodic full rescan.
	Unwatched []PathError
}

// Watcher keeps a folder's index current: it watches the folder recursively
// with fsnotify, scans the paths that changed once they are quiet for the
// debounce time, rescans files the index reports stale, and scans the whole
// folder at start and every RescanInterval.
type Watcher struct {
	cfg WatchConfig
	idx *FolderIndex

	mu      sync.Mutex
	pending map[string]bool // touched paths
	stale   map[string]bool // paths to re-hash
	full    bool
	kick    chan struct{} // capacity 1: something is pending
	addErrs []PathError   // directories that could not be watched, not yet reported

	watched map[string]bool // directories watched; owned by Run's goroutine
}

// NewWatcher checks cfg and returns a Watcher; Run starts it.
func NewWatcher(cfg WatchConfig, idx *FolderIndex) (*Watcher, error) {
	if err := cfg.Scan.validate(); err != nil {
		return nil, err
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.RescanInterval == 0 {
		cfg.RescanInterval = DefaultRescanInterval
	}
	return &Watcher{
		cfg:     cfg,
		idx:     idx,
		pending: make(map[string]bool),
		stale:   make(map[string]bool),
		kick:    make(chan struct{}, 1),
		watched: make(map[string]bool),
	}, nil
}

// Run watches until ctx is done, then stops watching and returns ctx.Err().
// It returns earlier only if the folder cannot be watched at all.
func (w *Watcher) Run(ctx context.Context) error {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("starting file watcher: %w", err)
	}
	defer fsw.Close()
	ig := NewIgnorer(w.cfg.Scan.Root)
	if err := w.addTree(fsw, ig, ""); err != nil {
		return err
	}
	w.idx.SetStaleHandler(w.markStale)
	defer w.idx.SetStaleHandler(nil)
	w.queueFull() // watches are in place: nothing is missed from here on

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.scanLoop(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-fsw.Events:
			if !ok {
				return nil
			}
			ig = w.handle(fsw, ig, ev)
		case _, ok := <-fsw.Errors:
			if !ok {
				return nil
			}
			// Overflow or a read error: some events may be lost.
			w.queueFull()
		}
	}
}

// handle turns one fsnotify event into touched paths (and new watches). It
// returns the Ignorer to use from now on.
func (w *Watcher) handle(fsw *fsnotify.Watcher, ig *Ignorer, ev fsnotify.Event) *Ignorer {
	rel, err := filepath.Rel(w.cfg.Scan.Root, ev.Name)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ig
	}
	if rel == "." {
		w.queueFull() // the root itself changed (moved, removed, chmod)
		return ig
	}
	rel = filepath.ToSlash(rel)
	if path.Base(rel) == IgnoreFileName {
		// Rules changed: everything may be (un)ignored now.
		ig = NewIgnorer(w.cfg.Scan.Root)
		w.queueFull()
	}
	if (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) && w.watched[rel] {
		// A directory moved inside the folder would otherwise keep reporting
		// under its old name (inotify watches follow the inode); its new
		// name arrives as a Create and is watched afresh.
		for p := range w.watched {
			if isUnder(p, rel) {
				_ = fsw.Remove(filepath.Join(w.cfg.Scan.Root, filepath.FromSlash(p)))
				delete(w.watched, p)
			}
		}
	}
	info, statErr := os.Lstat(ev.Name)
	isDir := statErr == nil && info.IsDir()
	if ig.Ignored(rel, isDir) {
		return ig
	}
	if ev.Has(fsnotify.Create) && isDir {
		_ = w.addTree(fsw, ig, rel) // only the root's failure is an error, and rel is not the root
	}
	w.queuePath(rel)
	return ig
}

// addTree watches directory rel and every directory below it that is not
// ignored.
func (w *Watcher) addTree(fsw *fsnotify.Watcher, ig *Ignorer, rel string) error {
	root := w.cfg.Scan.Root
	start := filepath.Join(root, filepath.FromSlash(rel))
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && rel == "" {
				return fmt.Errorf("watching folder: %w", err)
			}
			return nil // vanished or unreadable: the scan reports it
		}
		if !d.IsDir() {
			return nil
		}
		r, _ := filepath.Rel(root, p)
		if r = filepath.ToSlash(r); r != "." && ig.Ignored(r, true) {
			return filepath.SkipDir
		}
		if err := fsw.Add(p); err != nil {
			if p == start && rel == "" {
				return fmt.Errorf("watching folder: %w", err)
			}
			if !errors.Is(err, fs.ErrNotExist) { // vanished: nothing to watch
				// E.g. out of inotify watches: keep going; the periodic full
				// rescan still sees changes there.
				w.mu.Lock()
				w.addErrs = append(w.addErrs, PathError{Path: r, Err: err})
				w.mu.Unlock()
			}
			return filepath.SkipDir
		}
		if r != "." {
			w.watched[r] = true
		}
		return nil
	})
}

func (w *Watcher) queuePath(rel string) {
	w.mu.Lock()
	if !w.full {
		w.pending[rel] = true
		if len(w.pending) > MaxPendingPaths {
			w.full = true
			clear(w.pending)
		}
	}
	w.mu.Unlock()
	w.signal()
}

// markStale is the index's stale handler: it may be called from any
// goroutine and never blocks.
func (w *Watcher) markStale(rel string) {
	w.mu.Lock()
	if len(w.stale) < MaxPendingPaths {
		w.stale[rel] = true
	} else {
		w.full = true
	}
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) queueFull() {
	w.mu.Lock()
	w.full = true
	clear(w.pending)
	w.mu.Unlock()
	w.signal()
}

func (w *Watcher) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// take returns and clears what is pending.
func (w *Watcher) take() (full bool, paths, stale []string, unwatched []PathError) {
	w.mu.Lock()
	defer w.mu.Unlock()
	full, w.full = w.full, false
	unwatched, w.addErrs = w.addErrs, nil
	for p := range w.pending {
		paths = append(paths, p)
	}
	for p := range w.stale {
		stale = append(stale, p)
	}
	clear(w.pending)
	clear(w.stale)
	slices.Sort(paths)
	slices.Sort(stale)
	return full, paths, stale, unwatched
}

// scanLoop waits for pending work, lets it settle for the debounce time, and
// scans it.
func (w *Watcher) scanLoop(ctx context.Context) {
	var rescan <-chan time.Time
	if w.cfg.RescanInterval > 0 {
		t := time.NewTicker(w.cfg.RescanInterval)
		defer t.Stop()
		rescan = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rescan:
			w.queueFull()
			continue
		case <-w.kick:
		}
		// Settle: wait until nothing new arrived for Debounce, or MaxDelay passed.
		first := time.Now()
		debounce.Reset(w.cfg.Debounce)
	settle:
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
				if time.Since(first) < w.cfg.MaxDelay {
					debounce.Reset(w.cfg.Debounce)
				}
			case <-debounce.C:
				break settle
			}
		}
		w.scan(ctx)
	}
}

func (w *Watcher) scan(ctx context.Context) {
	if w.cfg.Lock != nil {
		w.cfg.Lock.Lock()
		defer w.cfg.Lock.Unlock()
	}
	full, paths, stale, unwatched := w.take()
	report := func(ev WatchEvent) {
		ev.Unwatched, unwatched = unwatched, nil
		if ctx.Err() == nil && w.cfg.OnScan != nil {
			w.cfg.OnScan(ev)
		}
	}
	if full {
		res, err := Scan(ctx, w.cfg.Scan, w.idx)
		report(WatchEvent{Full: true, Result: res, Err: err})
	} else if len(paths) > 0 {
		res, err := ScanPaths(ctx, w.cfg.Scan, w.idx, paths)
		report(WatchEvent{Paths: paths, Result: res, Err: err})
	}
	if len(stale) > 0 {
		cfg := w.cfg.Scan
		cfg.Rehash = true
		res, err := ScanPaths(ctx, cfg, w.idx, stale)
		report(WatchEvent{Stale: true, Paths: stale, Result: res, Err: err})
	}
}
