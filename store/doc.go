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
// What does not: anything about peers, the network or the rights log. store
// imports nothing from meshfold's other packages; node/, protocol/ and
// simulations/ import it.
package store
