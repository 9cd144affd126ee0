package store

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzIgnoreRules feeds arbitrary ignore-file lines and paths to the matcher:
// an ignore file comes from disk (and from peers), so no content may panic.
func FuzzIgnoreRules(f *testing.F) {
	f.Add("*.log\nbuild/\n!keep.log\n", "a/b.log")
	f.Add("/**/x\n\\#lit\n[a-\n", "x/y/z")
	f.Add("a/**/b\n?\n", "a/q/b")
	f.Fuzz(func(t *testing.T, rules, p string) {
		root := t.TempDir()
		writeFile(t, root, IgnoreFileName, []byte(rules))
		ig := NewIgnorer(root)
		ig.Ignored(p, false)
		ig.Ignored(p, true)
	})
}

// TestDirRulesMatchIgnoredEntry: the walk looks the rules up once per
// directory (rulesFor) instead of per entry; the answers must be the same.
func TestDirRulesMatchIgnoredEntry(t *testing.T) {
	root := t.TempDir()
	for name, rules := range map[string]string{
		".meshignore":         "*.log\nbuild/\n!keep.log\n/top-only\n",
		"a/.meshignore":       "*.bak\nsub/deep/\n",
		"a/sub/.meshignore":   "x*\n!xkeep\n",
		"b/c/d/.meshignore":   "*\n",
		"b/c/.meshignore.txt": "not an ignore file\n",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ig := NewIgnorer(root)
	checked := 0
	for _, dir := range []string{"", "a", "a/sub", "a/sub/deep", "b", "b/c", "b/c/d", "top-only"} {
		rules := NewIgnorer(root).rulesFor(dir)
		for _, name := range []string{"f.log", "keep.log", "build", "top-only", "f.bak", "deep", "xa", "xkeep", "plain", ".DS_Store", "y.txt"} {
			rel := joinRel(dir, name)
			for _, isDir := range []bool{false, true} {
				if got, want := rules.ignored(rel, name, isDir), ig.ignoredEntry(rel, name, isDir); got != want {
					t.Errorf("%s (dir %v): rulesFor says ignored=%v, ignoredEntry %v", rel, isDir, got, want)
				}
				checked++
			}
		}
	}
	if checked != 8*11*2 {
		t.Fatalf("checked %d cases", checked)
	}
}
