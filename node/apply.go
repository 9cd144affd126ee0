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
	"strings"
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
// Under a context marked by deliverNotKept (the executor's), deliver keeps
// no data after it returns, so the fetcher may reuse its buffers.
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
	// FetcherVerifies says Fetcher keeps ChunkFetcher's promise itself
	// (the Folder's does: chunks.Fetch verifies every chunk on arrival and
	// local copies are read back verified), so the executor does not hash
	// every fetched chunk a second time. Unset, it verifies each one.
	FetcherVerifies bool
	Log             *slog.Logger
}

// ApplyResult says what an Apply did.
type ApplyResult struct {
	Applied      int
	BytesFetched int64
	BytesCopied  int64 // reused from chunks already on this device
	BytesDirect  int64 // fetched bytes written with O_DIRECT (apply_direct.go)
	Skipped      []PathError
}

// PathError is an action that could not be applied, with why.
type PathError struct {
	Path string
	Err  error
}

func (e PathError) Error() string { return e.Path + ": " + e.Err.Error() }

// Executor limits.
const (
	// maxStagedFiles bounds the files assembled at once: each holds an open
	// descriptor from its creation until its chunks arrived and it is synced.
	// Their missing chunks are fetched together, in one transfer.
	maxStagedFiles = 256
	// syncWorkers is how many files (or directories) are fsynced at once:
	// concurrent fsyncs share the filesystem's journal commits.
	syncWorkers = 16
)

// Apply executes actions in order. A failing action is reported in Skipped and
// does not stop the others; the index records only what was done, after the
// data and the directories holding it are durable.
//
// Files are staged: created under a temporary name and filled with the chunks
// already on this device, up to maxStagedFiles at a time; then the chunks they
// still lack are fetched in one transfer and written straight into every file
// that needs them, the files are fsynced together, and only then renamed into
// place (each after checking again that no unscanned local change is there);
// their directories are fsynced and the index batch committed after each such
// round, so memory stays bounded however long the plan.
// An action that removes or renames paths first completes the staged files,
// so actions still take effect in plan order.
func (a *Applier) Apply(ctx context.Context, actions []plan.Action) (ApplyResult, error) {
	var res ApplyResult
	r := &run{a: a, res: &res, dirty: map[string]bool{}, made: map[string]bool{}, batch: a.Index.Batch()}
	for _, act := range actions {
		if err := ctx.Err(); err != nil {
			r.discard()
			return res, err
		}
		if reorders(act) || len(r.staged) >= maxStagedFiles {
			if err := r.flush(ctx); err != nil {
				r.discard()
				return res, err
			}
		}
		if reorders(act) {
			clear(r.made) // a directory made earlier may be gone now
		}
		rec, staged, err := r.applyOne(ctx, act)
		if err != nil {
			r.skip(act.Want.Path, err)
			continue
		}
		if staged {
			continue
		}
		for _, fi := range rec {
			r.batch.Put(fi)
		}
		res.Applied++
	}
	if err := r.flush(ctx); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, r.commit()
}

// commit makes the directories whose entries changed durable, then records
// in the index what was done since the last commit.
func (r *run) commit() error {
	dirs := make([]string, 0, len(r.dirty))
	for dir := range r.dirty {
		dirs = append(dirs, dir)
	}
	errs := make([]error, len(dirs))
	parallel(len(dirs), func(i int) { errs[i] = r.a.syncDir(dirs[i]) })
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("making %q durable: %w", dirs[i], err)
		}
	}
	clear(r.dirty)
	if r.batch.Len() == 0 {
		return nil
	}
	err := r.batch.Commit()
	r.batch = r.a.Index.Batch()
	return err
}

// reorders: the action removes or renames paths, so the files staged before
// it must be in place first.
func reorders(act plan.Action) bool {
	switch act.Op {
	case plan.Delete, plan.Move, plan.ConflictCopy:
		return true
	case plan.Fetch:
		return act.Want.Kind == store.KindSymlink
	}
	return false
}

// run is the state of one Apply.
type run struct {
	a     *Applier
	res   *ApplyResult
	batch *store.Batch
	dirty map[string]bool // directories whose entries changed: fsynced once each
	made  map[string]bool // directories known to exist

	staged []*stagedFile
	wanted map[string][]chunkTarget // CID key -> where its bytes go
	order  []cid.Cid                // wanted CIDs, in first-seen order
	direct directPool               // run buffers of direct writes
}

