package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/protocol/join"
	"github.com/meshfold/meshfold/protocol/state"
	"github.com/meshfold/meshfold/store"
)

// DaemonStateFile, in the node home, keeps the daemon's own switches across
// restarts (today: the global pause).
const DaemonStateFile = "daemon.json"

// Errors of folder management.
var (
	// ErrAmbiguousFolder: a folder name matches more than one folder.
	ErrAmbiguousFolder = errors.New("ambiguous folder")
	// ErrNotInFolder: a path lies outside every folder this device syncs.
	ErrNotInFolder = errors.New("not inside any folder this device syncs")
)

type daemonState struct {
	PausedAll bool `json:"paused_all"`
}

// folderRun is the state of a folder's runner goroutine. Guarded by Node.mu.
type folderRun struct {
	paused  bool // paused by itself (persisted in FoldersFile)
	cancel  context.CancelFunc
	stopped chan struct{}
}

// openDaemonState reads DaemonStateFile and prepares metrics and events.
func (n *Node) openDaemonState() error {
	n.metrics = newNodeMetrics(n)
	n.events = newEventHub()
	raw, err := os.ReadFile(filepath.Join(n.cfg.Home, DaemonStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", DaemonStateFile, err)
	}
	var st daemonState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("%s is corrupt: %w", DaemonStateFile, err)
	}
	n.pausedAll = st.PausedAll
	return nil
}

func (n *Node) saveDaemonState() error {
	n.mu.Lock()
	raw, err := json.Marshal(daemonState{PausedAll: n.pausedAll})
	n.mu.Unlock()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(n.cfg.Home, DaemonStateFile), raw, 0o600)
}

// startRunner starts the folder's runner unless it runs already.
func (f *Folder) startRunner() {
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if f.run.cancel != nil || n.ctx == nil || n.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(n.ctx)
	done := make(chan struct{})
	f.run.cancel, f.run.stopped = cancel, done
	f.setStatus(func(s *Status) { s.State, s.Err = "starting", "" })
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(done)
		f.supervise(ctx)
	}()
}

// stopRunner stops the folder's runner and waits until it has stopped.
func (f *Folder) stopRunner() {
	f.n.mu.Lock()
	cancel, done := f.run.cancel, f.run.stopped
	f.run.cancel, f.run.stopped = nil, nil
	f.n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Paused reports whether the folder is paused, by itself or by the global switch.
func (f *Folder) Paused() bool {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return f.run.paused || f.n.pausedAll
}

func (f *Folder) pausedStatus(s Status) Status {
	if f.Paused() {
		s.Paused = true
		s.State = "paused"
	}
	return s
}

// PauseFolder stops syncing one folder until ResumeFolder: it neither sends
// nor receives; local changes are picked up on resume. The pause survives a
// restart.
func (n *Node) PauseFolder(id string) error {
	f, ok := n.Folder(id)
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownFolder, id)
	}
	n.mu.Lock()
	f.run.paused = true
	n.mu.Unlock()
	f.stopRunner()
	n.log.Info("folder paused", "folder", shortFolder(id))
	return n.saveFolders()
}

// ResumeFolder undoes PauseFolder. While the global switch is on, the folder
// stays paused until ResumeAll.
func (n *Node) ResumeFolder(id string) error {
	f, ok := n.Folder(id)
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownFolder, id)
	}
	n.mu.Lock()
	f.run.paused = false
	all := n.pausedAll
	n.mu.Unlock()
	if err := n.saveFolders(); err != nil {
		return err
	}
	if !all {
		f.startRunner()
		n.log.Info("folder resumed", "folder", shortFolder(id))
	}
	return nil
}

// PauseAll is the global switch: every folder stops syncing, and folders
// added later start paused, until ResumeAll. It survives a restart.
func (n *Node) PauseAll() error {
	n.mu.Lock()
	n.pausedAll = true
	fs := n.folderListLocked()
	n.mu.Unlock()
	for _, f := range fs {
		f.stopRunner()
	}
	n.log.Info("all folders paused")
	return n.saveDaemonState()
}

// ResumeAll turns the global switch off and resumes every folder, including
// those paused one by one.
func (n *Node) ResumeAll() error {
	n.mu.Lock()
	n.pausedAll = false
	fs := n.folderListLocked()
	for _, f := range fs {
		f.run.paused = false
	}
	n.mu.Unlock()
	if err := n.saveDaemonState(); err != nil {
		return err
	}
	if err := n.saveFolders(); err != nil {
		return err
	}
	for _, f := range fs {
		f.startRunner()
	}
	n.log.Info("all folders resumed")
	return nil
}

// PausedAll reports the global switch.
func (n *Node) PausedAll() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pausedAll
}

// folderListLocked is every folder; n.mu held.
func (n *Node) folderListLocked() []*Folder {
	out := make([]*Folder, 0, len(n.folders))
	for _, f := range n.folders {
		out = append(out, f)
	}
	return out
}

