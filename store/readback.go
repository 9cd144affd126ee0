package store

// Reading chunks back from the files of a folder, with verification. The
// folder on disk is the data: the chunk map only says where a chunk was when
// its file was scanned. A file changed behind the index's back (between a
// scan and a read) no longer holds the chunk, and serving its bytes would
// serve data that does not match the CID asked for, so every read is
// verified, and a failed one reports the path as stale so the file gets
// rescanned.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
)

// ErrChunkChanged is wrapped by a *ChunkChangedError: the file no longer
// holds the chunk where the index says it does.
var ErrChunkChanged = errors.New("store: chunk changed on disk")

// ErrChunkNotFound: no current file of the folder holds the chunk.
var ErrChunkNotFound = errors.New("store: chunk not in index")

// ErrChunkNotAllowed: the chunk is only in files the caller's filter refused.
var ErrChunkNotAllowed = errors.New("store: chunk only in files the reader may not read")

// ChunkChangedError reports a file that no longer holds a chunk at its
// recorded place: it is shorter, gone, or its bytes there hash to something
// else. It wraps ErrChunkChanged and the cause (ErrChunkMismatch,
// io.ErrUnexpectedEOF, fs.ErrNotExist...).
type ChunkChangedError struct {
	Path  string  // the file, relative to the folder root
	CID   cid.Cid // the chunk asked for
	Cause error
}

func (e *ChunkChangedError) Error() string {
	return fmt.Sprintf("store: chunk %s of %q changed on disk: %v", e.CID, e.Path, e.Cause)
}

// Unwrap returns ErrChunkChanged and the cause.
func (e *ChunkChangedError) Unwrap() []error { return []error{ErrChunkChanged, e.Cause} }

// SetStaleHandler sets the function called with the path of every file that
// ReadChunk found changed on disk (nil: none). It is called synchronously from
// ReadChunk, so it must be quick and must not call back into ReadChunk; a
// scanner typically queues a rescan of the path.
func (f *FolderIndex) SetStaleHandler(h func(path string)) {
	if h == nil {
		f.stale.Store(nil)
		return
	}
	f.stale.Store(&h)
}

func (f *FolderIndex) reportStale(path string) {
	if h := f.stale.Load(); h != nil {
		(*h)(path)
	}
}

// ReadChunk reads chunk c from the file at its recorded place under root and
// verifies it against c. When several files hold the chunk, it tries each in
// turn and returns the first that verifies. Each file found changed (short,
// gone, or holding other bytes) is reported to the stale handler; if none
// verifies, the error is a *ChunkChangedError (wrapping ErrChunkChanged) for
// the last one tried. A chunk the index does not know is ErrChunkNotFound.
// Files are opened through os.Root, so a symlink planted under root cannot
// redirect a read outside it (that file is reported changed). A missing root
// is a plain error and reports nothing stale.
func (f *FolderIndex) ReadChunk(root string, c cid.Cid) ([]byte, error) {
	return f.ReadChunkFrom(root, c, nil)
}

// ReadChunkFrom is ReadChunk restricted to the files whose path allowed
// accepts (nil accepts all): a server reads a chunk only from a file the
// requester may read. If the chunk is known but only in refused files, the
// error wraps ErrChunkNotAllowed.
func (f *FolderIndex) ReadChunkFrom(root string, c cid.Cid, allowed func(path string) bool) ([]byte, error) {
	return f.ReadChunkInto(root, c, allowed, nil)
}

// ReadChunkInto is ReadChunkFrom reading into buf when the chunk fits in its
// capacity (the result then aliases buf), so a server can reuse its buffers.
func (f *FolderIndex) ReadChunkInto(root string, c cid.Cid, allowed func(path string) bool, buf []byte) ([]byte, error) {
	all, err := f.ChunkLocations(c)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: %s in folder %q", ErrChunkNotFound, c, f.id)
	}
	locs := all
	if allowed != nil {
		locs = nil
		for _, l := range all {
			if allowed(l.Path) {
				locs = append(locs, l)
			}
		}
		if len(locs) == 0 {
			return nil, fmt.Errorf("%w: %s in folder %q", ErrChunkNotAllowed, c, f.id)
		}
	}
	// The root itself must be there: a missing or unreadable folder (an
	// unmounted disk) says nothing about its files, and reporting them stale
	// would make a rescan record them deleted.
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("store: read chunk %s: %w", c, err)
	}
	defer r.Close()
	var lastErr error
	for _, loc := range locs {
		data, err := readChunkAt(r, loc, c, buf)
		if err == nil {
			return data, nil
		}
		var changed *ChunkChangedError
		if errors.As(err, &changed) {
			f.reportStale(loc.Path)
		}
		lastErr = err
	}
	return nil, lastErr
}

// readChunkAt reads and verifies one recorded place of chunk c, into buf
// if it has the capacity.
func readChunkAt(root *os.Root, loc ChunkLocation, c cid.Cid, buf []byte) ([]byte, error) {
	changed := func(cause error) error { return &ChunkChangedError{Path: loc.Path, CID: c, Cause: cause} }
	name := filepath.FromSlash(loc.Path)
	if !filepath.IsLocal(name) {
		return nil, corruptf("chunk map path %q is not local to the folder", loc.Path)
	}
	file, err := root.Open(name)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("store: read chunk %s: %w", c, err)
	}
	if err != nil {
		// Gone, a directory on the way replaced by a file, or a symlink
		// that would lead out of the root: the file is not what was scanned.
		return nil, changed(err)
	}
	defer file.Close()
	var data []byte
	if int64(cap(buf)) >= int64(loc.Length) {
		data = buf[:loc.Length]
	} else {
		data = make([]byte, loc.Length)
	}
	n, err := file.ReadAt(data, loc.Offset)
	if n < len(data) {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, changed(io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("store: read chunk %s from %q: %w", c, loc.Path, err)
	}
	if err := VerifyChunk(c, data); err != nil {
		return nil, changed(err)
	}
	return data, nil
}
