package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/meshfold/meshfold/simulations/realstack"
)

func TestSimRealUsage(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "real", "--nodes", "2"},
		{"sim", "real", "--changes", "0"},
		{"sim", "real", "--interval", "-1s"},
	} {
		if code := run(args); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestPrintSimRealSaysWhatBroke: the summary names every figure the issue
// asks for and, on a failure, the violations.
func TestPrintSimRealSaysWhatBroke(t *testing.T) {
	r := &realstack.Result{
		Options: realstack.Options{Nodes: 3, Changes: 5, Seed: 7},
		Wall:    time.Minute, Converge: time.Second, EditorsConverge: time.Second,
		PeakRSS: 64 << 20, PeakGoroutines: 321, BytesIn: 1 << 20, BytesOut: 1 << 20,
		BytesByProto: map[string]int64{"/meshsub/1.3.0": 1 << 19}, Changes: 5, Restarted: -1,
		Violations: []string{"lost-version: 1 versions"},
	}
	var out bytes.Buffer
	printSimReal(&out, r)
	for _, want := range []string{"wall time:", "peak RSS:     64 MiB", "goroutines at peak: 321", "bytes moved:", "/meshsub/1.3.0", "BROKEN", "lost-version: 1 versions"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
