package plan

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/meshfold/meshfold/store"
)

// Verdict is what the rights log says about one announced version.
type Verdict uint8

// The verdicts a caller attaches to remote versions.
const (
	// Accept: the author may write this path at the log state the version names.
	Accept Verdict = iota
	// Reject: the author had no right; the version takes no part in the plan.
	Reject
	// Quarantine: the author was concurrently revoked (strong remove). The
	// version is kept aside for managers, never applied to the tree.
	Quarantine
	// LockConflict: a file locked by someone else was written by a
	// non-holder. The version never replaces the path; its bytes are kept
	// beside it as a conflict copy, so nothing is lost.
	LockConflict
)

// Candidate is one version of a path announced by some device (possibly this
// one), with the rights verdict the caller computed for it.
type Candidate struct {
	Version store.FileInfo
	Verdict Verdict
}

// Op is the kind of an Action.
type Op uint8

// The things a plan asks the executor to do.
const (
	// Fetch: make the local path hold Want (a file's chunks, a directory, a
	// symlink) and record Want in the index.
	Fetch Op = iota + 1
	// Delete: remove the local path and record the tombstone Want.
	Delete
	// Move: rename From to Want.Path (same content) and record Want; the
	// tombstone for From is recorded by the Delete action that Move replaced.
	Move
	// ConflictCopy: rename the local file at Want.Path to CopyName, then
	// fetch Want (a live version: a deletion never beats a live version). The copy is picked up by the next scan as a
	// new local file and syncs like any other.
	ConflictCopy
	// Record: the local content already equals Want (same chunks); only the
	// index entry changes (version vectors merge).
	Record
	// Quarantined: keep the bytes of Want aside, outside the tree.
	Quarantined
	// KeepCopy: write the bytes of Want (a version that lost to a lock) at
	// CopyName, leaving Want.Path alone. The copy is picked up by the next
	// scan as a new local file and syncs like any other.
	KeepCopy
)

func (o Op) String() string {
	switch o {
	case Fetch:
		return "fetch"
	case Delete:
		return "delete"
	case Move:
		return "move"
	case ConflictCopy:
		return "conflict-copy"
	case Record:
		return "record"
	case Quarantined:
		return "quarantine"
	case KeepCopy:
		return "keep-copy"
	}
	return fmt.Sprintf("op(%d)", o)
}

// Action is one step of a plan.
type Action struct {
	Op       Op
	Want     store.FileInfo // the version the path must hold afterwards
	From     string         // Move: the local path whose content is reused
	CopyName string         // ConflictCopy: where the losing local version goes; KeepCopy: where Want's bytes go
}

// Config holds what the planner needs besides the versions.
type Config struct {
	// Local is this device.
	Local store.DeviceID
	// ShortID renders a device for conflict copy names; nil uses the last
	// 7 hex digits of the device ID bytes (the first ones are a key-type
	// prefix that every Ed25519 device shares).
	ShortID func(store.DeviceID) string
}

// Plan computes the actions that bring the local tree to the winning version of
// every path. local holds this device's current index entries (any order);
// remote holds every version announced by other devices (any order, duplicates
// allowed). The result depends only on the inputs' contents, not their order.
func Plan(cfg Config, local []store.FileInfo, remote []Candidate) []Action {
	byPath := make(map[string]*pathState)
	get := func(p string) *pathState {
		s := byPath[p]
		if s == nil {
			s = &pathState{}
			byPath[p] = s
		}
		return s
	}
	for _, fi := range local {
		s := get(fi.Path)
		v := fi
		s.local = &v
	}
	for _, c := range remote {
		s := get(c.Version.Path)
		switch c.Verdict {
		case Accept:
			s.versions = append(s.versions, c.Version)
		case Quarantine:
			s.quarantine = append(s.quarantine, c.Version)
		case LockConflict:
			s.lockLosers = append(s.lockLosers, c.Version)
		}
	}

	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	slices.Sort(paths)

	var actions []Action
	for _, p := range paths {
		actions = append(actions, decide(cfg, byPath[p])...)
	}
	return order(detectMoves(actions, byPath))
}

