// Package store is meshfold's local state on disk: it turns a folder into an
// index of file versions made of content-addressed chunks, and notices every
// change to it.
//
// What lives here: content-defined chunking and BLAKE3/CIDv1 addressing
// (chunker.go, cid.go), version vectors (vv.go), the goleveldb index
// (index*.go), the scanner (scan*.go), ignore rules and name validation
// (ignore.go, names.go), the watcher (watch*.go) and reading chunks back from
// files with verification (readback.go).
//
// A full scan compares every entry on disk with the index without reading
// unchanged files: directories are listed (getdents64 on Linux) and their
// entries lstat'ed relative to the directory's descriptor by read-ahead
// goroutines (scan_dirs.go), while one pass over the index headers fills a
// sorted list the walker looks entries up in (scan_known.go). A full scan
// that leaves the index as it found it keeps that list with the FolderIndex
// (up to maxKeptKnown entries, ~100 bytes each), and the next full scan
// reuses it instead of reading the index again, as long as no commit came in
// between (FolderIndex.gen): a daemon's periodic rescan of a quiet folder
// reads no index at all. It still stats every entry. What a warm rescan
// costs, and what it is measured against, is in BENCHMARKS.md ("Scanning").
//
// What does not: anything about peers, the network or the rights log. store
// imports nothing from meshfold's other packages; node/, protocol/ and
// simulations/ import it.
package store
