package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vbauerster/mpb/v8"

	"github.com/meshfold/meshfold/node"
)

func TestRenderFolderStates(t *testing.T) {
	base := node.FolderReport{ID: "bafyFOLDER", Root: "/home/u/Work"}
	with := func(fn func(*node.FolderReport)) node.FolderReport {
		f := base
		fn(&f)
		return f
	}
	cases := []struct {
		name  string
		f     node.FolderReport
		plain string // the whole line without colour
		color string // what the coloured line starts with
	}{
		{"synced", with(func(f *node.FolderReport) { f.State = "idle"; f.Peers = 2 }),
			"synced    bafyFOLDER  /home/u/Work  peers 2", colorGreen + "✓ synced"},
		{"syncing", with(func(f *node.FolderReport) { f.State = "idle"; f.NeedFiles = 3; f.NeedBytes = 2_500_000 }),
			"syncing   bafyFOLDER  /home/u/Work  peers 0, 3 files, 2.38 MiB left", colorBlue + "↻ syncing"},
		{"conflict", with(func(f *node.FolderReport) {
			f.State = "idle"
			f.Conflicts = 4
			f.ConflictNames = []string{"a.sync-conflict-1.txt", "b.sync-conflict-2.txt", "c.sync-conflict-3.txt", "d.sync-conflict-4.txt"}
		}),
			"conflict  bafyFOLDER  /home/u/Work  peers 0, 4 conflicts: a.sync-conflict-1.txt, b.sync-conflict-2.txt, c.sync-conflict-3.txt, ...", colorYellow + "! conflict"},
		{"paused", with(func(f *node.FolderReport) { f.State = "paused"; f.Paused = true; f.NeedFiles = 1 }),
			"paused    bafyFOLDER  /home/u/Work  peers 0, 1 file, 0 B left", colorGrey + "‖ paused"},
		{"scanning", with(func(f *node.FolderReport) {
			f.State = "idle"
			f.Scanning, f.ScanFiles, f.ScanBytes, f.ScanHashed = true, 2, 3<<20, 1<<20
		}),
			"syncing   bafyFOLDER  /home/u/Work  peers 0, scanning: 1.00 MiB of 3.00 MiB hashed (2 files)", colorBlue + "↻ syncing"},
		{"no access", with(func(f *node.FolderReport) { f.State = "idle"; f.Access = node.AccessPending; f.Request = "r1" }),
			"no access bafyFOLDER  /home/u/Work  peers 0, access request r1 pending: waiting for a manager", colorGrey + "⊘ no access"},
		{"restricted", with(func(f *node.FolderReport) { f.State = "idle"; f.NoAccess = []string{"Design", "HR"} }),
			"synced    bafyFOLDER  /home/u/Work  peers 0, no access: /Design, /HR", colorGreen + "✓ synced"},
		{"error", with(func(f *node.FolderReport) { f.State = "error"; f.Err = "folder marker is missing" }),
			"error     bafyFOLDER  /home/u/Work  peers 0, error: folder marker is missing", colorRed + "✗ error"},
	}
	for _, c := range cases {
		if got := renderFolder(c.f, false); got != c.plain {
			t.Errorf("%s plain:\n got %q\nwant %q", c.name, got, c.plain)
		}
		if got := renderFolder(c.f, true); !strings.HasPrefix(got, c.color) || !strings.Contains(got, colorReset) {
			t.Errorf("%s colour: %q", c.name, got)
		}
	}
}

// TestFolderDetailsExtend: a part added to folderDetails shows on the line
// (how the no-access and lock reports plug in).
func TestFolderDetailsExtend(t *testing.T) {
	saved := folderDetails
	defer func() { folderDetails = saved }()
	folderDetails = append(folderDetails, func(f node.FolderReport) string { return "locked: plan.txt by alice" })
	if got := renderFolder(node.FolderReport{ID: "x", Root: "/r", Status: node.Status{State: "idle"}}, false); !strings.HasSuffix(got, ", locked: plan.txt by alice") {
		t.Fatalf("extended line = %q", got)
	}
}

func TestRenderPathAndReport(t *testing.T) {
	var b bytes.Buffer
	renderPath(&b, "/home/u/Work/a.txt", node.PathReport{State: node.PathSyncing, NeedFiles: 1, NeedBytes: 10}, false)
	if got := b.String(); got != "syncing   /home/u/Work/a.txt  1 file, 10 B left\n" {
		t.Fatalf("path line = %q", got)
	}
	b.Reset()
	renderStatus(&b, node.StatusReport{Device: "dev", PausedAll: true}, false)
	if got := b.String(); !strings.Contains(got, "All folders are paused") || !strings.Contains(got, "No folders yet") {
		t.Fatalf("report = %q", got)
	}
}

// TestProgressBarFollowsNeed: a folder's bar starts at its first need, grows
// with it, advances as the need shrinks and completes when nothing is left.
func TestProgressBarFollowsNeed(t *testing.T) {
	p := mpb.New(mpb.WithOutput(io.Discard), mpb.WithAutoRefresh())
	defer p.Shutdown()
	bars := map[string]*progressBar{}
	f := node.FolderReport{ID: "folder"}
	step := func(files int, bytes int64) {
		f.NeedFiles, f.NeedBytes = files, bytes
		trackProgress(p, bars, f)
	}
	step(0, 0)
	if len(bars) != 0 {
		t.Fatal("a bar for a folder with nothing to do")
	}
	step(4, 1000)
	b := bars["folder"]
	if b == nil || b.total != 1000 || b.bar.Current() != 0 {
		t.Fatalf("first need: %+v", b)
	}
	step(3, 600)
	if b.bar.Current() != 400 {
		t.Fatalf("current = %d, want 400", b.bar.Current())
	}
	step(5, 1500) // more arrived
	if b.total != 1500 || b.bar.Current() != 0 {
		t.Fatalf("after growth: total %d current %d", b.total, b.bar.Current())
	}
	step(0, 0)
	if len(bars) != 0 {
		t.Fatal("the bar outlived the transfer")
	}
	waitUntil(t, "the finished transfer's bar complete", func() error {
		if !b.bar.Completed() {
			return errors.New("not complete")
		}
		return nil
	})
	if b.bar.Current() != 1500 {
		t.Fatalf("completed bar at %d of 1500", b.bar.Current())
	}
}
