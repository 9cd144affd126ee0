package store

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unsafe"

	"github.com/syndtr/goleveldb/leveldb/opt"
)

// knownEntry is one index entry under the touched paths.
type knownEntry struct {
	path string
	known
	seen bool // found on disk by this scan
}

// knownSet holds the index entries under the paths a scan touches: what the
// walker compares each entry on disk with, and, once the walk is done, what it
// did not find (tombstones).
//
// It is a list in the index's own order (paths by bytes), filled by the
// index pass without a map: for a warm rescan of 10,000 files, building a
// map of them (and growing it) cost more CPU than everything the walker does
// with it, most of all in a new process whose heap starts small. The walker
// visits a directory's entries in that same order, so a look-up first tries
// the slot after the previous hit, and only then searches.
type knownSet struct {
	// blocks hold the entries, knownBlock to a block but the last, so the
	// list grows without copying (a slice doubling would allocate about
	// twice the final size); n is how many there are.
	blocks   [][]knownEntry
	n        int
	unsorted bool             // appended out of order (several touched paths); sorted before the first look-up
	next     int              // where the next look-up tries first
	added    map[string]known // put during the walk for paths not in the list
	// arena holds the paths of the entries load added, back to back: one
	// allocation per knownArena bytes instead of one per path. Bytes once
	// written are never written again (the paths alias them).
	arena []byte
}

// maxKeptKnown is the largest folder (in index entries) whose entries a
// FolderIndex keeps in memory between full scans: about 100 bytes each, so
// at most ~20 MB, for a periodic rescan to skip reading the index. A larger
// folder's rescan reads the index each time.
const maxKeptKnown = 200_000

// knownCache is a full scan's copy of a folder's index entries, current as
// long as FolderIndex.gen is gen.
type knownCache struct {
	gen uint64
	set knownSet
}

// keepKnown leaves the entries of a full scan that ended well with the
// index for the next full scan, if no write to the index came since they
// were read (a scan that recorded anything wrote): then they are still
// exactly what the index holds.
func (s *scanner) keepKnown() {
	if !s.knownAll || s.known.n > maxKeptKnown || len(s.known.added) > 0 || s.idx.gen.Load() != s.knownGen {
		return
	}
	s.idx.scanKnown.Store(&knownCache{gen: s.knownGen, set: s.known})
}

// reset makes every entry unseen again, for another scan.
func (k *knownSet) reset() {
	for _, b := range k.blocks {
		for i := range b {
			b[i].seen = false
		}
	}
	k.next = 0
	clear(k.added)
}

// knownArena is the size of one block of knownSet.arena.
const knownArena = 64 << 10

// fullScanRead is how the index pass reads: a walk of every entry once,
// which would otherwise fill goleveldb's block cache with blocks read
// once (allocating a new buffer for each) instead of reusing one.
var fullScanRead = &opt.ReadOptions{DontFillCache: true}

// load appends the header of every index entry under prefix, in index
// order, decoding each record in place: only the path is copied (into the
// arena), and the symlink target of a symlink.
func (k *knownSet) load(idx *FolderIndex, prefix string) error {
	var d decoder
	return idx.walkRecords(prefix, fullScanRead, func(path, value []byte) error {
		d = decoder{b: value, what: "file info"}
		h := decodeHeaderFields(&d)
		if d.err != nil {
			return fmt.Errorf("folder %q path %q: %w", idx.id, path, d.err)
		}
		if !bytes.Equal(h.path, path) {
			return corruptf("folder %q: record under path %q names path %q", idx.id, path, h.path)
		}
		v := known{kind: h.kind, deleted: h.deleted, size: h.size, modTime: h.modTime, inode: h.inode, mode: h.mode}
		if len(h.target) > 0 {
			v.target = string(h.target)
		}
		k.add(k.intern(path), v)
		return nil
	})
}

// intern copies p into the arena and returns it as a string.
func (k *knownSet) intern(p []byte) string {
	if len(k.arena)+len(p) > cap(k.arena) {
		k.arena = make([]byte, 0, max(knownArena, len(p)))
	}
	start := len(k.arena)
	k.arena = append(k.arena, p...)
	return unsafe.String(&k.arena[start], len(p))
}

// knownBlock is how many entries one block of a knownSet holds.
const knownBlock = 1024

func (k *knownSet) at(i int) *knownEntry { return &k.blocks[i/knownBlock][i%knownBlock] }

// add appends an index entry; the index pass calls it in index order.
func (k *knownSet) add(path string, v known) {
	if k.n > 0 && k.at(k.n-1).path >= path {
		k.unsorted = true
	}
	if k.n%knownBlock == 0 {
		k.blocks = append(k.blocks, make([]knownEntry, 0, knownBlock))
	}
	last := &k.blocks[len(k.blocks)-1]
	*last = append(*last, knownEntry{path: path, known: v})
	k.n++
}

// sort puts the entries in path order (rare: only ScanPaths with several
// touched paths appends out of order).
func (k *knownSet) sort() {
	all := make([]knownEntry, 0, k.n)
	for _, b := range k.blocks {
		all = append(all, b...)
	}
	slices.SortFunc(all, func(a, b knownEntry) int { return strings.Compare(a.path, b.path) })
	k.blocks = k.blocks[:0]
	for i := 0; i < len(all); i += knownBlock {
		end := min(i+knownBlock, len(all))
		k.blocks = append(k.blocks, all[i:end:end])
	}
	k.unsorted = false
}

// put records path as known and not seen yet, replacing what was there.
func (k *knownSet) put(path string, v known) {
	if i := k.find(path); i >= 0 {
		e := k.at(i)
		e.known, e.seen = v, false
		return
	}
	if k.added == nil {
		k.added = make(map[string]known)
	}
	k.added[path] = v
}

// take returns the entry at path and marks it seen, so that it is no
// longer among the remaining ones; ok is false if there is none (or it was
// taken already).
func (k *knownSet) take(path string) (v known, ok bool) {
	if len(k.added) > 0 {
		if v, ok := k.added[path]; ok {
			delete(k.added, path)
			return v, true
		}
	}
	i := k.find(path)
	if i < 0 {
		return known{}, false
	}
	e := k.at(i)
	if e.seen {
		return known{}, false
	}
	e.seen = true
	return e.known, true
}

// find returns the position of path in the list, or -1.
func (k *knownSet) find(path string) int {
	if k.unsorted {
		k.sort()
	}
	if i := k.next; i < k.n && k.at(i).path == path {
		k.next = i + 1
		return i
	}
	i := sort.Search(k.n, func(i int) bool { return k.at(i).path >= path })
	k.next = i
	if i == k.n || k.at(i).path != path {
		return -1
	}
	k.next = i + 1
	return i
}

// remaining calls fn with every entry not taken.
func (k *knownSet) remaining(fn func(path string, v known)) {
	for _, b := range k.blocks {
		for i := range b {
			if e := &b[i]; !e.seen {
				fn(e.path, e.known)
			}
		}
	}
	for p, v := range k.added {
		fn(p, v)
	}
}
