package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/store"
)

func TestResolveFolder(t *testing.T) {
	fs := []FolderRef{
		{ID: "bafyAAAA1111", Root: "/home/u/Photos"},
		{ID: "bafyBBBB1111", Root: "/home/u/Work"},
	}
	cases := []struct {
		name, want string
		err        error
	}{
		{"bafyAAAA1111", "bafyAAAA1111", nil},
		{"A1111", "bafyAAAA1111", nil},
		{"/home/u/Work", "bafyBBBB1111", nil},
		{"/home/u/Work/", "bafyBBBB1111", nil},
		{"B1111", "bafyBBBB1111", nil},
		{"1111", "", ErrAmbiguousFolder},
		{"11", "", ErrUnknownFolder}, // shorter than minFolderSuffix
		{"zzz", "", ErrUnknownFolder},
		{"/home/u", "", ErrUnknownFolder},
		{"", "", ErrUnknownFolder},
	}
	for _, c := range cases {
		got, err := ResolveFolder(fs, c.name)
		if !errors.Is(err, c.err) || got.ID != c.want {
			t.Errorf("ResolveFolder(%q) = %q, %v; want %q, %v", c.name, got.ID, err, c.want, c.err)
		}
	}
	ref, rel, err := FolderOf(fs, "/home/u/Work/a/b.txt")
	if err != nil || ref.ID != "bafyBBBB1111" || rel != "a/b.txt" {
		t.Errorf("FolderOf inside = %v %q %v", ref, rel, err)
	}
	if _, rel, err := FolderOf(fs, "/home/u/Photos"); err != nil || rel != "" {
		t.Errorf("FolderOf root = %q %v", rel, err)
	}
	for _, p := range []string{"/home/u/Workshop/x", "/home/u", "/etc/passwd"} {
		if _, _, err := FolderOf(fs, p); !errors.Is(err, ErrNotInFolder) {
			t.Errorf("FolderOf(%q) = %v, want ErrNotInFolder", p, err)
		}
	}
}

