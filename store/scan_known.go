package store

import (
	"slices"
	"strings"
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
// It is a slice in the index's own order (paths by bytes), filled by the
// index pass without a map: for a warm rescan of 10,000 files, building a
// map of them (and growing it) cost more CPU than everything the walker does
// with it, most of all in a new process whose heap starts small. The walker
// visits a directory's entries in that same order, so a look-up first tries
// the slot after the previous hit, and only then searches.
type knownSet struct {
	list     []knownEntry
	unsorted bool             // appended out of order (several touched paths); sorted before the first look-up
	next     int              // where the next look-up tries first
	added    map[string]known // put during the walk for paths not in list
}

// add appends an index entry; the index pass calls it in index order.
func (k *knownSet) add(path string, v known) {
	if n := len(k.list); n > 0 && k.list[n-1].path >= path {
		k.unsorted = true
	}
	k.list = append(k.list, knownEntry{path: path, known: v})
}

// put records path as known and not seen yet, replacing what was there.
func (k *knownSet) put(path string, v known) {
	if i := k.find(path); i >= 0 {
		k.list[i].known, k.list[i].seen = v, false
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
	if i < 0 || k.list[i].seen {
		return known{}, false
	}
	k.list[i].seen = true
	return k.list[i].known, true
}

// find returns the index of path in list, or -1.
func (k *knownSet) find(path string) int {
	if k.unsorted {
		slices.SortFunc(k.list, func(a, b knownEntry) int { return strings.Compare(a.path, b.path) })
		k.unsorted = false
	}
	if i := k.next; i < len(k.list) && k.list[i].path == path {
		k.next = i + 1
		return i
	}
	i, found := slices.BinarySearchFunc(k.list, path, func(e knownEntry, p string) int { return strings.Compare(e.path, p) })
	k.next = i
	if !found {
		return -1
	}
	k.next = i + 1
	return i
}

// remaining calls fn with every entry not taken.
func (k *knownSet) remaining(fn func(path string, v known)) {
	for i := range k.list {
		if e := &k.list[i]; !e.seen {
			fn(e.path, e.known)
		}
	}
	for p, v := range k.added {
		fn(p, v)
	}
}