// stagedFile is a file being assembled under a temporary name.
type stagedFile struct {
	want       store.FileInfo
	tmp, final string
	quarantine bool // kept aside: no index record, no local-change check
	f          *os.File
	pending    int // chunk writes still to come
	err        error
	direct     *directWriter // fetched chunks written with O_DIRECT, or nil
	noDirect   bool          // direct writes tried (or not worth it) for this file
}

type chunkTarget struct {
	s   *stagedFile
	off int64
}

func (r *run) skip(p string, err error) {
	if r.a.Log != nil {
		r.a.Log.Warn("not applied", "path", p, "err", err)
	}
	r.res.Skipped = append(r.res.Skipped, PathError{Path: p, Err: err})
}

func (r *run) mkdirAll(dir string, perm fs.FileMode) error {
	if r.made[dir] {
		return nil
	}
	if err := r.a.Root.MkdirAll(dir, perm); err != nil {
		return err
	}
	r.made[dir] = true
	return nil
}

// applyOne does one action and returns the index records it makes true, or
// staged when a file was staged (flush records it).
func (r *run) applyOne(ctx context.Context, act plan.Action) (recs []store.FileInfo, staged bool, err error) {
	a, want := r.a, act.Want
	if err := store.ValidatePath(want.Path); err != nil {
		return nil, false, err
	}
	switch act.Op {
	case plan.Record:
		return []store.FileInfo{a.withLocalStat(want)}, false, nil
	case plan.Quarantined:
		return r.quarantine(want)
	case plan.KeepCopy:
		return r.keepCopy(want, act.CopyName)
	case plan.Delete:
		if err := a.unchanged(want.Path); err != nil {
			return nil, false, err
		}
		if err := a.Root.Remove(want.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, false, err
		}
		r.dirty[path.Dir(want.Path)] = true
		return []store.FileInfo{want}, false, nil
	case plan.Move:
		if err := store.ValidatePath(act.From); err != nil {
			return nil, false, err
		}
		if err := a.unchanged(act.From); err != nil {
			return nil, false, err
		}
		if err := a.unchanged(want.Path); err != nil { // nothing unscanned where the file lands
			return nil, false, err
		}
		if err := r.mkdirAll(path.Dir(want.Path), 0o755); err != nil {
			return nil, false, err
		}
		if err := a.Root.Rename(act.From, want.Path); err != nil {
			return nil, false, err
		}
		r.dirty[path.Dir(want.Path)], r.dirty[path.Dir(act.From)] = true, true
		if err := a.setMetaOn(want.Path, want); err != nil {
			return nil, false, err
		}
		return []store.FileInfo{a.withLocalStat(want)}, false, nil
	case plan.ConflictCopy:
		if err := store.ValidatePath(act.CopyName); err != nil {
			return nil, false, err
		}
		if err := a.unchanged(want.Path); err != nil {
			return nil, false, err
		}
		if _, err := a.KeepAside(want.Path, act.CopyName); err != nil {
			return nil, false, fmt.Errorf("keeping the local version as %s: %w", act.CopyName, err)
		}
		r.dirty[path.Dir(want.Path)] = true
		return r.materialize(ctx, want)
	case plan.Fetch:
		if err := a.unchanged(want.Path); err != nil {
			return nil, false, err
		}
		return r.materialize(ctx, want)
	}
	return nil, false, fmt.Errorf("unknown action %v", act.Op)
}

// materialize makes want.Path hold want (a directory or symlink now, a file
// staged).
func (r *run) materialize(ctx context.Context, want store.FileInfo) ([]store.FileInfo, bool, error) {
	a := r.a
	dir := path.Dir(want.Path)
	if err := r.mkdirAll(dir, 0o755); err != nil {
		return nil, false, err
	}
	switch want.Kind {
	case store.KindDir:
		if st, err := a.Root.Lstat(want.Path); err == nil && !st.IsDir() {
			return nil, false, fmt.Errorf("%w: a non-directory is in the way", ErrLocalChange)
		}
		if err := a.Root.MkdirAll(want.Path, dirPerm(want.Mode)); err != nil {
			return nil, false, err
		}
		r.made[want.Path] = true
		r.dirty[dir] = true
		return []store.FileInfo{a.withLocalStat(want)}, false, nil
	case store.KindSymlink:
		tmp := a.tempName(dir)
		if err := a.Root.Symlink(want.SymlinkTarget, tmp); err != nil {
			return nil, false, err
		}
		if err := a.replace(tmp, want.Path); err != nil {
			a.Root.Remove(tmp)
			return nil, false, err
		}
		r.dirty[dir] = true
		return []store.FileInfo{a.withLocalStat(want)}, false, nil
	case store.KindFile:
		return nil, true, r.stage(want, a.tempName(dir), want.Path, false)
	}
	return nil, false, fmt.Errorf("unknown kind %v", want.Kind)
}

