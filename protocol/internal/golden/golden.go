package golden

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Check compares got with testdata/<name>.hex, or writes it there if update.
func Check(t testing.TB, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name+".hex")
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := Read(t, name)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: encoding changed\n got %x\nwant %x\n(rerun with -update only if the wire format change is deliberate)", path, got, want)
	}
}

// Read returns the bytes of testdata/<name>.hex.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".hex"))
	if err != nil {
		t.Fatalf("reading golden vector (run with -update to create): %v", err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("golden vector %s: %v", name, err)
	}
	return b
}

// All returns the bytes of every testdata/*.hex file, to seed fuzzers.
func All(t testing.TB) [][]byte {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join("testdata", "*.hex"))
	var out [][]byte
	for _, n := range names {
		out = append(out, Read(t, strings.TrimSuffix(filepath.Base(n), ".hex")))
	}
	return out
}