type pathState struct {
	local      *store.FileInfo
	versions   []store.FileInfo
	quarantine []store.FileInfo
	lockLosers []store.FileInfo
}

// Winner returns the winning version among versions (the maximal elements
// under the version-vector order, resolved by the total key) and the losing
// heads. ok is false when versions is empty.
func Winner(versions []store.FileInfo) (win store.FileInfo, losers []store.FileInfo, ok bool) {
	heads := Heads(versions)
	if len(heads) == 0 {
		return store.FileInfo{}, nil, false
	}
	slices.SortFunc(heads, func(a, b store.FileInfo) int { return -compareKey(a, b) })
	return heads[0], heads[1:], true
}

// Heads returns the versions no other version dominates, deduplicated (versions
// with equal vectors count once: the one with the greatest key stands for them).
func Heads(versions []store.FileInfo) []store.FileInfo {
	var heads []store.FileInfo
outer:
	for i, v := range versions {
		for j, o := range versions {
			if i == j {
				continue
			}
			switch v.Version.Compare(o.Version) {
			case store.Older:
				continue outer
			case store.Equal:
				if c := compareKey(v, o); c < 0 || (c == 0 && j < i) {
					continue outer // o stands for this equivalence class
				}
			}
		}
		heads = append(heads, v)
	}
	return heads
}

