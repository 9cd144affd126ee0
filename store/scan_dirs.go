package store

import (
	"container/heap"
	"slices"
	"sync"
)

// Read-ahead of the directory walk.
const (
	// maxReadAheadDirs is how many directories the loader's goroutines may
	// have read and stat'ed (or be reading) ahead of the walk. It bounds the
	// memory the read-ahead holds: one listing per directory.
	maxReadAheadDirs = 64
	// statFanOutMin is the directory size from which one directory's entries
	// are stat'ed by several goroutines (smaller ones are spread across
	// directories by the loader instead).
	statFanOutMin = 512
)

// dirEntry is one entry of a directory listing, stat'ed.
type dirEntry struct {
	name  string
	isDir bool // stat'ed as a directory (for ignore rules)
	st    entryStat
	err   error // of the stat
}

// dirListing is one directory read and every entry stat'ed: the whole cost
// of a directory on a warm rescan, done off the walker's goroutine.
type dirListing struct {
	rel     string
	entries []dirEntry // sorted by name
	err     error      // opening or reading the directory failed

	// Guarded by dirLoader.mu.
	started  bool // a loader goroutine or the walker is reading it
	byWorker bool // counted in dirLoader.ahead
	index    int  // in dirLoader.pending while not started

	done chan struct{} // closed once entries and err are set
}

// dirLoader reads and stats directories ahead of the walker, on
// ScanConfig.Workers goroutines, nearest to the walk first: the walker is
// depth-first over sorted names, and the loader's queue is ordered the same
// way (dfsLess), so the listings it holds are the next ones the walk needs.
// Whatever the loader has not started, the walker reads itself: it never
// waits on a queue.
type dirLoader struct {
	s *scanner

	mu      sync.Mutex
	wake    *sync.Cond
	pending dirQueue               // queued, not started
	byRel   map[string]*dirListing // queued, started or done; not yet taken
	ahead   int                    // started by a loader goroutine, not yet taken
	closed  bool
	wg      sync.WaitGroup
}

func newDirLoader(s *scanner) *dirLoader {
	l := &dirLoader{s: s, byRel: make(map[string]*dirListing)}
	l.wake = sync.NewCond(&l.mu)
	for range max(1, s.cfg.Workers) {
		l.wg.Go(l.run)
	}
	return l
}

// queue asks for the directories rels to be read ahead.
func (l *dirLoader) queue(rels ...string) {
	if len(rels) == 0 {
		return
	}
	l.mu.Lock()
	for _, rel := range rels {
		if _, ok := l.byRel[rel]; ok {
			continue
		}
		d := &dirListing{rel: rel, done: make(chan struct{})}
		l.byRel[rel] = d
		heap.Push(&l.pending, d)
	}
	l.mu.Unlock()
	l.wake.Broadcast()
}

// take returns the listing of rel: the one read ahead, or read now.
func (l *dirLoader) take(rel string) *dirListing {
	l.mu.Lock()
	d := l.byRel[rel]
	delete(l.byRel, rel)
	self := d == nil || !d.started
	switch {
	case d == nil:
		d = &dirListing{rel: rel, done: make(chan struct{})}
	case !d.started:
		heap.Remove(&l.pending, d.index)
	}
	d.started = true
	if d.byWorker {
		l.ahead--
		l.wake.Signal()
	}
	l.mu.Unlock()
	if self {
		l.s.readDir(d)
		close(d.done)
	} else {
		<-d.done
	}
	return d
}

// run is one loader goroutine.
func (l *dirLoader) run() {
	for {
		l.mu.Lock()
		for !l.closed && (l.pending.Len() == 0 || l.ahead >= maxReadAheadDirs) {
			l.wake.Wait()
		}
		if l.closed {
			l.mu.Unlock()
			return
		}
		d := heap.Pop(&l.pending).(*dirListing)
		d.started, d.byWorker = true, true
		l.ahead++
		l.mu.Unlock()
		l.s.readDir(d)
		close(d.done)
	}
}

// close stops the loader goroutines (after the directory each is reading)
// and waits for them.
func (l *dirLoader) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wake.Broadcast()
	l.wg.Wait()
}

// readDir lists directory d.rel, sorts its entries by name and stats each.
func (s *scanner) readDir(d *dirListing) {
	dirPath := s.abs(d.rel)
	fd, names, closeDir, err := listDir(dirPath) // names only: the stat below has the type
	if err != nil {
		d.err = err
		return
	}
	defer closeDir()
	slices.Sort(names)
	entries := takeEntries(len(names))
	for i, n := range names {
		entries[i].name = n
	}
	stat := func(part []dirEntry) {
		for i := range part {
			e := &part[i]
			e.st, e.err = statAt(fd, dirPath, e.name)
			e.isDir = e.err == nil && e.st.isDir()
		}
	}
	n := s.cfg.Workers
	if n <= 1 || len(entries) < statFanOutMin {
		stat(entries)
		d.entries = entries
		return
	}
	var wg sync.WaitGroup
	per := (len(entries) + n - 1) / n
	for lo := per; lo < len(entries); lo += per {
		wg.Go(func() { stat(entries[lo:min(lo+per, len(entries))]) })
	}
	stat(entries[:per])
	wg.Wait()
	d.entries = entries
}

// entriesPool holds the entry slices of directories the walker is done
// with, for readDir to fill again: a rescan lists every directory of the
// folder, and most are the same size.
var entriesPool sync.Pool // of *[]dirEntry

// takeEntries returns a slice of n entries, each of whose fields readDir
// sets.
func takeEntries(n int) []dirEntry {
	if p, ok := entriesPool.Get().(*[]dirEntry); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]dirEntry, n)
}

// releaseEntries hands entries back for a later readDir; the caller keeps
// no reference to the slice (the names and errors in it may be kept).
func releaseEntries(entries []dirEntry) {
	if cap(entries) == 0 {
		return
	}
	entriesPool.Put(&entries)
}

// dfsLess orders folder-relative paths as a depth-first walk over sorted
// names visits them: a directory before what is below it, and what is below
// it before its next sibling ("a/z" before "a.b", as '/' sorts first).
func dfsLess(a, b string) bool {
	n := min(len(a), len(b))
	for i := range n {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return true
		}
		if y == '/' {
			return false
		}
		return x < y
	}
	return len(a) < len(b)
}

// dirQueue is a heap of listings not started yet, nearest to the walk first.
type dirQueue []*dirListing

func (q dirQueue) Len() int           { return len(q) }
func (q dirQueue) Less(i, j int) bool { return dfsLess(q[i].rel, q[j].rel) }
func (q dirQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *dirQueue) Push(x any) {
	d := x.(*dirListing)
	d.index = len(*q)
	*q = append(*q, d)
}
func (q *dirQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	d.index = -1
	return d
}
