package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// watchDeadline bounds every wait for the watcher to notice a change.
const watchDeadline = 15 * time.Second

// startWatcher runs a Watcher on root until the test ends, and returns the
// channel its scan reports arrive on, after the initial full scan. The
// cleanup checks that Run returns and leaves no goroutine behind.
func startWatcher(t *testing.T, root string, idx *FolderIndex) <-chan WatchEvent {
	t.Helper()
	baseline := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan WatchEvent, 64)
	w, err := NewWatcher(WatchConfig{
		Scan:           ScanConfig{Root: root, Device: testDevice, Workers: 2},
		Debounce:       20 * time.Millisecond,
		RescanInterval: -1,
		OnScan: func(ev WatchEvent) {
			select {
			case events <- ev:
			case <-ctx.Done():
			}
		},
	}, idx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(watchDeadline):
			t.Fatal("Run did not return after cancel")
		}
		deadline := time.Now().Add(watchDeadline)
		for runtime.NumGoroutine() > baseline {
			if time.Now().After(deadline) {
				t.Fatalf("goroutines leaked: %d running, %d before the watcher", runtime.NumGoroutine(), baseline)
			}
			runtime.Gosched()
		}
	})
	select {
	case ev := <-events:
		if !ev.Full || ev.Err != nil {
			t.Fatalf("first scan: %+v", ev)
		}
	case <-time.After(watchDeadline):
		t.Fatal("no initial scan")
	}
	return events
}

// waitFor receives scan reports until cond holds for the index, and returns
// the report after which it held.
func waitFor(t *testing.T, events <-chan WatchEvent, idx *FolderIndex, what string, cond func(map[string]FileInfo) bool) WatchEvent {
	t.Helper()
	timeout := time.After(watchDeadline)
	for {
		select {
		case ev := <-events:
			if ev.Err != nil {
				t.Fatalf("%s: scan failed: %v", what, ev.Err)
			}
			if cond(indexState(t, idx)) {
				return ev
			}
		case <-timeout:
			t.Fatalf("%s: not seen within %v; index %v", what, watchDeadline, livePaths(indexState(t, idx)))
		}
	}
}

func hasContent(t *testing.T, state map[string]FileInfo, p string, data []byte) bool {
	fi, ok := state[p]
	return ok && !fi.Deleted && fi.Size == int64(len(data)) && reflect.DeepEqual(fi.Chunks, chunksOf(t, data))
}

func TestWatcherCatchesChanges(t *testing.T) {
	root, idx := newTestFolder(t)
	writeFile(t, root, "a.txt", []byte("a0"))
	writeFile(t, root, "b.txt", []byte("b0"))
	writeFile(t, root, "c.txt", []byte("c0"))
	events := startWatcher(t, root, idx)

	incremental := func(ev WatchEvent, what string) {
		t.Helper()
		if ev.Full {
			t.Fatalf("%s: caught by a full scan, not by the watcher's incremental one", what)
		}
	}

	writeFile(t, root, "a.txt", []byte("a1, longer"))
	ev := waitFor(t, events, idx, "write", func(s map[string]FileInfo) bool { return hasContent(t, s, "a.txt", []byte("a1, longer")) })
	incremental(ev, "write")

	writeFile(t, root, "sub/deeper/n.txt", []byte("n0"))
	ev = waitFor(t, events, idx, "create in new directories", func(s map[string]FileInfo) bool {
		return hasContent(t, s, "sub/deeper/n.txt", []byte("n0")) && s["sub/deeper"].Kind == KindDir
	})
	incremental(ev, "create")
	// The new directory is watched too.
	writeFile(t, root, "sub/deeper/n.txt", []byte("n1 changed"))
	waitFor(t, events, idx, "write in a new directory", func(s map[string]FileInfo) bool {
		return hasContent(t, s, "sub/deeper/n.txt", []byte("n1 changed"))
	})

	if err := os.Remove(filepath.Join(root, "b.txt")); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(t, events, idx, "delete", func(s map[string]FileInfo) bool { return s["b.txt"].Deleted })
	incremental(ev, "delete")

	if err := os.Rename(filepath.Join(root, "c.txt"), filepath.Join(root, "sub/c-renamed.txt")); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(t, events, idx, "rename", func(s map[string]FileInfo) bool {
		return s["c.txt"].Deleted && hasContent(t, s, "sub/c-renamed.txt", []byte("c0"))
	})
	incremental(ev, "rename")

	// An editor's atomic save: write a temporary file, rename it over the original.
	tmp := filepath.Join(root, ".a.txt.swp")
	if err := os.WriteFile(tmp, []byte("a2 saved atomically"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "a.txt")); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(t, events, idx, "atomic save", func(s map[string]FileInfo) bool {
		fi, ok := s[".a.txt.swp"]
		return hasContent(t, s, "a.txt", []byte("a2 saved atomically")) && (!ok || fi.Deleted)
	})
	incremental(ev, "atomic save")

	// A renamed directory keeps being watched under its new name.
	if err := os.Rename(filepath.Join(root, "sub"), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, events, idx, "directory rename", func(s map[string]FileInfo) bool {
		return s["sub/deeper/n.txt"].Deleted && s["sub"].Deleted && hasContent(t, s, "moved/deeper/n.txt", []byte("n1 changed"))
	})
	writeFile(t, root, "moved/deeper/x.txt", []byte("x"))
	waitFor(t, events, idx, "create in a renamed directory", func(s map[string]FileInfo) bool {
		_, old := s["sub/deeper/x.txt"]
		return hasContent(t, s, "moved/deeper/x.txt", []byte("x")) && !old
	})

	// Ignored files never reach the index.
	writeFile(t, root, TempFilePrefix+"download", []byte("partial"))
	writeFile(t, root, "z.txt", []byte("z"))
	waitFor(t, events, idx, "file after an ignored one", func(s map[string]FileInfo) bool { return hasContent(t, s, "z.txt", []byte("z")) })
	if _, ok := indexState(t, idx)[TempFilePrefix+"download"]; ok {
		t.Fatal("ignored temporary file was indexed")
	}
}

func TestWatcherRehashesStalePaths(t *testing.T) {
	root, idx := newTestFolder(t)
	data := []byte("the real content")
	writeFile(t, root, "f", data)
	events := startWatcher(t, root, idx)

	// Make the index claim other bytes for f while its metadata still
	// matches the disk, as when a file is modified with its mtime preserved.
	fi, ok, err := idx.Get("f")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	bogus := ChunkCID([]byte("other bytes of the same length"))
	fi.Chunks = []ChunkRef{{CID: bogus, Size: uint32(len(data))}}
	b := idx.Batch()
	b.PutLocal(fi, testDevice)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := idx.ReadChunk(root, bogus); !errors.Is(err, ErrChunkChanged) {
		t.Fatalf("ReadChunk = %v, want ErrChunkChanged", err)
	}
	ev := waitFor(t, events, idx, "stale re-hash", func(s map[string]FileInfo) bool { return hasContent(t, s, "f", data) })
	if !ev.Stale || !reflect.DeepEqual(ev.Paths, []string{"f"}) {
		t.Fatalf("fixed by %+v, want the stale re-hash of f", ev)
	}
}

func TestNewWatcherRejectsBadConfig(t *testing.T) {
	_, idx := newTestFolder(t)
	if _, err := NewWatcher(WatchConfig{Scan: ScanConfig{Root: filepath.Join(t.TempDir(), "missing"), Device: testDevice}}, idx); !errors.Is(err, ErrRootNotDir) {
		t.Fatalf("NewWatcher = %v, want ErrRootNotDir", err)
	}
}
