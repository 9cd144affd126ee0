package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The demo is the first thing a newcomer runs: every step it narrates must
// really happen (each waits for the outcome on disk), and --keep must leave
// the three folders behind with the demo's end state.
func TestRunDemo(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runDemo(context.Background(), demoOptions{dir: dir, keep: true}, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"Bob and Carol received the three files",
		"Alice and Carol have Bob's edit",
		"both edits are kept: one wins, the other becomes a conflict copy on every device",
		"plan.txt is read-only for Alice and Carol, writable for Bob",
		"Carol's device refused to share the edit",
	} {
		if !strings.Contains(text, "✓ "+want) {
			t.Errorf("the demo did not report %q:\n%s", want, text)
		}
	}
	for _, who := range []string{"alice", "bob"} {
		b, err := os.ReadFile(filepath.Join(dir, who, "Team", "readme.txt"))
		if err != nil || string(b) != "Welcome to the team folder.\n" {
			t.Errorf("%s's readme.txt = %q, %v: the viewer's edit must not spread", who, b, err)
		}
	}
}
