package chunks

import (
	"math"
	"testing"
	"time"
)

func TestEWMAIsTimeWeighted(t *testing.T) {
	var r ewma
	if r.bps() != 0 {
		t.Fatal("rate before samples")
	}
	// Four pipelined 16 KiB chunks: the first after 40 ms, the rest right
	// behind it. The throughput was 64 KiB in ~40 ms, not gigabytes/s.
	r.add(16<<10, 40*time.Millisecond)
	for range 3 {
		r.add(16<<10, 10*time.Microsecond)
	}
	if got := r.bps(); got > 5e6 || got < 1e6 {
		t.Fatalf("rate %.0f B/s, want a few MB/s", got)
	}
	// Steady samples converge to their rate.
	for range 50 {
		r.add(1000, time.Millisecond)
	}
	if got := r.bps(); math.Abs(got-1e6) > 1e4 {
		t.Fatalf("rate %.0f, want 1e6", got)
	}
}
