package realstack

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshfold/meshfold/store"
)

// contentHash names a file's bytes.
type contentHash [32]byte

func hashOf(data []byte) contentHash { return sha256.Sum256(data) }

// tree is a folder on disk: path (slash-separated) -> content hash. The
// marker directory, unfinished downloads and directories are left out.
type tree map[string]contentHash

func readTree(root string) (tree, error) {
	t := tree{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // vanished while walking (a sync in flight)
		}
		name := d.Name()
		if d.IsDir() {
			if name == store.MarkerName {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(name, store.TempFilePrefix) || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil // replaced while walking: the next poll sees it
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		t[filepath.ToSlash(rel)] = hashOf(data)
		return nil
	})
	return t, err
}

// hash is one digest of the whole tree.
func (t tree) hash() contentHash {
	paths := make([]string, 0, len(t))
	for p := range t {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	h := sha256.New()
	for _, p := range paths {
		c := t[p]
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write(c[:])
	}
	var out contentHash
	copy(out[:], h.Sum(nil))
	return out
}

func (t tree) contents() map[contentHash]bool {
	out := make(map[contentHash]bool, len(t))
	for _, c := range t {
		out[c] = true
	}
	return out
}

// diff describes how b differs from a, briefly.
func diff(a, b tree) string {
	var only, missing, changed []string
	for p, c := range b {
		if ac, ok := a[p]; !ok {
			only = append(only, p)
		} else if ac != c {
			changed = append(changed, p)
		}
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			missing = append(missing, p)
		}
	}
	slices.Sort(only)
	slices.Sort(missing)
	slices.Sort(changed)
	return fmt.Sprintf("%d extra %v, %d missing %v, %d different %v", len(only), head(only), len(missing), head(missing), len(changed), head(changed))
}

func head(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

func have(t tree, c contentHash) bool {
	for _, tc := range t {
		if tc == c {
			return true
		}
	}
	return false
}

// describe says where a content came from, for a violation's message.
func (l *ledger) describe(c contentHash) string {
	if w, ok := l.written[c]; ok {
		return fmt.Sprintf("written by device %d as %s at change %d", w.node, w.path, w.change)
	}
	if l.byViewer[c] {
		return "written by the viewer"
	}
	return "written by no device: made by the product"
}

// isConflictCopy reports whether p names a conflict copy (plan.ConflictName).
func isConflictCopy(p string) bool { return strings.Contains(filepath.Base(p), ".sync-conflict-") }

// verdict is the invariants over the trees of every device once the run is
// over (or timed out).
type verdict struct {
	converged    bool
	editorsSame  bool // every editor's tree is the same (the viewer aside)
	violations   []string
	conflicts    int
	files        int
	viewerSpares int
}

// judge checks the invariants: every editor's tree is the same; the viewer
// holds that tree plus only its own unshared changes; every version an editor
// wrote that no authorised change superseded is somewhere in the tree (as the
// file or a conflict copy); no byte the viewer wrote reached anyone else.
func judge(trees []tree, viewer int, led *ledger) verdict {
	var v verdict
	ref := -1
	for i := range trees {
		if i != viewer {
			ref = i
			break
		}
	}
	canon := trees[ref]
	v.converged = true
	for i, t := range trees {
		if i == viewer || i == ref {
			continue
		}
		if t.hash() != canon.hash() {
			v.converged = false
			v.violations = append(v.violations, fmt.Sprintf("convergence: device %d differs from device %d: %s", i, ref, diff(canon, t)))
		}
	}
	v.editorsSame = v.converged
	if viewer >= 0 {
		vt := trees[viewer]
		for p, c := range canon {
			if vc, ok := vt[p]; !ok || vc != c {
				v.converged = false
				v.violations = append(v.violations, fmt.Sprintf("convergence: the viewer (device %d) lacks the shared %s", viewer, p))
				break
			}
		}
		for p, c := range vt {
			_, shared := canon[p]
			switch {
			case shared || led.byViewer[c]:
			case isConflictCopy(p) && (have(canon, c) || led.written[c] != write{}):
				// A refused local change kept aside after a sync had
				// already replaced it: a spare copy of a shared version.
				v.viewerSpares++
			default:
				v.converged = false
				v.violations = append(v.violations, fmt.Sprintf("convergence: the viewer (device %d) has %s, which is neither shared nor its own (%s)", viewer, p, led.describe(c)))
			}
		}
		own := vt.contents()
		for c := range led.byViewer {
			if !led.viewerSuperseded[c] && !own[c] {
				v.violations = append(v.violations, "lost-version: a change the viewer made (and may not share) is gone from the viewer's own disk")
				break
			}
		}
	}
	have := canon.contents()
	lost := 0
	var first string
	for c, w := range led.written {
		if !led.superseded[c] && !have[c] {
			if lost == 0 {
				first = fmt.Sprintf("%s by device %d (change %d)", w.path, w.node, w.change)
			}
			lost++
		}
	}
	if lost > 0 {
		v.violations = append(v.violations, fmt.Sprintf("lost-version: %d versions written by editors and never superseded are in no file, e.g. %s", lost, first))
	}
	for i, t := range trees {
		if i == viewer {
			continue
		}
		for p, c := range t {
			if led.byViewer[c] {
				v.violations = append(v.violations, fmt.Sprintf("unauthorized: device %d holds the viewer's change as %s", i, p))
				break
			}
		}
	}
	for p := range canon {
		if isConflictCopy(p) {
			v.conflicts++
		}
	}
	v.files = len(canon)
	return v
}
