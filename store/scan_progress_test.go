package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A scan reports its hashing as it goes: the last report has every queued
// file hashed, the bytes add up to what is on disk, and no report ever shows
// more hashed than queued. A warm rescan queues nothing.
func TestScanReportsProgress(t *testing.T) {
	root := t.TempDir()
	var total int64
	for i, size := range []int{0, 10, 300 << 10, 3 << 20} {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(j*7 + i)
		}
		if err := os.WriteFile(filepath.Join(root, string(rune('a'+i))+".bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(size)
	}
	idx := openTestIndex(t, "f")
	var mu sync.Mutex
	var reports []ScanProgress
	cfg := ScanConfig{Root: root, Device: "dev", Progress: func(p ScanProgress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	}}
	if _, err := Scan(context.Background(), cfg, idx); err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	for _, p := range reports {
		if p.FilesHashed > p.FilesToHash || p.BytesHashed > p.BytesToHash+total {
			t.Fatalf("a report shows more hashed than queued: %+v", p)
		}
	}
	last := reports[len(reports)-1]
	if last != (ScanProgress{FilesToHash: 4, FilesHashed: 4, BytesToHash: total, BytesHashed: total}) {
		t.Fatalf("last report %+v, want 4 files and %d bytes hashed of as many queued", last, total)
	}
	reports = nil
	if _, err := Scan(context.Background(), cfg, idx); err != nil {
		t.Fatal(err)
	}
	if last := reports[len(reports)-1]; last != (ScanProgress{}) {
		t.Fatalf("a warm rescan queued work: %+v", last)
	}
}