// TestPausedFolderNeitherSendsNorReceives: while b pauses, a's changes do
// not reach b (though they reach c, which runs), b's servers refuse the
// folder, and b's own changes stay home; on resume both flow.
func TestPausedFolderNeitherSendsNorReceives(t *testing.T) {
	a := testNode(t, "a")
	b := testNode(t, "b", a.AddrInfo())
	c := testNode(t, "c", a.AddrInfo())
	dirA, dirB, dirC := t.TempDir(), t.TempDir(), t.TempDir()
	fa, err := a.CreateFolder(dirA, "team")
	if err != nil {
		t.Fatal(err)
	}
	fb := share(t, a, fa, b, crdt.RoleEditor, dirB)
	share(t, a, fa, c, crdt.RoleEditor, dirC)
	os.WriteFile(filepath.Join(dirA, "before.txt"), []byte("before"), 0o644)
	eventually(t, "the first file on b", fileIs(dirB, "before.txt", []byte("before")))

	if err := b.PauseFolder(fb.ID()); err != nil {
		t.Fatal(err)
	}
	if st := fb.Status(); st.State != "paused" || !st.Paused {
		t.Fatalf("paused folder status = %+v", st)
	}
	if _, err := b.Heads(fb.ID()); err == nil {
		t.Fatal("a paused folder still serves its log")
	}
	if b.CanRead(fb.ID(), a.ID(), "before.txt") {
		t.Fatal("a paused folder still serves files")
	}
	os.WriteFile(filepath.Join(dirA, "while-paused.txt"), []byte("from a"), 0o644)
	os.WriteFile(filepath.Join(dirB, "b-while-paused.txt"), []byte("from b"), 0o644)
	eventually(t, "a's change on c, which runs", fileIs(dirC, "while-paused.txt", []byte("from a")))
	if _, err := os.Stat(filepath.Join(dirB, "while-paused.txt")); err == nil {
		t.Fatal("a's change reached the paused folder")
	}
	if _, ok, _ := fb.Index().Get("b-while-paused.txt"); ok {
		t.Fatal("the paused folder scanned a local change")
	}

	if err := b.ResumeFolder(fb.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's change on b after resume", fileIs(dirB, "while-paused.txt", []byte("from a")))
	eventually(t, "b's change on a after resume", fileIs(dirA, "b-while-paused.txt", []byte("from b")))
}

// TestPausesSurviveRestart: the global switch and one folder's pause are
// both kept in the home.
func TestPausesSurviveRestart(t *testing.T) {
	home := filepath.Join(t.TempDir(), "a")
	open := func() *Node {
		n, err := Open(Config{Home: home, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Heartbeat: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := open()
	f1, err := n.CreateFolder(t.TempDir(), "one")
	if err != nil {
		t.Fatal(err)
	}
	f2, err := n.CreateFolder(t.TempDir(), "two")
	if err != nil {
		t.Fatal(err)
	}
	id1, id2 := f1.ID(), f2.ID()
	if err := n.PauseFolder(id1); err != nil {
		t.Fatal(err)
	}
	if err := n.PauseAll(); err != nil {
		t.Fatal(err)
	}
	n.Close()

	n = open()
	if !n.PausedAll() {
		t.Fatal("the global pause was lost on restart")
	}
	for _, id := range []string{id1, id2} {
		f, _ := n.Folder(id)
		if st := f.Status(); st.State != "paused" {
			t.Fatalf("folder %s after restart: %+v", id, st)
		}
	}
	f3, err := n.CreateFolder(t.TempDir(), "three")
	if err != nil {
		t.Fatal(err)
	}
	if !f3.Status().Paused {
		t.Fatal("a folder added under the global pause runs")
	}
	if err := n.ResumeAll(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{id1, id2, f3.ID()} {
		f, _ := n.Folder(id)
		eventually(t, "folder running after resume all", func() error {
			if st := f.Status(); st.State != "idle" {
				return fmt.Errorf("state %s", st.State)
			}
			return nil
		})
	}
	n.Close()
	n = open()
	defer n.Close()
	if n.PausedAll() {
		t.Fatal("resume all was lost on restart")
	}
	if f, _ := n.Folder(id1); f.Paused() {
		t.Fatal("resume all did not resume the folder paused on its own")
	}
}

// TestRemoveFolderKeepsFiles: removing a sync forgets the folder (list, index,
// log) and leaves every file; the directory can be shared again.
func TestRemoveFolderKeepsFiles(t *testing.T) {
	n := testNode(t, "a")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644)
	f, err := n.CreateFolder(dir, "gone")
	if err != nil {
		t.Fatal(err)
	}
	id := f.ID()
	eventually(t, "the file indexed", func() error {
		if _, ok, err := f.Index().Get("keep.txt"); !ok {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	if err := n.RemoveFolder(id); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Folder(id); ok {
		t.Fatal("the folder still runs")
	}
	raw, _ := os.ReadFile(filepath.Join(n.cfg.Home, FoldersFile))
	if strings.Contains(string(raw), id) {
		t.Fatalf("%s still lists the folder: %s", FoldersFile, raw)
	}
	entries := 0
	n.db.Folder(id).Walk("", func(store.FileInfo) error { entries++; return nil })
	ops := 0
	n.db.LogStore(id).ForEach(func(_, _ []byte) error { ops++; return nil })
	if entries != 0 || ops != 0 {
		t.Fatalf("index keeps %d entries and %d log ops of the removed folder", entries, ops)
	}
	if err := fileIs(dir, "keep.txt", []byte("mine"))(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, store.MarkerName)); err == nil {
		t.Fatal("the empty marker directory was left behind")
	}
	if err := n.RemoveFolder(id); !errors.Is(err, ErrUnknownFolder) {
		t.Fatalf("removing twice: %v", err)
	}
	if _, err := n.CreateFolder(dir, "again"); err != nil {
		t.Fatalf("sharing the directory again: %v", err)
	}
}

// TestMetricsAndEvents: /metrics scrapes without a token on the loopback
// API; the event stream needs the token, starts with a snapshot and reports
// a new folder, a pause and a peer.
func TestMetricsAndEvents(t *testing.T) {
	n := testNode(t, "a")
	api, err := n.StartAPI("")
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	base := "http://" + api.Addr()

	get := func(path, token string) *http.Response {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get("/v1/events", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("events without a token: %s", resp.Status)
	}
	resp := get("/v1/events", api.token)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := make(chan Event, 64)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e Event
				if json.Unmarshal([]byte(data), &e) == nil {
					events <- e
				}
			}
		}
	}()
	next := func(want string, match func(Event) bool) Event {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("stream ended waiting for %s", want)
				}
				if e.Type == want && (match == nil || match(e)) {
					return e
				}
			case <-timeout:
				t.Fatalf("no %s event", want)
			}
		}
	}
	if e := next(EventSnapshot, nil); e.Snapshot == nil || e.Snapshot.Device != n.ID().String() {
		t.Fatalf("snapshot = %+v", e)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.txt"), []byte("x"), 0o644)
	f, err := n.CreateFolder(dir, "watched")
	if err != nil {
		t.Fatal(err)
	}
	next(EventFolderAdded, func(e Event) bool { return e.Folder.ID == f.ID() })
	scrape := func() string {
		m := get(MetricsPath, "")
		defer m.Body.Close()
		if m.StatusCode != http.StatusOK {
			t.Fatalf("metrics: %s", m.Status)
		}
		body, _ := io.ReadAll(m.Body)
		return string(body)
	}
	eventually(t, "the first scan in the histogram", func() error {
		if body := scrape(); !strings.Contains(body, "meshfold_scan_duration_seconds_count") || strings.Contains(body, "meshfold_scan_duration_seconds_count 0\n") {
			return errors.New("no scan observed")
		}
		return nil
	})
	if err := n.PauseFolder(f.ID()); err != nil {
		t.Fatal(err)
	}
	next(EventFolderState, func(e Event) bool { return e.Folder.ID == f.ID() && e.Folder.State == "paused" })
	other := testNode(t, "b", n.AddrInfo())
	next(EventPeerConnected, func(e Event) bool { return e.Peer == other.ID().String() })

	body := scrape()
	for _, want := range []string{
		"meshfold_connected_peers 1", "meshfold_folders 1", "meshfold_paused_folders 1",
		"meshfold_needed_files 0", "meshfold_received_bytes_total", "meshfold_sent_bytes_total",
		"meshfold_pull_duration_seconds_count", "meshfold_rejected_ops_total 0",
		"meshfold_rejected_chunks_total 0", "meshfold_rejected_versions_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, f.ID()) || strings.Contains(body, dir) {
		t.Error("metrics name a folder or a path; they must be node-wide counts")
	}
}

// TestMaxConnsCapsConnections: the config file's max_connections is the
// resource manager's cap: past it, a new peer's connection is refused.
func TestMaxConnsCapsConnections(t *testing.T) {
	const limit = 2
	key, _, err := LoadOrCreateIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(HostConfig{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, MaxConns: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ok := 0
	for range limit + 2 {
		other := testHost(t, "/ip4/127.0.0.1/tcp/0")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if other.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}) == nil {
			// The dialer may see the connection before h's limiter closes it.
			waitFor(t, "h to settle the connection", 10*time.Second, func() bool {
				return len(h.Network().Peers()) <= limit
			})
			if h.Network().Connectedness(other.ID()) == network.Connected {
				ok++
			}
		}
		cancel()
	}
	if ok != limit {
		t.Fatalf("%d peers connected to a host capped at %d connections", ok, limit)
	}
}

// TestPathStatusReportsConflicts: conflict copies show in the folder report
// and in the status of the paths that hold them, not of their siblings.
func TestPathStatusReportsConflicts(t *testing.T) {
	n := testNode(t, "a")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "docs"), 0o755)
	os.WriteFile(filepath.Join(dir, "docs", "plan.txt"), []byte("v2"), 0o644)
	os.WriteFile(filepath.Join(dir, "docs", "plan.sync-conflict-20260101-000000-abcdefg.txt"), []byte("v1"), 0o644)
	os.WriteFile(filepath.Join(dir, "other.txt"), []byte("x"), 0o644)
	f, err := n.CreateFolder(dir, "c")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the files indexed", func() error {
		if _, ok, _ := f.Index().Get("other.txt"); !ok {
			return errors.New("not yet")
		}
		return nil
	})
	r := n.Report().Folders[0]
	if r.Conflicts != 1 || len(r.ConflictNames) != 1 || r.ConflictNames[0] != "docs/plan.sync-conflict-20260101-000000-abcdefg.txt" {
		t.Fatalf("folder report conflicts: %d %v", r.Conflicts, r.ConflictNames)
	}
	for p, want := range map[string]string{"": PathConflict, "docs": PathConflict, "other.txt": PathSynced, "docs/plan.txt": PathSynced} {
		got, err := f.PathStatus(p)
		if err != nil || got.State != want {
			t.Errorf("PathStatus(%q) = %+v, %v; want %s", p, got, err, want)
		}
	}
	if _, err := f.PathStatus("../escape"); err == nil {
		t.Error("a path leaving the folder was accepted")
	}
}
