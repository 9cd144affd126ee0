package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var validatePathCases = []struct {
	path string
	want error // nil: accepted
}{
	{"a", nil},
	{"a/b/c.txt", nil},
	{"Ünïcödé/日本語.txt", nil},
	{".hidden", nil},
	{"a..b", nil},
	{"...x", nil},
	{"CONSOLE", nil},
	{"COM10", nil},
	{"LPT", nil},
	{"con_txt", nil},
	{"x/AUXILIARY.doc", nil},
	{strings.Repeat("a", MaxComponentLength), nil},
	{"", ErrEmptyPath},
	{"/etc/passwd", ErrAbsolutePath},
	{`\\server\share`, ErrAbsolutePath},
	{`C:\x`, ErrAbsolutePath},
	{"c:x", ErrAbsolutePath},
	{"..", ErrDotComponent},
	{"a/../b", ErrDotComponent},
	{"a/./b", ErrDotComponent},
	{".", ErrDotComponent},
	{"a//b", ErrEmptyComponent},
	{"a/", ErrEmptyComponent},
	{"a\x00b", ErrControlChar},
	{"a\nb", ErrControlChar},
	{"a\x7fb", ErrControlChar},
	{"a\u0085b", ErrControlChar},
	{"a:b", ErrAbsolutePath}, // drive-relative on Windows
	{"ab:c", ErrReservedChar},
	{"a<b", ErrReservedChar},
	{"a>b", ErrReservedChar},
	{`a"b`, ErrReservedChar},
	{`a\b`, ErrReservedChar},
	{"a|b", ErrReservedChar},
	{"a?b", ErrReservedChar},
	{"a*b", ErrReservedChar},
	{"CON", ErrReservedName},
	{"con", ErrReservedName},
	{"CON.txt", ErrReservedName},
	{"dir/nul.tar.gz", ErrReservedName},
	{"Com1", ErrReservedName},
	{"lpt9.log", ErrReservedName},
	{"COM\u00b9", ErrReservedName},
	{"AUX .txt", ErrReservedName},
	{"CONOUT$", ErrReservedName},
	{"Prn.md", ErrReservedName},
	{"trailing.", ErrTrailingDotOrSpace},
	{"trailing ", ErrTrailingDotOrSpace},
	{"dir./x", ErrTrailingDotOrSpace},
	{"bad\xffutf8", ErrInvalidUTF8},
	{"\xc3", ErrInvalidUTF8},
	{strings.Repeat("a", MaxComponentLength+1), ErrComponentTooLong},
	{strings.Repeat("abcdefg/", MaxPathLength/8) + "x", ErrPathTooLong},
}

func TestValidatePath(t *testing.T) {
	for _, c := range validatePathCases {
		t.Run(c.path[:min(len(c.path), 40)], func(t *testing.T) {
			err := ValidatePath(c.path)
			if c.want == nil {
				if err != nil {
					t.Fatalf("ValidatePath(%q) = %v, want accepted", c.path, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("ValidatePath(%q) = %v, want %v", c.path, err, c.want)
			}
			if !strings.Contains(err.Error(), strconv.Quote(c.path)) {
				t.Fatalf("error %q does not name the path", err)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	if err := ValidateName("a/b"); !errors.Is(err, ErrReservedChar) {
		t.Fatalf("ValidateName(a/b) = %v", err)
	}
	if err := ValidateName("ok.txt"); err != nil {
		t.Fatal(err)
	}
}

// FuzzValidatePath checks the property the network relies on: a path that
// ValidatePath accepts, joined to a root, is strictly inside the root.
func FuzzValidatePath(f *testing.F) {
	for _, c := range validatePathCases {
		f.Add(c.path)
	}
	root := filepath.FromSlash("/srv/folder")
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		joined := filepath.Join(root, filepath.FromSlash(p))
		rel, err := filepath.Rel(root, joined)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("accepted %q escapes the root: joined %q rel %q", p, joined, rel)
		}
		if !strings.HasPrefix(joined, root+string(filepath.Separator)) {
			t.Fatalf("accepted %q joins to %q outside %q", p, joined, root)
		}
		if filepath.ToSlash(rel) != p {
			t.Fatalf("accepted %q is not canonical: joins back as %q", p, rel)
		}
	})
}

func TestCaseCollisions(t *testing.T) {
	got := caseCollisions("d", []string{"Foo", "bar", "foo", "FOO", "Straße", "STRASSE", "e\u0301", "\u00e9", "x"})
	want := []CaseCollision{
		{Paths: []string{"d/Foo", "d/foo", "d/FOO"}},
		{Paths: []string{"d/Straße", "d/STRASSE"}},
		{Paths: []string{"d/e\u0301", "d/\u00e9"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("caseCollisions = %v, want %v", got, want)
	}
	if got := caseCollisions("", []string{"a", "b"}); got != nil {
		t.Fatalf("no collisions expected, got %v", got)
	}
}

func BenchmarkValidatePath(b *testing.B) {
	p := "Documents/projects/meshfold/store/some file name.txt"
	for b.Loop() {
		if ValidatePath(p) != nil {
			b.Fatal("rejected")
		}
	}
}
