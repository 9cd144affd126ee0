package store

// The index: one goleveldb database per node home, holding for every folder
// the current version of each path, an index of those versions per author
// device and sequence, a chunk map, per-author sequence records, the raw ops
// of the folder's rights log, and (per node) known peer addresses.
//
// Key layout. Every key starts with a one-byte key space; folder IDs are
// length-prefixed (uvarint length, then the bytes), so one folder's keys never
// run into another's whose ID it prefixes. lp(x) below is uvarint len(x) || x.
//
//	0x01 file   | lp(folder) | path                          -> FileInfo record (codec.go)
//	0x02 seq    | lp(folder) | lp(author) | seq (8 bytes BE)  -> path record
//	0x03 chunk  | lp(folder) | lp(CID bytes) | path           -> chunk location record
//	0x04 meta   | lp(folder) | author                        -> sequence record
//	0x05 log op | lp(folder) | op id                         -> raw op record (logstore.go)
//	0x06 peer   | peer id                                   -> address list record (peers.go)
//
//   - file: the current version of each path, tombstones included. Paths sort
//     bytewise; Walk returns them in that order.
//   - seq: one entry per current version, under its author and sequence; a
//     version replaced at its path loses its entry, so "every current version
//     author D made from sequence N on" is one range scan (Since). The
//     big-endian sequence makes key order sequence order.
//   - chunk: one entry per (chunk, path) pair of every current file version,
//     with the chunk's offset and length in that file (a chunk repeated
//     within one file is recorded at its last place). Several paths may hold
//     the same chunk; replacing or deleting one path's version removes only
//     that path's entries.
//   - meta: the highest sequence ever stored for an author in the folder. It
//     cannot be read from the seq entries alone: when another device's version
//     replaces an author's latest one, that entry goes, but its sequence
//     number must never be handed out again.
//
// Every value starts with a format version byte (codec.go). All writes of
// one Batch are a single goleveldb write, synced to disk.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
)

// ErrInvalidFolder is returned by every method of a FolderIndex or LogStore
// made for an empty or over-long folder ID.
var ErrInvalidFolder = errors.New("store: invalid folder ID")

// DB is the one goleveldb database of a node home. It is safe for concurrent
// use; Close it once when done.
type DB struct {
	ldb *leveldb.DB

	// commitMu serialises Commit: a commit reads the versions it replaces
	// and writes their removal, which must not interleave with another.
	commitMu sync.Mutex

	mu      sync.Mutex
	folders map[string]*FolderIndex
}

// Open opens (creating if needed) the one goleveldb database of a node home:
// dir is a directory.
func Open(dir string) (*DB, error) {
	ldb, err := leveldb.OpenFile(dir, levelOptions())
	if err != nil {
		return nil, translate("open "+dir, err)
	}
	return newDB(ldb), nil
}

// OpenMemory opens a database held in memory only, for tests and simulations
// of many nodes in one process. It behaves exactly as one on disk, minus
// durability.
func OpenMemory() (*DB, error) {
	ldb, err := leveldb.Open(storage.NewMemStorage(), levelOptions())
	if err != nil {
		return nil, translate("open in memory", err)
	}
	return newDB(ldb), nil
}

func newDB(ldb *leveldb.DB) *DB {
	return &DB{ldb: ldb, folders: make(map[string]*FolderIndex)}
}

// Close closes the database. Every later call on it or on its folders returns
// ErrClosed.
func (db *DB) Close() error {
	return translate("close", db.ldb.Close())
}

// Folder returns the index of one folder (folderID is an opaque non-empty
// string, e.g. a CID string). Every call with the same ID returns the same
// *FolderIndex, so the stale handler and sequence counters are shared.
func (db *DB) Folder(folderID string) *FolderIndex {
	db.mu.Lock()
	defer db.mu.Unlock()
	if f, ok := db.folders[folderID]; ok {
		return f
	}
	f := &FolderIndex{
		db:       db,
		id:       folderID,
		filePfx:  folderPrefix(ksFile, folderID),
		seqPfx:   folderPrefix(ksSeq, folderID),
		chunkPfx: folderPrefix(ksChunk, folderID),
		metaPfx:  folderPrefix(ksMeta, folderID),
		reserved: make(map[DeviceID]uint64),
	}
	if folderID == "" || len(folderID) > MaxFolderIDLength {
		f.err = fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidFolder, len(folderID), MaxFolderIDLength)
	}
	db.folders[folderID] = f
	return f
}

