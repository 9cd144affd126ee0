package realstack

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestEightNodesConvergeUnderFaults is the CI-sized run: 8 real nodes, 100
// changes with a partition and heal, a restart from the home, slow peers and
// a viewer whose changes must not spread.
func TestEightNodesConvergeUnderFaults(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, err := Run(context.Background(), Options{Nodes: 8, Changes: 100, Seed: 1, Interval: 20 * time.Millisecond, Heartbeat: time.Second, ConvergeTimeout: 120 * time.Second, Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wall %v (setup %v, workload %v, converge %v), peak goroutines %d, bytes in %d out %d, changes %d %v, conflicts %d, files %d, slow %v, partition side %v, restarted %d",
		r.Wall, r.Setup, r.Workload, r.Converge, r.PeakGoroutines, r.BytesIn, r.BytesOut, r.Changes, r.ByKind, r.Conflicts, r.Files, r.Slow, r.Partitioned, r.Restarted)
	for _, v := range r.Violations {
		t.Error(v)
	}
	if !r.Converged {
		t.Fatal("the devices did not converge")
	}
}