// RemoveFolder stops syncing a folder for good and forgets it: it leaves
// FoldersFile, and its index entries and rights log are deleted from the
// node's database. The files in its directory are not touched (the empty
// marker directory is removed).
func (n *Node) RemoveFolder(id string) error {
	f, ok := n.Folder(id)
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownFolder, id)
	}
	f.stopRunner()
	n.mu.Lock()
	delete(n.folders, id)
	n.mu.Unlock()
	if err := n.saveFolders(); err != nil {
		return err
	}
	if err := f.topic.Close(); err != nil {
		n.log.Warn("leaving the folder topic", "folder", shortFolder(id), "err", err)
	}
	n.ps.UnregisterTopicValidator(state.Topic(id))
	if err := n.db.DropFolder(id); err != nil {
		return fmt.Errorf("deleting the folder's index: %w", err)
	}
	os.Remove(filepath.Join(f.root, store.MarkerName)) // only if empty: never a user's file
	n.log.Info("folder removed; its files stay on disk", "folder", shortFolder(id), "root", f.root)
	return nil
}

// FolderRef is what ResolveFolder needs of a folder.
type FolderRef struct {
	ID   string
	Root string
}

// ResolveFolder finds the folder a user means by name: its full ID, a suffix
// of its ID (minFolderSuffix characters or more) that no other folder shares,
// or its local directory (absolute, cleaned).
func ResolveFolder(folders []FolderRef, name string) (FolderRef, error) {
	if name == "" {
		return FolderRef{}, fmt.Errorf("%w: empty name", ErrUnknownFolder)
	}
	var hits []FolderRef
	for _, f := range folders {
		if f.ID == name || (filepath.IsAbs(name) && filepath.Clean(name) == f.Root) {
			return f, nil
		}
		if len(name) >= minFolderSuffix && strings.HasSuffix(f.ID, name) {
			hits = append(hits, f)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return FolderRef{}, fmt.Errorf("%w %q (see 'meshfold folder list')", ErrUnknownFolder, name)
	}
	return FolderRef{}, fmt.Errorf("%w: %q matches %d folders; give more of the ID", ErrAmbiguousFolder, name, len(hits))
}

// FolderOf finds the folder holding the local path abs (absolute, cleaned)
// and the path's slash-separated name inside it ("" for the root). When
// folders nest, the innermost one holds the path.
func FolderOf(folders []FolderRef, abs string) (FolderRef, string, error) {
	var best FolderRef
	var bestRel string
	found := false
	for _, f := range folders {
		rel, err := filepath.Rel(f.Root, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if rel == "." {
			rel = ""
		}
		if !found || len(f.Root) > len(best.Root) {
			best, bestRel, found = f, filepath.ToSlash(rel), true
		}
	}
	if !found {
		return FolderRef{}, "", fmt.Errorf("%s: %w", abs, ErrNotInFolder)
	}
	return best, bestRel, nil
}

// needLocked counts the paths with a remote version still to apply and their
// bytes (the largest candidate per path); f.mu held.
func (f *Folder) needLocked() (files int, bytes int64) {
	for _, m := range f.candidates {
		if need, size := needOf(m); need {
			files++
			bytes += size
		}
	}
	return files, bytes
}

// needOf tells whether one path's candidates call for work (quarantined ones
// never do) and the size of the largest.
func needOf(m map[versionKey]plan.Candidate) (need bool, size int64) {
	for _, c := range m {
		if c.Verdict == plan.Quarantine {
			continue
		}
		need = true
		if !c.Version.Deleted {
			size = max(size, c.Version.Size)
		}
	}
	return need, size
}

// MaxConflictNames bounds the conflict copies a folder report names.
const MaxConflictNames = 20

// conflictMarker is in the name of every conflict copy (plan.ConflictName).
const conflictMarker = ".sync-conflict-"

// folderReports is the report of every folder, sorted by ID.
func (n *Node) folderReports() []FolderReport {
	n.mu.Lock()
	fs := n.folderListLocked()
	n.mu.Unlock()
	out := make([]FolderReport, 0, len(fs))
	for _, f := range fs {
		r := FolderReport{ID: f.id, Root: f.root, Status: f.Status()}
		r.Conflicts, r.ConflictNames = f.conflicts("")
		r.Locks = f.lockInfos("")
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b FolderReport) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// conflicts counts the conflict copies at or below prefix and names the
// first MaxConflictNames.
func (f *Folder) conflicts(prefix string) (int, []string) {
	n := 0
	names := []string{}
	f.idx.WalkHeaders(prefix, func(fi store.FileInfo) error {
		if !fi.Deleted && strings.Contains(path.Base(fi.Path), conflictMarker) {
			n++
			if len(names) < MaxConflictNames {
				names = append(names, fi.Path)
			}
		}
		return nil
	})
	return n, names
}

// RevokeInvite ends the invitation of key: its folder's log records the
// revocation, and no device can join with the key from then on (members
// learn of it as the log spreads).
func (n *Node) RevokeInvite(key join.Key) error {
	f, ok := n.Folder(key.Folder.String())
	if !ok {
		return fmt.Errorf("%w %s (the key's folder)", ErrUnknownFolder, key.Folder)
	}
	known := false
	f.Log(func(l *crdt.Log) error {
		for _, i := range l.Invites() {
			if string(i.ID) == string(key.Invite) {
				known = true
			}
		}
		return nil
	})
	if !known {
		return ErrInviteUnknown
	}
	_, err := f.AppendOp(crdt.RevokeInvite{Invite: crdt.InviteID(key.Invite)})
	return err
}
