package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMain lets `bench scan` run its phase children from the test binary:
// with benchChildEnv set, the binary is the meshfold command, not the tests.
func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) != "" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestBenchScanSmall(t *testing.T) {
	var out bytes.Buffer
	err := runBenchScan(context.Background(), benchScanOptions{dir: t.TempDir(), sizeGiB: 8.0 / 1024, smallFiles: 150, runs: 3}, &out)
	if err != nil {
		t.Fatalf("bench scan: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`8\.00 MiB in 4 files\s+cold\s+[0-9.]+s\s+[0-9.]+ GB/s\s+[0-9.]+ MiB\s+8\.00 MiB`),
		regexp.MustCompile(`8\.00 MiB in 4 files\s+warm\s+[0-9.]+s\s+[0-9.]+ GB/s\s+[0-9.]+ MiB\s+0 B`),
		regexp.MustCompile(`150 files of 4\.00 KiB\s+cold .* 600\.00 KiB`),
		regexp.MustCompile(`150 files of 4\.00 KiB\s+warm .* 0 B .*over 3 runs\)\n`),
		regexp.MustCompile(`150 files of 4\.00 KiB\s+rescan .* 0 B .*over 3 runs\)\n\s+warm/cold of each run pair: [0-9.]+%, [0-9.]+%, [0-9.]+%\n\s+rescan/cold of each run pair: [0-9.]+%, [0-9.]+%, [0-9.]+%\n`),
		regexp.MustCompile(`single core: chunk\+hash [0-9]+ MB/s, BLAKE3 alone [0-9]+ MB/s`),
		regexp.MustCompile(`core check: BLAKE3 of [0-9]+ MiB on one goroutine [0-9]+ ms, two buffers on two goroutines at once [0-9]+ ms: [0-9]+\.[0-9]{2}x the work per second`),
		regexp.MustCompile(`verdict: (PASS|FAIL) cold scan of 8\.00 MiB in 4 files: [0-9.]+ GB/s`),
		regexp.MustCompile(`verdict: (PASS|FAIL) warm rescan of 150 files of 4\.00 KiB: [0-9.]+% of the cold .*, in a new process`),
		regexp.MustCompile(`verdict: (PASS|FAIL) warm rescan of 150 files of 4\.00 KiB: [0-9.]+% of the cold .*, in a process that scanned before`),
		regexp.MustCompile(`verdict: (PASS|FAIL) chunk\+hash vs BLAKE3 alone, one core: [0-9.]+%`),
	} {
		if !want.MatchString(text) {
			t.Errorf("output lacks %v:\n%s", want, text)
		}
	}
	if strings.Contains(text, " 0.0 MiB ") {
		t.Errorf("a phase reported no peak RSS:\n%s", text)
	}
}