func (r *run) quarantine(want store.FileInfo) ([]store.FileInfo, bool, error) {
	a := r.a
	if want.Deleted || want.Kind != store.KindFile {
		return nil, false, nil
	}
	if err := r.mkdirAll(QuarantineDir, 0o700); err != nil {
		return nil, false, err
	}
	name := fmt.Sprintf("%s/%x-%d-%s", QuarantineDir, []byte(want.Author), want.Seq, path.Base(want.Path))
	if _, err := a.Root.Lstat(name); err == nil {
		return nil, false, nil // kept already
	}
	for _, s := range r.staged {
		if s.final == name {
			return nil, true, nil // staged already
		}
	}
	return nil, true, r.stage(want, a.tempName(QuarantineDir), name, true)
}

// keepCopy writes the bytes of want (a version that lost to a lock) at name,
// beside its path, without touching the path or recording anything: the next
// scan finds the copy as a new file. A name already taken means it was kept.
func (r *run) keepCopy(want store.FileInfo, name string) ([]store.FileInfo, bool, error) {
	if want.Deleted || want.Kind != store.KindFile {
		return nil, false, nil
	}
	if err := store.ValidatePath(name); err != nil {
		return nil, false, err
	}
	if _, err := r.a.Root.Lstat(name); err == nil {
		return nil, false, nil // kept already
	}
	for _, s := range r.staged {
		if s.final == name {
			return nil, true, nil
		}
	}
	dir := path.Dir(name)
	if err := r.mkdirAll(dir, 0o755); err != nil {
		return nil, false, err
	}
	return nil, true, r.stage(want, r.a.tempName(dir), name, true)
}

// stage creates tmp and writes into it the chunks of want found on this
// device (verified on read); the others are noted as wanted.
func (r *run) stage(want store.FileInfo, tmp, final string, quarantine bool) error {
	a := r.a
	f, err := a.Root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	s := &stagedFile{want: want, tmp: tmp, final: final, quarantine: quarantine, f: f}
	if err := r.fillLocal(s); err != nil {
		f.Close()
		a.Root.Remove(tmp)
		return err
	}
	r.staged = append(r.staged, s)
	return nil
}

func (r *run) fillLocal(s *stagedFile) error {
	if r.wanted == nil {
		r.wanted = map[string][]chunkTarget{}
	}
	written := make(map[string]int64) // CID key -> offset it was written at in this file
	var off int64
	var targets []chunkTarget // this file's wanted chunks, registered once all is well
	var keys []string         // their CID keys
	var newCIDs []cid.Cid
	seen := map[string]bool{}
	for _, c := range s.want.Chunks {
		k := c.CID.KeyString()
		if first, ok := written[k]; ok { // repeated in this file: copy from ourselves
			buf := make([]byte, c.Size)
			if _, err := s.f.ReadAt(buf, first); err != nil {
				return err
			}
			if _, err := s.f.WriteAt(buf, off); err != nil {
				return err
			}
		} else if _, ok := r.wanted[k]; ok || seen[k] {
			targets, keys = append(targets, chunkTarget{s, off}), append(keys, k)
			seen[k] = true
		} else if data, ok := r.a.localChunk(c.CID); ok && len(data) == int(c.Size) {
			if _, err := s.f.WriteAt(data, off); err != nil {
				return err
			}
			written[k] = off
			r.res.BytesCopied += int64(len(data))
		} else {
			targets, keys = append(targets, chunkTarget{s, off}), append(keys, k)
			seen[k] = true
			newCIDs = append(newCIDs, c.CID)
		}
		off += int64(c.Size)
	}
	if off != s.want.Size {
		return fmt.Errorf("chunk sizes add up to %d, version says %d", off, s.want.Size)
	}
	if len(targets) > 0 && r.a.Fetcher == nil {
		return errors.New("chunks missing and no peer to fetch them from")
	}
	for i, t := range targets {
		r.wanted[keys[i]] = append(r.wanted[keys[i]], t)
	}
	r.order = append(r.order, newCIDs...)
	s.pending = len(targets)
	return nil
}

