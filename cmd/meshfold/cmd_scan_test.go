package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunScanSummaryAndWarmRescan(t *testing.T) {
	root, home := t.TempDir(), filepath.Join(t.TempDir(), "home")
	writeTree(t, root, map[string]string{"a.txt": "hello", "d/b.txt": "same", "d/c.txt": "same", "CON.txt": "bad name", "d/Foo": "1", "d/foo": "2"})
	if err := os.Symlink("a.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	opts := scanOptions{home: home, json: true}
	var out bytes.Buffer
	if err := runScan(context.Background(), opts, root, &out); err != nil {
		t.Fatal(err)
	}
	var s scanSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if s.Files != 5 || s.Dirs != 1 || s.Symlinks != 1 || s.TotalBytes != 15 || s.Chunks != 5 || s.UniqueChunks != 4 ||
		s.New != 7 || s.Unchanged != 0 || s.BytesHashed != 15 {
		t.Fatalf("first scan summary %+v", s)
	}
	if len(s.Errors) != 1 || s.Errors[0].Path != "CON.txt" || len(s.CaseCollisions) != 1 {
		t.Fatalf("errors %v collisions %v", s.Errors, s.CaseCollisions)
	}
	if _, err := os.Stat(filepath.Join(home, indexDirName)); err != nil {
		t.Fatalf("index not created in the home: %v", err)
	}

	// Second run: a warm rescan that reads nothing.
	out.Reset()
	opts.json = false
	if err := runScan(context.Background(), opts, root, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"entries    5 files, 1 dirs, 1 symlinks, 15 B in files",
		"chunks     5 (4 unique)",
		"this scan  0 new, 0 changed, 0 deleted, 7 unchanged, 0 ignored",
		"hashed     0 B in",
		"problems   1 per-file errors, 1 case collisions",
		`case collision: ["d/Foo" "d/foo"]`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

func TestRunScanRejectsNonDirectories(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeTree(t, dir, map[string]string{"file": "x"})
	for _, p := range []string{filepath.Join(dir, "missing"), file} {
		err := runScan(context.Background(), scanOptions{home: filepath.Join(dir, "home")}, p, &bytes.Buffer{})
		if !errors.Is(err, ErrNotDir) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("scan %s: %v, want a one-line ErrNotDir", p, err)
		}
	}
	// Through the CLI: exit code 1.
	if code := run([]string{"scan", filepath.Join(dir, "missing"), "--home", filepath.Join(dir, "home")}); code != exitFailure {
		t.Fatalf("exit code %d, want %d", code, exitFailure)
	}
}

func TestDefaultHome(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg")
	if h, err := defaultHome(); err != nil || h != "/xdg/meshfold" {
		t.Fatalf("defaultHome = %q, %v", h, err)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if h, err := defaultHome(); err != nil || h != "/home/u/.local/share/meshfold" {
		t.Fatalf("defaultHome = %q, %v", h, err)
	}
}
