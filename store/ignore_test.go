package store

import "testing"

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