// FolderIndex is the index of one folder. It is safe for concurrent use.
type FolderIndex struct {
	db  *DB
	id  string
	err error // non-nil for an invalid folder ID

	filePfx, seqPfx, chunkPfx, metaPfx []byte

	seqMu    sync.Mutex
	reserved map[DeviceID]uint64 // highest sequence handed out by PutLocal, per device

	stale atomic.Pointer[func(path string)]

	// gen counts the writes to the folder's file entries (Batch.Commit,
	// DropFolder): a copy of the entries taken at one count is current for as
	// long as the count stays.
	gen atomic.Uint64
	// scanKnown is the last full scan's copy of the entries, for the next
	// full scan to reuse while gen allows (scan_known.go).
	scanKnown atomic.Pointer[knownCache]
}

// ID returns the folder ID.
func (f *FolderIndex) ID() string { return f.id }

// Get returns the current version of path (tombstones included); ok is false
// when the index has none.
func (f *FolderIndex) Get(path string) (fi FileInfo, ok bool, err error) {
	if f.err != nil {
		return FileInfo{}, false, f.err
	}
	return f.getFile(f.db.ldb, path)
}

func (f *FolderIndex) getFile(r reader, path string) (FileInfo, bool, error) {
	v, ok, err := get(r, "get file", fileKey(f.filePfx, path))
	if err != nil || !ok {
		return FileInfo{}, false, err
	}
	fi, err := decodeFileInfo(v)
	if err != nil {
		return FileInfo{}, false, fmt.Errorf("folder %q path %q: %w", f.id, path, err)
	}
	if fi.Path != path {
		return FileInfo{}, false, corruptf("folder %q: record under path %q names path %q", f.id, path, fi.Path)
	}
	return fi, true, nil
}

// Walk calls fn with every current entry (tombstones included) whose path is
// prefix or below it ("" = all; a trailing slash is ignored), in bytewise
// path order, from one consistent snapshot. An error from fn stops the walk
// and is returned as is.
func (f *FolderIndex) Walk(prefix string, fn func(FileInfo) error) error {
	return f.walk(prefix, decodeFileInfo, fn)
}

// WalkHeaders is Walk for callers that need only what a scan compares with
// the disk: each FileInfo holds Path, Kind, Deleted, Size, Mode, ModTime,
// Inode, Dev and SymlinkTarget, and nothing else. It skips decoding chunk
// lists and vectors, which is most of the cost of a warm rescan's index pass.
func (f *FolderIndex) WalkHeaders(prefix string, fn func(FileInfo) error) error {
	return f.walk(prefix, decodeFileInfoHeader, fn)
}

func (f *FolderIndex) walk(prefix string, decode func([]byte) (FileInfo, error), fn func(FileInfo) error) error {
	return f.walkRecords(prefix, nil, func(path, value []byte) error {
		fi, err := decode(value)
		if err != nil {
			return fmt.Errorf("folder %q path %q: %w", f.id, path, err)
		}
		if fi.Path != string(path) {
			return corruptf("folder %q: record under path %q names path %q", f.id, path, fi.Path)
		}
		return fn(fi)
	})
}

// walkRecords calls fn with the path (checked) and the raw record of every
// file entry that Walk visits, in the same order; both are only valid during
// the call. ro may be nil.
func (f *FolderIndex) walkRecords(prefix string, ro *opt.ReadOptions, fn func(path, value []byte) error) error {
	if f.err != nil {
		return f.err
	}
	prefix = strings.TrimRight(prefix, "/")
	it := f.db.ldb.NewIterator(nil, ro)
	defer it.Release()
	emit := func() error {
		// Every key in range starts with filePfx: the path is the rest,
		// compared without a copy (a warm rescan walks every entry).
		key := it.Key()
		if !bytes.HasPrefix(key, f.filePfx) {
			return fmt.Errorf("folder %q: %w", f.id, corruptf("key: wrong key space"))
		}
		path := key[len(f.filePfx):]
		if err := checkKeyPath(path); err != nil {
			return fmt.Errorf("folder %q: %w", f.id, err)
		}
		return fn(path, it.Value())
	}
	below := ""
	if prefix != "" {
		// The entry of prefix itself, then everything below it: "a/b" sorts
		// before "a/b/..." but siblings such as "a/b.txt" sort in between.
		exact := fileKey(f.filePfx, prefix)
		if it.Seek(exact) && bytes.Equal(it.Key(), exact) {
			if err := emit(); err != nil {
				return err
			}
		}
		below = prefix + "/"
	}
	start := fileKey(f.filePfx, below)
	limit := prefixEnd(start)
	for ok := it.Seek(start); ok && (limit == nil || bytes.Compare(it.Key(), limit) < 0); ok = it.Next() {
		if err := emit(); err != nil {
			return err
		}
	}
	return translate("walk", it.Error())
}

