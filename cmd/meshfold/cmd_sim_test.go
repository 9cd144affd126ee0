package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunSimSummaryReplayAndReport(t *testing.T) {
	report := filepath.Join(t.TempDir(), "out.svg")
	trace := filepath.Join(t.TempDir(), "trace.txt")
	var out bytes.Buffer
	if err := runSim(&out, simOptions{scenario: "two-device-edit-storm", seed: 3, seeds: 1, report: report, trace: trace}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"seed 3 trace ", "scenario two-device-edit-storm: 2 devices, seeds 3..3", "options:",
		"convergence after heal: p50", "per change:", "lost-version    ok", "forged-op       ok", "privacy         ok"} {
		if !strings.Contains(text, want) {
			t.Fatalf("summary lacks %q:\n%s", want, text)
		}
	}
	svg, err := os.ReadFile(report)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Fatalf("report: %v %.100s", err, svg)
	}

	if tr, err := os.ReadFile(trace); err != nil || !bytes.Contains(tr, []byte(" version ")) || !bytes.Contains(tr, []byte(" converged ")) {
		t.Fatalf("trace: %v %.200s", err, tr)
	}

	// The same seed again prints the same trace hash: the run replays.
	first := text[strings.Index(text, "trace "):]
	first = first[:strings.IndexByte(first, '\n')]
	out.Reset()
	if err := runSim(&out, simOptions{scenario: "two-device-edit-storm", seed: 3, seeds: 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), first) {
		t.Fatalf("replay printed another trace than %q:\n%s", first, out.String())
	}
}

func TestRunSimUsage(t *testing.T) {
	var out bytes.Buffer
	if err := runSim(&out, simOptions{list: true}); err != nil || !strings.Contains(out.String(), "invitation-replay") {
		t.Fatalf("list: %v\n%s", err, out.String())
	}
	err := runSim(&out, simOptions{scenario: "no-such-thing", seeds: 1})
	if !errors.As(err, new(usageError)) {
		t.Fatalf("unknown scenario: %v, want a usage error", err)
	}
	if code := run([]string{"sim", "--scenario", "two-device-edit-storm", "--seeds", "0"}); code != exitUsage {
		t.Fatalf("--seeds 0: exit %d, want %d", code, exitUsage)
	}
}
