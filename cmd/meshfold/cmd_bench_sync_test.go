package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshfold/meshfold/store"
)

// TestBenchSyncSmall runs the whole sync benchmark on a few MiB: real nodes in
// child processes (the test binary, see TestMain), real rsync, real streams.
func TestBenchSyncSmall(t *testing.T) {
	var out bytes.Buffer
	err := runBenchSync(context.Background(), benchSyncOptions{dir: t.TempDir(), sizeGiB: 4.0 / 1024, smallFiles: 40, editMiB: 2, runs: 1}, &out)
	if err != nil {
		t.Fatalf("bench sync: %v\n%s", err, out.String())
	}
	text := out.String()
	mib := `[0-9.]+ MiB`
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`4\.00 MiB in 4 files\s+[0-9.]+s\s+[0-9.]+\s+4\.[0-9]+ MiB\s+[0-9.]+ [KM]iB/4\.[0-9]+ MiB\s+` + mib + `\s+` + mib),
		regexp.MustCompile(`40 files of 4\.00 KiB\s+[0-9.]+s`),
		regexp.MustCompile(`1-byte insertion at the start\s+[0-9.]+s\s+[0-9.]+\s+[0-9.]+ [KM]iB`),
		regexp.MustCompile(`1\.00 MiB overwritten in the middle\s+[0-9.]+s`),
		regexp.MustCompile(`rsync -a \+ sync\s+[0-9.]+s\s+[0-9.]+\s+-> meshfold/rsync time [0-9.]+x`),
		regexp.MustCompile(`raw libp2p stream between two hosts .*: [0-9.]+ MB/s`),
		regexp.MustCompile(`verdict: (PASS|FAIL) 4\.00 MiB in 4 files: [0-9.]+x rsync's time`),
		regexp.MustCompile(`verdict: (PASS|FAIL) 40 files of 4\.00 KiB: [0-9.]+x rsync's time`),
		regexp.MustCompile(`verdict: (PASS|FAIL) 1-byte insertion at the start of 2\.00 MiB: [0-9.]+ [KM]?i?B on the wire`),
		regexp.MustCompile(`verdict: (PASS|FAIL) 1\.00 MiB overwritten in the middle: [0-9.]+ MB on the wire`),
		regexp.MustCompile(`verdict: (PASS|FAIL) peak RSS per node: [0-9.]+ MiB`),
	} {
		if !want.MatchString(text) {
			t.Errorf("output lacks %v:\n%s", want, text)
		}
	}
	for _, bad := range []string{" 0 B ", " 0.0 MiB "} {
		if strings.Contains(text, bad) {
			t.Errorf("a case reported %q (no bytes on the wire or no peak RSS):\n%s", bad, text)
		}
	}
}

// TestIndexDigestSeesContent: the receiver's "synced" test must tell trees
// apart by content, not only by names.
func TestIndexDigestSeesContent(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	idx := db.Folder("f")
	digestOf := func(content string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Scan(context.Background(), store.ScanConfig{Root: dir, Device: "dev"}, idx); err != nil {
			t.Fatal(err)
		}
		d, err := indexDigest(idx, "dev")
		if err != nil {
			t.Fatal(err)
		}
		if d.entries != 1 || d.unsigned != 1 {
			t.Fatalf("digest %+v: want 1 entry, 1 unsigned", d)
		}
		return d.sum
	}
	if digestOf("one") == digestOf("three") { // sizes differ: mtimes may not
		t.Fatal("two contents gave one digest")
	}
}