// flush completes the staged files: fetches what they lack in one transfer,
// writing each chunk into every file that needs it, fsyncs them together,
// then renames each into place, and commits (so the index batch, like the
// staged files, stays bounded however long the plan).
func (r *run) flush(ctx context.Context) error {
	if len(r.staged) == 0 {
		return nil
	}
	staged, wanted, order := r.staged, r.wanted, r.order
	r.staged, r.wanted, r.order = nil, nil, nil
	if len(order) > 0 {
		var mu sync.Mutex
		// deliver copies every chunk and keeps nothing (fetch_buffers.go).
		err := r.fetch(deliverNotKept(ctx), staged, wanted, order, func(c cid.Cid, data []byte) error {
			var verr error
			if !r.a.FetcherVerifies {
				verr = store.VerifyChunk(c, data)
			}
			mu.Lock()
			defer mu.Unlock()
			targets, ok := wanted[c.KeyString()]
			if !ok {
				return fmt.Errorf("chunk %s was not asked for", c)
			}
			delete(wanted, c.KeyString())
			if verr == nil {
				r.res.BytesFetched += int64(len(data))
			}
			for _, t := range targets {
				if t.s.err != nil {
					continue
				}
				if verr != nil {
					t.s.err = verr // the file fails; the others go on
					continue
				}
				if err := t.s.writeFetched(r, data, t.off); err != nil {
					t.s.err = err
					continue
				}
				if t.s.pending--; t.s.pending == 0 {
					t.s.err = t.s.closeDirect(r)
				}
			}
			return nil
		})
		for _, s := range staged {
			if s.err == nil && s.pending > 0 {
				if err == nil {
					err = errors.New("the fetcher delivered only some of the chunks")
				}
				s.err = fmt.Errorf("fetching %d chunks: %w", s.pending, err)
			}
		}
	}
	for _, s := range staged {
		if err := s.closeDirect(r); s.err == nil {
			s.err = err
		}
	}
	r.direct.drain(r.res) // every direct write done, every direct descriptor closed
	for _, s := range staged {
		if err := s.directErr(); s.err == nil {
			s.err = err
		}
	}
	// Metadata first, so the fsync covers it too.
	parallel(len(staged), func(i int) {
		s := staged[i]
		if s.err == nil {
			s.err = r.a.finishFile(s)
		}
		if cerr := s.f.Close(); s.err == nil {
			s.err = cerr
		}
	})
	for _, s := range staged {
		if s.err == nil {
			if s.quarantine {
				s.err = r.a.Root.Rename(s.tmp, s.final)
			} else {
				s.err = r.a.replace(s.tmp, s.final)
			}
		}
		if s.err != nil {
			r.a.Root.Remove(s.tmp)
			r.skip(s.want.Path, s.err)
			continue
		}
		r.dirty[path.Dir(s.final)] = true
		if !s.quarantine {
			r.batch.Put(r.a.withLocalStat(s.want))
		}
		r.res.Applied++
	}
	return r.commit()
}

// finishFile sets a complete staged file's mode and mtime and fsyncs it.
func (a *Applier) finishFile(s *stagedFile) error {
	if err := s.f.Chmod(fs.FileMode(s.want.Mode) & fs.ModePerm); err != nil {
		return err
	}
	mt := time.Unix(0, s.want.ModTime)
	if err := a.Root.Chtimes(s.tmp, mt, mt); err != nil {
		return err
	}
	return s.f.Sync()
}

// discard removes the staged files of an Apply cut short.
func (r *run) discard() {
	for _, s := range r.staged {
		s.closeDirect(r)
	}
	r.direct.drain(r.res)
	for _, s := range r.staged {
		s.f.Close()
		r.a.Root.Remove(s.tmp)
	}
	r.staged, r.wanted, r.order = nil, nil, nil
}

// parallel runs fn(0..n-1) on up to syncWorkers goroutines.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, syncWorkers) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
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

// MaxConflictSuffix bounds the numbered variants KeepAside tries.
const MaxConflictSuffix = 1000

// KeepAside moves the file at p to name, or, if name is taken, to name with
// -2, -3, ... before its extension: a conflict copy never replaces another
// one (the same device can lose twice on one path within one second, and the
// planner's names have one-second resolution). It returns the name used. The
// caller holds the folder's disk lock, so no scan or apply races it.
func (a *Applier) KeepAside(p, name string) (string, error) {
	for n := 1; n <= MaxConflictSuffix; n++ {
		cand := name
		if n > 1 {
			cand = numbered(name, n)
		}
		if _, err := a.Root.Lstat(cand); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return cand, a.Root.Rename(p, cand)
	}
	return "", fmt.Errorf("no free name near %s", name)
}

// numbered inserts -n before name's extension ("a.sync-conflict-x.txt" ->
// "a.sync-conflict-x-2.txt"; a dotfile has no extension).
func numbered(name string, n int) string {
	dir, base := path.Split(name)
	ext := path.Ext(base)
	if ext == base {
		ext = ""
	}
	return fmt.Sprintf("%s%s-%d%s", dir, strings.TrimSuffix(base, ext), n, ext)
}