// compareKey is the total order among concurrent versions: (live, ModTime,
// Author, Seq).
func compareKey(a, b store.FileInfo) int {
	if c := cmp.Compare(boolInt(!a.Deleted), boolInt(!b.Deleted)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ModTime, b.ModTime); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Author), string(b.Author)); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func byAuthorSeq(a, b store.FileInfo) int {
	if c := strings.Compare(string(a.Author), string(b.Author)); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

func decide(cfg Config, s *pathState) []Action {
	var out []Action
	slices.SortFunc(s.quarantine, byAuthorSeq)
	for i, q := range s.quarantine {
		if i > 0 && q.Author == s.quarantine[i-1].Author && q.Seq == s.quarantine[i-1].Seq {
			continue // the same version announced twice
		}
		out = append(out, Action{Op: Quarantined, Want: q})
	}
	slices.SortFunc(s.lockLosers, byAuthorSeq)
	for i, v := range s.lockLosers {
		if i > 0 && v.Author == s.lockLosers[i-1].Author && v.Seq == s.lockLosers[i-1].Seq {
			continue
		}
		if v.Deleted || v.Kind != store.KindFile {
			continue // a deletion or a directory under a lock: nothing to keep
		}
		out = append(out, Action{Op: KeepCopy, Want: v, CopyName: ConflictName(v.Path, v.ModTime, shortID(cfg, v.Author))})
	}
	all := slices.Clone(s.versions)
	if s.local != nil {
		all = append(all, *s.local)
	}
	win, losers, ok := Winner(all)
	if !ok {
		return out
	}
	if s.local != nil && s.local.Version.Compare(win.Version) == store.Equal {
		return out // we hold the winner (or an equal version) already
	}
	// The winner is adopted exactly as its author signed it: vectors are not
	// merged. A losing head stays concurrent with the winner forever, and the
	// total key keeps picking the same winner, so every device settles.
	// If what we hold is a losing head with other content, it is kept aside.
	localIsLosingHead := false
	if s.local != nil {
		for _, l := range losers {
			if l.Version.Compare(s.local.Version) == store.Equal {
				localIsLosingHead = true
			}
		}
	}
	switch {
	case localIsLosingHead && !s.local.Deleted && !sameContent(*s.local, win):
		return append(out, Action{
			Op:       ConflictCopy,
			Want:     win,
			CopyName: ConflictName(s.local.Path, s.local.ModTime, shortID(cfg, s.local.Author)),
		})
	case s.local != nil && sameContent(*s.local, win):
		return append(out, Action{Op: Record, Want: win})
	case win.Deleted:
		if s.local == nil || s.local.Deleted {
			return append(out, Action{Op: Record, Want: win})
		}
		return append(out, Action{Op: Delete, Want: win})
	default:
		return append(out, Action{Op: Fetch, Want: win})
	}
}

// sameContent reports whether two versions put the same thing at a path.
func sameContent(a, b store.FileInfo) bool {
	if a.Deleted || b.Deleted {
		return a.Deleted && b.Deleted
	}
	if a.Kind != b.Kind || a.Size != b.Size || a.SymlinkTarget != b.SymlinkTarget || a.Mode != b.Mode {
		return false
	}
	return slices.EqualFunc(a.Chunks, b.Chunks, func(x, y store.ChunkRef) bool {
		return x.Size == y.Size && x.CID.Equals(y.CID)
	})
}

// ConflictName is where a losing version of p is kept:
// name.sync-conflict-YYYYMMDD-HHMMSS-<device>.ext, in the same directory.
func ConflictName(p string, modTime int64, device string) string {
	dir, base := path.Split(p)
	ext := path.Ext(base)
	if ext == base { // ".bashrc": a dotfile has no extension
		ext = ""
	}
	stamp := time.Unix(0, modTime).UTC().Format("20060102-150405")
	return dir + strings.TrimSuffix(base, ext) + ".sync-conflict-" + stamp + "-" + device + ext
}

func shortID(cfg Config, d store.DeviceID) string {
	if cfg.ShortID != nil {
		return cfg.ShortID(d)
	}
	s := fmt.Sprintf("%x", []byte(d))
	return s[max(0, len(s)-7):]
}

// detectMoves turns a Fetch of a file whose content a Delete in the same plan
// removes into a Move of that file: the bytes are already here.
func detectMoves(actions []Action, byPath map[string]*pathState) []Action {
	deletes := make(map[string]int) // content key -> index of the Delete action
	for i, a := range actions {
		if a.Op != Delete {
			continue
		}
		old := byPath[a.Want.Path].local
		if old == nil || old.Kind != store.KindFile || len(old.Chunks) == 0 {
			continue
		}
		k := contentKey(*old)
		if _, dup := deletes[k]; !dup {
			deletes[k] = i
		}
	}
	if len(deletes) == 0 {
		return actions
	}
	for i, a := range actions {
		if a.Op != Fetch || a.Want.Kind != store.KindFile || len(a.Want.Chunks) == 0 {
			continue
		}
		if local := byPath[a.Want.Path].local; local != nil && !local.Deleted {
			continue // the destination holds something: a plain fetch overwrites it
		}
		j, ok := deletes[contentKey(a.Want)]
		if !ok {
			continue
		}
		delete(deletes, contentKey(a.Want))
		from := actions[j].Want.Path
		actions[i] = Action{Op: Move, Want: a.Want, From: from}
		actions[j].Op = Record // the tombstone is recorded; the file itself moves
	}
	return actions
}

func contentKey(fi store.FileInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%o|", fi.Size, fi.Mode)
	for _, c := range fi.Chunks {
		b.WriteString(c.CID.KeyString())
	}
	return b.String()
}

// order sorts actions so executing them in sequence is safe: moves first (they
// read files that deletions would remove), then creations parents-first, then
// deletions children-first; ties by path.
func order(actions []Action) []Action {
	phase := func(a Action) int {
		switch {
		case a.Op == Move:
			return 0
		case a.Op == Delete:
			return 2
		}
		return 1
	}
	slices.SortStableFunc(actions, func(a, b Action) int {
		pa, pb := phase(a), phase(b)
		if pa != pb {
			return cmp.Compare(pa, pb)
		}
		if pa == 2 { // children before parents: deeper paths first
			if c := cmp.Compare(depth(b.Want.Path), depth(a.Want.Path)); c != 0 {
				return c
			}
		}
		return strings.Compare(a.Want.Path, b.Want.Path)
	})
	return actions
}

func depth(p string) int { return strings.Count(p, "/") }
