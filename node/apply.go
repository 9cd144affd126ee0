package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/store"
)

// QuarantineDir is where versions voided by a revocation are kept, inside the
// folder marker directory (never scanned, never synced).
const QuarantineDir = store.MarkerName + "/quarantine"

// ErrLocalChange: the path changed on disk since it was last scanned, so the
// action was not applied; the next scan records the change and the next plan
// turns it into a conflict instead of an overwrite.
var ErrLocalChange = errors.New("local change not yet scanned")

// ChunkFetcher gets chunks from peers. deliver is called once per wanted CID
// with data already verified against it; it may be called concurrently.
type ChunkFetcher interface {
	Fetch(ctx context.Context, want []cid.Cid, deliver func(c cid.Cid, data []byte) error) error
}

// Applier executes plans on one folder on disk. Every file operation goes
// through an os.Root, so a path can never leave the folder, even through a
// symlink planted inside it.
type Applier struct {
	Root    *os.Root
	Index   *store.FolderIndex
	Fetcher ChunkFetcher
	Log     *slog.Logger
}

// ApplyResult says what an Apply did.
type ApplyResult struct {
	Applied      int
	BytesFetched int64
	BytesCopied  int64 // reused from chunks already on this device
	Skipped      []PathError
}

// PathError is an action that could not be applied, with why.
type PathError struct {
	Path string
	Err  error
}

func (e PathError) Error() string { return e.Path + ": " + e.Err.Error() }

// Apply executes actions in order. A failing action is reported in Skipped and
// does not stop the others; the index records only what was done, after the
// data and the directories holding it are durable.
func (a *Applier) Apply(ctx context.Context, actions []plan.Action) (ApplyResult, error) {
	var res ApplyResult
	batch := a.Index.Batch()
	dirty := make(map[string]bool) // directories whose entries changed: fsynced once each
	for _, act := range actions {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rec, err := a.applyOne(ctx, act, &res, dirty)
		if err != nil {
			if a.Log != nil {
				a.Log.Warn("not applied", "op", act.Op, "path", act.Want.Path, "err", err)
			}
			res.Skipped = append(res.Skipped, PathError{Path: act.Want.Path, Err: err})
			continue
		}
		for _, fi := range rec {
			batch.Put(fi)
		}
		res.Applied++
	}
	for dir := range dirty {
		if err := a.syncDir(dir); err != nil {
			return res, fmt.Errorf("making %q durable: %w", dir, err)
		}
	}
	if batch.Len() == 0 {
		return res, nil
	}
	return res, batch.Commit()
}

