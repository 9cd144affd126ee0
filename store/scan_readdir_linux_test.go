package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestListDirMatchesReadDir: the getdents-based listing returns exactly the
// names os.ReadDir does, for a directory too big for one getdents buffer and
// for names with spaces, dots, non-ASCII and the longest allowed length, and
// the descriptor it returns stats entries as statAt expects.
func TestListDirMatchesReadDir(t *testing.T) {
	dir := t.TempDir()
	want := []string{"...", ".hidden", "a b", "ü-ñ", strings.Repeat("x", 255), "sub"}
	for i := range 3000 { // ~190 KB of records: several getdents calls
		want = append(want, fmt.Sprintf("file-with-a-long-name-to-fill-the-buffer-%05d", i))
	}
	for _, n := range want {
		if n == "sub" {
			if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fd, names, closeDir, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDir()
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("listDir gave %d names, want %d (first difference at %d)", len(names), len(want), firstDiff(names, want))
	}
	st, err := statAt(fd, dir, "ü-ñ")
	if err != nil || st.size != int64(len("ü-ñ")) || !st.mode.IsRegular() {
		t.Fatalf("statAt via listDir's descriptor: %+v %v", st, err)
	}
	if st, err := statAt(fd, dir, "sub"); err != nil || !st.isDir() {
		t.Fatalf("statAt of the subdirectory: %+v %v", st, err)
	}

	if _, _, _, err := listDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("listDir of a missing directory: %v, want ErrNotExist", err)
	}
	if _, _, _, err := listDir(filepath.Join(dir, "...")); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("listDir of a file: %v, want ENOTDIR", err)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// dirent builds one linux_dirent64 record.
func dirent(name string, reclen int) []byte {
	if reclen == 0 {
		reclen = (direntNameOff + len(name) + 1 + 7) &^ 7
	}
	b := make([]byte, max(reclen, direntNameOff+len(name)))
	binary.NativeEndian.PutUint16(b[direntReclenOff:], uint16(reclen))
	copy(b[direntNameOff:], name)
	return b
}

func TestParseDirents(t *testing.T) {
	for _, tc := range []struct {
		name string
		buf  []byte
		want []string
	}{
		{"names", slices.Concat(dirent(".", 0), dirent("..", 0), dirent("a", 0), dirent("bc", 0)), []string{"a", "bc"}},
		{"empty", nil, nil},
		{"short header", dirent("a", 0)[:10], nil},
		{"reclen too small stops", slices.Concat(dirent("a", 0), dirent("b", 5), dirent("c", 0)), []string{"a"}},
		{"reclen past the end stops", slices.Concat(dirent("a", 0), dirent("b", 400)[:24]), []string{"a"}},
		{"name without NUL", dirent("abc", direntNameOff+3), []string{"abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arena, ends := parseDirents(tc.buf, nil, nil)
			var got []string
			start := 0
			for _, e := range ends {
				got = append(got, string(arena[start:e]))
				start = e
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzParseDirents: whatever the buffer holds, parsing neither panics nor
// loops, and yields names without NUL bytes that fit in the buffer.
func FuzzParseDirents(f *testing.F) {
	f.Add(slices.Concat(dirent(".", 0), dirent("a", 0), dirent("bc", 0)))
	f.Add(slices.Concat(dirent("a", 0), dirent("b", 5)))
	f.Add(dirent("abc", direntNameOff+3))
	f.Fuzz(func(t *testing.T, buf []byte) {
		arena, ends := parseDirents(buf, nil, nil)
		if len(arena) > len(buf) {
			t.Fatalf("%d bytes of names from a %d-byte buffer", len(arena), len(buf))
		}
		start := 0
		for _, e := range ends {
			name := arena[start:e]
			if len(name) == 0 || slices.Contains(name, 0) || string(name) == "." || string(name) == ".." {
				t.Fatalf("bad name %q", name)
			}
			start = e
		}
	})
}

// TestStatAtNames: statAt copies the name onto the stack for the system
// call; the longest name, a name that is too long and one with a NUL must
// give what lstat of the full path gives.
func TestStatAtNames(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("n", 255)
	if err := os.WriteFile(filepath.Join(dir, long), []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, _, closeDir, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDir()
	want, err := lstatPath(filepath.Join(dir, long))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := statAt(fd, dir, long); err != nil || got != want {
		t.Fatalf("statAt(%d-byte name) = %+v, %v; lstat gave %+v", len(long), got, err, want)
	}
	if _, err := statAt(fd, dir, long+"x"); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("statAt of a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if _, err := statAt(fd, dir, long[:3]+"\x00"+long[4:]); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("statAt of a name with a NUL: %v, want EINVAL", err)
	}
	if _, err := statAt(fd, dir, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("statAt of a missing name: %v, want ErrNotExist", err)
	}
}
