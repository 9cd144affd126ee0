package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	gitignore "github.com/sabhiram/go-gitignore"
)

// Names with a fixed meaning inside a synced folder.
const (
	// MarkerName is the folder marker directory at the root of every synced
	// folder. It is never synced; the sync layer treats its absence as an
	// unmounted or deleted folder and stops instead of deleting everything.
	MarkerName = ".meshfold"
	// TempFilePrefix starts the names of the temporary files the sync engine
	// writes while it assembles a download (".meshfold-tmp-*"). They are never
	// scanned.
	TempFilePrefix = ".meshfold-tmp-"
	// IgnoreFileName is the per-directory ignore file, in gitignore syntax.
	// Its patterns apply to the directory that holds it and everything below.
	// The file itself is synced like any other, so peers share the rules.
	IgnoreFileName = ".meshignore"
	// MaxIgnoreFileSize caps what is read of one ignore file.
	MaxIgnoreFileSize = 1 << 20
)

// ErrMarkerMissing: the folder's marker directory is gone, so the folder may be
// an unmounted disk or a deleted directory; scans that require it record
// nothing and sync pauses instead of reporting every file deleted.
var ErrMarkerMissing = errors.New("folder marker is missing (unmounted disk or deleted folder?); sync paused")

// ErrIgnoreFileTooLarge is reported for an ignore file above MaxIgnoreFileSize;
// its rules are not applied.
var ErrIgnoreFileTooLarge = fmt.Errorf("ignore file larger than %d bytes", MaxIgnoreFileSize)

// IsBuiltinIgnored reports whether a single path component is ignored in every
// folder regardless of ignore files: office lock files (~$*, .~lock.*#), OS
// litter (.DS_Store, Thumbs.db, desktop.ini), the engine's own temporary files
// (TempFilePrefix*) and the folder marker (MarkerName).
func IsBuiltinIgnored(name string) bool {
	switch {
	case name == MarkerName,
		strings.HasPrefix(name, TempFilePrefix),
		strings.HasPrefix(name, "~$"),
		strings.HasPrefix(name, ".~lock.") && strings.HasSuffix(name, "#"),
		name == ".DS_Store",
		strings.EqualFold(name, "Thumbs.db"),
		strings.EqualFold(name, "desktop.ini"):
		return true
	}
	return false
}

// Ignorer answers whether a folder-relative path is ignored: built-in names
// (IsBuiltinIgnored, for every component) and the .meshignore files of the
// root and of every directory above the path. Ignore files are read once, on
// first use, and cached for the Ignorer's life: make a new Ignorer to pick up
// edited rules. Safe for concurrent use.
type Ignorer struct {
	root string

	mu    sync.Mutex
	rules map[string]*gitignore.GitIgnore // dir ("" = root) -> rules, nil if no ignore file
	errs  []PathError
}

// NewIgnorer returns an Ignorer for the folder at root.
func NewIgnorer(root string) *Ignorer {
	return &Ignorer{root: root, rules: make(map[string]*gitignore.GitIgnore)}
}

// Ignored reports whether rel (slash-separated, relative to the root) is
// ignored. isDir says whether rel is a directory, for patterns ending in "/".
func (ig *Ignorer) Ignored(rel string, isDir bool) bool {
	for c := range strings.SplitSeq(rel, "/") {
		if IsBuiltinIgnored(c) {
			return true
		}
	}
	return ig.matchRules(rel, isDir)
}

// ignoredEntry is Ignored for a walk that has already checked every ancestor
// of rel: only rel's own name is checked against the built-ins.
func (ig *Ignorer) ignoredEntry(rel, name string, isDir bool) bool {
	return IsBuiltinIgnored(name) || ig.matchRules(rel, isDir)
}

// matchRules applies the ignore files of every directory above rel, root first.
func (ig *Ignorer) matchRules(rel string, isDir bool) bool {
	if ig.matches("", rel, isDir) {
		return true
	}
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && ig.matches(rel[:i], rel, isDir) {
			return true
		}
	}
	return false
}

// sawDir tells the Ignorer whether dir holds an ignore file, from a directory
// listing the caller already has, so that directories without one cost no
// extra system call.
func (ig *Ignorer) sawDir(dir string, hasIgnoreFile bool) {
	if hasIgnoreFile {
		return // loaded on first use
	}
	ig.mu.Lock()
	if _, ok := ig.rules[dir]; !ok {
		ig.rules[dir] = nil
	}
	ig.mu.Unlock()
}

// matches applies the ignore file of dir to rel, which is below dir.
func (ig *Ignorer) matches(dir, rel string, isDir bool) bool {
	return matchIn(dir, ig.load(dir), rel, isDir)
}

// dirRules are the ignore files that apply to the entries of one directory:
// its own and those of every directory above it, root first (nil ones left
// out).
type dirRules []dirRule

type dirRule struct {
	dir string
	gi  *gitignore.GitIgnore
}

// rulesFor returns the rules for the entries of dir, loading them on first
// use: a walk looks them up once per directory instead of once per entry
// (one lock and one map look-up per ancestor).
func (ig *Ignorer) rulesFor(dir string) dirRules {
	var out dirRules
	add := func(d string) {
		if gi := ig.load(d); gi != nil {
			out = append(out, dirRule{d, gi})
		}
	}
	add("")
	for i := 0; i < len(dir); i++ {
		if dir[i] == '/' {
			add(dir[:i])
		}
	}
	if dir != "" {
		add(dir)
	}
	return out
}

// ignored is Ignorer.ignoredEntry for an entry rel (named name) of the
// directory these rules are for.
func (r dirRules) ignored(rel, name string, isDir bool) bool {
	if IsBuiltinIgnored(name) {
		return true
	}
	for _, x := range r {
		if matchIn(x.dir, x.gi, rel, isDir) {
			return true
		}
	}
	return false
}

// matchIn applies gi, the ignore file of dir (nil: none), to rel, which is
// below dir.
func matchIn(dir string, gi *gitignore.GitIgnore, rel string, isDir bool) bool {
	if gi == nil {
		return false
	}
	sub := rel
	if dir != "" {
		sub = rel[len(dir)+1:]
	}
	if gi.MatchesPath(sub) {
		return true
	}
	// Patterns ending in "/" only match what is below the directory in this
	// matcher; a directory itself matches them with a trailing slash.
	return isDir && gi.MatchesPath(sub+"/")
}

func (ig *Ignorer) load(dir string) *gitignore.GitIgnore {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	if gi, ok := ig.rules[dir]; ok {
		return gi
	}
	gi, err := readIgnoreFile(filepath.Join(ig.root, filepath.FromSlash(dir), IgnoreFileName))
	if err != nil {
		ig.errs = append(ig.errs, PathError{Path: path.Join(dir, IgnoreFileName), Err: err})
	}
	ig.rules[dir] = gi
	return gi
}

// takeErrors returns and forgets the ignore files that could not be read.
func (ig *Ignorer) takeErrors() []PathError {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	errs := ig.errs
	ig.errs = nil
	return errs
}

func readIgnoreFile(name string) (*gitignore.GitIgnore, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ignore file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxIgnoreFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading ignore file: %w", err)
	}
	if len(data) > MaxIgnoreFileSize {
		return nil, ErrIgnoreFileTooLarge
	}
	lines := strings.Split(string(bytes.TrimPrefix(data, []byte("\ufeff"))), "\n")
	return gitignore.CompileIgnoreLines(lines...), nil
}