// applyOne does one action and returns the index records it makes true.
func (a *Applier) applyOne(ctx context.Context, act plan.Action, res *ApplyResult, dirty map[string]bool) ([]store.FileInfo, error) {
	want := act.Want
	if err := store.ValidatePath(want.Path); err != nil {
		return nil, err
	}
	switch act.Op {
	case plan.Record:
		return []store.FileInfo{a.withLocalStat(want)}, nil
	case plan.Quarantined:
		return nil, a.quarantine(ctx, want, res)
	case plan.Delete:
		if err := a.unchanged(want.Path); err != nil {
			return nil, err
		}
		if err := a.Root.Remove(want.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		dirty[path.Dir(want.Path)] = true
		return []store.FileInfo{want}, nil
	case plan.Move:
		if err := store.ValidatePath(act.From); err != nil {
			return nil, err
		}
		if err := a.unchanged(act.From); err != nil {
			return nil, err
		}
		if err := a.unchanged(want.Path); err != nil { // nothing unscanned where the file lands
			return nil, err
		}
		if err := a.Root.MkdirAll(path.Dir(want.Path), 0o755); err != nil {
			return nil, err
		}
		if err := a.Root.Rename(act.From, want.Path); err != nil {
			return nil, err
		}
		dirty[path.Dir(want.Path)], dirty[path.Dir(act.From)] = true, true
		if err := a.setMetaOn(want.Path, want); err != nil {
			return nil, err
		}
		return []store.FileInfo{a.withLocalStat(want)}, nil
	case plan.ConflictCopy:
		if err := store.ValidatePath(act.CopyName); err != nil {
			return nil, err
		}
		if err := a.unchanged(want.Path); err != nil {
			return nil, err
		}
		if err := a.Root.Rename(want.Path, act.CopyName); err != nil {
			return nil, fmt.Errorf("keeping the local version as %s: %w", act.CopyName, err)
		}
		dirty[path.Dir(want.Path)] = true
		return a.materialize(ctx, want, res, dirty)
	case plan.Fetch:
		if err := a.unchanged(want.Path); err != nil {
			return nil, err
		}
		return a.materialize(ctx, want, res, dirty)
	}
	return nil, fmt.Errorf("unknown action %v", act.Op)
}

// materialize makes want.Path hold want (a file, directory or symlink).
func (a *Applier) materialize(ctx context.Context, want store.FileInfo, res *ApplyResult, dirty map[string]bool) ([]store.FileInfo, error) {
	dir := path.Dir(want.Path)
	if err := a.Root.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	switch want.Kind {
	case store.KindDir:
		if st, err := a.Root.Lstat(want.Path); err == nil && !st.IsDir() {
			return nil, fmt.Errorf("%w: a non-directory is in the way", ErrLocalChange)
		}
		if err := a.Root.MkdirAll(want.Path, dirPerm(want.Mode)); err != nil {
			return nil, err
		}
		dirty[dir] = true
		return []store.FileInfo{a.withLocalStat(want)}, nil
	case store.KindSymlink:
		tmp := a.tempName(dir)
		if err := a.Root.Symlink(want.SymlinkTarget, tmp); err != nil {
			return nil, err
		}
		if err := a.replace(tmp, want.Path); err != nil {
			a.Root.Remove(tmp)
			return nil, err
		}
		dirty[dir] = true
		return []store.FileInfo{a.withLocalStat(want)}, nil
	case store.KindFile:
		tmp := a.tempName(dir)
		if err := a.assemble(ctx, tmp, want, res); err != nil {
			a.Root.Remove(tmp)
			return nil, err
		}
		if err := a.replace(tmp, want.Path); err != nil {
			a.Root.Remove(tmp)
			return nil, err
		}
		dirty[dir] = true
		return []store.FileInfo{a.withLocalStat(want)}, nil
	}
	return nil, fmt.Errorf("unknown kind %v", want.Kind)
}

// assemble writes want's content into tmp: chunks found on this device are
// copied (verified on read), the rest fetched (verified on arrival); then the
// file is fsynced and its mode and mtime set.
func (a *Applier) assemble(ctx context.Context, tmp string, want store.FileInfo, res *ApplyResult) error {
	f, err := a.Root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	written := make(map[string]int64)   // CID key -> offset it was written at
	pending := make(map[string][]int64) // CID key -> offsets still to fill
	var missing []cid.Cid
	var off int64
	for _, c := range want.Chunks {
		k := c.CID.KeyString()
		if first, ok := written[k]; ok { // repeated in this file: copy from ourselves
			buf := make([]byte, c.Size)
			if _, err := f.ReadAt(buf, first); err != nil {
				return err
			}
			if _, err := f.WriteAt(buf, off); err != nil {
				return err
			}
		} else if offs, ok := pending[k]; ok {
			pending[k] = append(offs, off)
		} else if data, ok := a.localChunk(c.CID); ok && len(data) == int(c.Size) {
			if _, err := f.WriteAt(data, off); err != nil {
				return err
			}
			written[k] = off
			res.BytesCopied += int64(len(data))
		} else {
			pending[k] = []int64{off}
			missing = append(missing, c.CID)
		}
		off += int64(c.Size)
	}
	if off != want.Size {
		return fmt.Errorf("chunk sizes add up to %d, version says %d", off, want.Size)
	}
	if len(missing) > 0 {
		if a.Fetcher == nil {
			return errors.New("chunks missing and no peer to fetch them from")
		}
		var mu sync.Mutex
		got := 0
		err := a.Fetcher.Fetch(ctx, missing, func(c cid.Cid, data []byte) error {
			if err := store.VerifyChunk(c, data); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			offs, ok := pending[c.KeyString()]
			if !ok {
				return fmt.Errorf("chunk %s was not asked for", c)
			}
			for _, o := range offs {
				if _, err := f.WriteAt(data, o); err != nil {
					return err
				}
			}
			delete(pending, c.KeyString())
			got++
			res.BytesFetched += int64(len(data))
			return nil
		})
		if err != nil {
			return fmt.Errorf("fetching %d chunks: %w", len(missing), err)
		}
		if got != len(missing) {
			return fmt.Errorf("fetched %d of %d chunks", got, len(missing))
		}
	}
	if err := f.Truncate(want.Size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return a.setMetaOn(tmp, want)
}

func (a *Applier) localChunk(c cid.Cid) ([]byte, bool) {
	data, err := a.Index.ReadChunk(a.Root.Name(), c)
	return data, err == nil
}

// unchanged returns ErrLocalChange when what is on disk at p is not what the
// index last recorded there: the user changed it and the scan has not seen it.
func (a *Applier) unchanged(p string) error {
	cur, known, err := a.Index.Get(p)
	if err != nil {
		return err
	}
	st, err := a.Root.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // nothing to overwrite
	case err != nil:
		return err
	case !known || cur.Deleted:
		return fmt.Errorf("%w: %s appeared", ErrLocalChange, p)
	case st.IsDir() && cur.Kind == store.KindDir:
		return nil
	case st.Size() != cur.Size || st.ModTime().UnixNano() != cur.ModTime || inode(st) != cur.Inode:
		return fmt.Errorf("%w: %s was modified", ErrLocalChange, p)
	}
	return nil
}

// replace renames tmp over p, checking again just before that p holds nothing
// the scan has not seen (a save between assembly and rename becomes a conflict).
func (a *Applier) replace(tmp, p string) error {
	if err := a.unchanged(p); err != nil {
		return err
	}
	return a.Root.Rename(tmp, p)
}

func (a *Applier) setMetaOn(p string, want store.FileInfo) error {
	if want.Kind != store.KindFile {
		return nil
	}
	if err := a.Root.Chmod(p, fs.FileMode(want.Mode)&fs.ModePerm); err != nil {
		return err
	}
	mt := time.Unix(0, want.ModTime)
	return a.Root.Chtimes(p, mt, mt)
}

// withLocalStat fills the local-only fields (inode, device, and the mtime the
// filesystem actually kept) so the next scan sees the file as unchanged.
func (a *Applier) withLocalStat(fi store.FileInfo) store.FileInfo {
	if fi.Deleted {
		return fi
	}
	if st, err := a.Root.Lstat(fi.Path); err == nil {
		fi.Inode = inode(st)
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			fi.Dev = uint64(s.Dev)
		}
		if fi.Kind == store.KindFile {
			fi.ModTime = st.ModTime().UnixNano()
		}
	}
	return fi
}

func (a *Applier) quarantine(ctx context.Context, want store.FileInfo, res *ApplyResult) error {
	if want.Deleted || want.Kind != store.KindFile {
		return nil
	}
	if err := a.Root.MkdirAll(QuarantineDir, 0o700); err != nil {
		return err
	}
	name := fmt.Sprintf("%s/%x-%d-%s", QuarantineDir, []byte(want.Author), want.Seq, path.Base(want.Path))
	if _, err := a.Root.Lstat(name); err == nil {
		return nil // kept already
	}
	tmp := a.tempName(QuarantineDir)
	if err := a.assemble(ctx, tmp, want, res); err != nil {
		a.Root.Remove(tmp)
		return err
	}
	return a.Root.Rename(tmp, name)
}

func (a *Applier) tempName(dir string) string {
	var b [8]byte
	rand.Read(b[:])
	return path.Join(dir, store.TempFilePrefix+hex.EncodeToString(b[:]))
}

func (a *Applier) syncDir(dir string) error {
	d, err := a.Root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func inode(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

func dirPerm(mode uint32) fs.FileMode {
	if m := fs.FileMode(mode) & fs.ModePerm; m != 0 {
		return m
	}
	return 0o755
}