// Since calls fn with every current version made by author with Seq >=
// fromSeq, in Seq order: one range scan of the author index over one
// consistent snapshot. An error from fn stops it and is returned as is.
func (f *FolderIndex) Since(author DeviceID, fromSeq uint64, fn func(FileInfo) error) error {
	if f.err != nil {
		return f.err
	}
	snap, err := f.db.ldb.GetSnapshot()
	if err != nil {
		return translate("since", err)
	}
	defer snap.Release()
	pfx := seqPrefix(f.seqPfx, author)
	return scan(snap, "since", seqKey(f.seqPfx, author, fromSeq), prefixEnd(pfx), func(k, v []byte) error {
		_, a, seq, err := parseSeqKey(k)
		if err != nil {
			return fmt.Errorf("folder %q: %w", f.id, err)
		}
		if a != author {
			return corruptf("folder %q: author index key of %q in range of %q", f.id, a, author)
		}
		path, err := decodePathRecord(v)
		if err != nil {
			return fmt.Errorf("folder %q author %q seq %d: %w", f.id, author, seq, err)
		}
		fi, ok, err := f.getFile(snap, path)
		if err != nil {
			return err
		}
		if !ok || fi.Author != author || fi.Seq != seq {
			return corruptf("folder %q: author index entry %q/%d points at path %q which does not hold it", f.id, author, seq, path)
		}
		return fn(fi)
	})
}

// Sequence returns the highest Seq ever stored for author in this folder (0
// if none), whether or not that version is still current.
func (f *FolderIndex) Sequence(author DeviceID) (uint64, error) {
	if f.err != nil {
		return 0, f.err
	}
	return f.storedSeq(f.db.ldb, author)
}

func (f *FolderIndex) storedSeq(r reader, author DeviceID) (uint64, error) {
	v, ok, err := get(r, "sequence", metaKey(f.metaPfx, author))
	if err != nil || !ok {
		return 0, err
	}
	seq, err := decodeSeqRecord(v)
	if err != nil {
		return 0, fmt.Errorf("folder %q author %q: %w", f.id, author, err)
	}
	return seq, nil
}

// reserveSeq hands out the next sequence number of device d: one above both
// the highest stored and the highest handed out before.
func (f *FolderIndex) reserveSeq(d DeviceID) (uint64, error) {
	f.seqMu.Lock()
	defer f.seqMu.Unlock()
	cur, ok := f.reserved[d]
	if !ok {
		stored, err := f.storedSeq(f.db.ldb, d)
		if err != nil {
			return 0, err
		}
		cur = stored
	}
	cur++
	f.reserved[d] = cur
	return cur, nil
}

// noteSeq records that seq of device d was stored, so PutLocal never hands it
// out again.
func (f *FolderIndex) noteSeq(d DeviceID, seq uint64) {
	f.seqMu.Lock()
	defer f.seqMu.Unlock()
	if cur, ok := f.reserved[d]; ok && cur < seq {
		f.reserved[d] = seq
	}
}

// ChunkLocation is where a chunk can be read back: a byte range of a file of
// the folder.
type ChunkLocation struct {
	Path   string
	Offset int64
	Length uint32
}

// ChunkLocation returns one place where chunk c lives in the folder (the
// bytewise first path holding it); ok is false if no current file holds it.
func (f *FolderIndex) ChunkLocation(c cid.Cid) (loc ChunkLocation, ok bool, err error) {
	errStop := errors.New("stop")
	err = f.eachChunkLocation(f.db.ldb, c, func(l ChunkLocation) error {
		loc, ok = l, true
		return errStop
	})
	if err == errStop {
		err = nil
	}
	return loc, ok, err
}

// ChunkLocations returns every place where chunk c lives in the folder, one
// per path holding it, in bytewise path order.
func (f *FolderIndex) ChunkLocations(c cid.Cid) ([]ChunkLocation, error) {
	var locs []ChunkLocation
	err := f.eachChunkLocation(f.db.ldb, c, func(l ChunkLocation) error {
		locs = append(locs, l)
		return nil
	})
	return locs, err
}

func (f *FolderIndex) eachChunkLocation(r reader, c cid.Cid, fn func(ChunkLocation) error) error {
	if f.err != nil {
		return f.err
	}
	if !c.Defined() {
		return nil
	}
	want := c.KeyString()
	pfx := chunkPrefix(f.chunkPfx, want)
	return scan(r, "chunk location", pfx, prefixEnd(pfx), func(k, v []byte) error {
		_, got, path, err := parseChunkKey(k)
		if err != nil {
			return fmt.Errorf("folder %q: %w", f.id, err)
		}
		if got != want {
			return corruptf("folder %q: chunk map key of another CID in range", f.id)
		}
		off, length, err := decodeChunkLoc(v)
		if err != nil {
			return fmt.Errorf("folder %q chunk %s path %q: %w", f.id, c, path, err)
		}
		return fn(ChunkLocation{Path: path, Offset: off, Length: length})
	})
}
