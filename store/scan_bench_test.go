package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchFolder writes big random files and small ones into a new folder.
func benchFolder(b *testing.B, bigFiles, bigSize, smallFiles, smallSize int) (string, int64) {
	b.Helper()
	root := filepath.Join(b.TempDir(), "folder")
	var total int64
	for i := range bigFiles {
		writeFile(b, root, fmt.Sprintf("big-%d", i), randomData(uint64(i), bigSize))
		total += int64(bigSize)
	}
	for i := range smallFiles {
		writeFile(b, root, fmt.Sprintf("d%03d/f%05d", i/100, i), randomData(uint64(1000+i), smallSize))
		total += int64(smallSize)
	}
	return root, total
}

func openBenchIndex(b *testing.B) *FolderIndex { return openTestIndex(b, "bench") }

// openTestIndex opens a real goleveldb index in a temporary directory, closed
// when the test ends, and returns one folder of it.
func openTestIndex(tb testing.TB, folder string) *FolderIndex {
	tb.Helper()
	db, err := Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db.Folder(folder)
}

// BenchmarkColdScan scans a folder into a new index: 4 files of 8 MiB and
// 1,000 files of 4 KiB. Throughput is the folder's bytes.
func BenchmarkColdScan(b *testing.B) {
	root, total := benchFolder(b, 4, 8<<20, 1000, 4<<10)
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		idx := openBenchIndex(b)
		b.StartTimer()
		res, err := Scan(context.Background(), ScanConfig{Root: root, Device: testDevice}, idx)
		if err != nil || res.New != 1004+10 {
			b.Fatalf("scan: %+v %v", res.New, err)
		}
	}
}

// BenchmarkWarmRescan rescans the same folder with nothing changed.
func BenchmarkWarmRescan(b *testing.B) {
	root, total := benchFolder(b, 4, 8<<20, 1000, 4<<10)
	idx := openBenchIndex(b)
	if _, err := Scan(context.Background(), ScanConfig{Root: root, Device: testDevice}, idx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	for b.Loop() {
		res, err := Scan(context.Background(), ScanConfig{Root: root, Device: testDevice}, idx)
		if err != nil || res.Unchanged != 1014 || res.BytesHashed != 0 {
			b.Fatalf("rescan: %+v %v", res, err)
		}
	}
	_ = os.Getpid
}

// BenchmarkWarmRescanSmallFiles rescans 10,000 unchanged 4 KiB files in
// 100 directories, as a daemon's periodic full rescan does: each rescan
// reuses the index entries the one before kept.
func BenchmarkWarmRescanSmallFiles(b *testing.B) { benchWarmRescanSmallFiles(b, false) }

// BenchmarkWarmRescanSmallFilesFromIndex is BenchmarkWarmRescanSmallFiles
// with every rescan reading the index, as the first one in a new process (a
// daemon's start-up scan) does.
func BenchmarkWarmRescanSmallFilesFromIndex(b *testing.B) { benchWarmRescanSmallFiles(b, true) }

func benchWarmRescanSmallFiles(b *testing.B, fromIndex bool) {
	root, _ := benchFolder(b, 0, 0, 10_000, 4<<10)
	idx := openBenchIndex(b)
	if _, err := Scan(context.Background(), ScanConfig{Root: root, Device: testDevice}, idx); err != nil {
		b.Fatal(err)
	}
	cpu0 := processCPU()
	for b.Loop() {
		if fromIndex {
			idx.scanKnown.Store(nil)
		}
		res, err := Scan(context.Background(), ScanConfig{Root: root, Device: testDevice}, idx)
		if err != nil || res.Unchanged != 10_100 || res.BytesHashed != 0 {
			b.Fatalf("rescan: %+v %v", res.Unchanged, err)
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU adds the process's CPU time per iteration since cpu0 as the
// metric cpu-ms/op: on a shared machine it moves far less with the load than
// the wall time does, and it says how many cores a scan kept busy.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu0 < 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
