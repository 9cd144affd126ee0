package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/meshfold/meshfold/store"
)

var t0 = time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC).UnixNano()

// version builds a file version of p authored by dev with the given vector and content.
func version(p string, dev string, seq uint64, vec store.VersionVector, content string) store.FileInfo {
	fi := store.FileInfo{Path: p, Kind: store.KindFile, Mode: 0o644, ModTime: t0 + int64(seq), Author: store.DeviceID(dev), Seq: seq, Version: vec}
	if content != "" {
		c := store.ChunkCID([]byte(content))
		fi.Chunks = []store.ChunkRef{{CID: c, Size: uint32(len(content))}}
		fi.Size = int64(len(content))
	}
	return fi
}

func tomb(p, dev string, seq uint64, vec store.VersionVector) store.FileInfo {
	fi := version(p, dev, seq, vec, "")
	fi.Deleted = true
	return fi
}

func vec(pairs ...any) store.VersionVector {
	var v store.VersionVector
	for i := 0; i < len(pairs); i += 2 {
		v = v.Update(store.DeviceID(pairs[i].(string)), uint64(pairs[i+1].(int)))
	}
	return v
}

func accepted(vs ...store.FileInfo) []Candidate {
	out := make([]Candidate, len(vs))
	for i, v := range vs {
		out[i] = Candidate{Version: v}
	}
	return out
}

func ops(actions []Action) string {
	s := ""
	for _, a := range actions {
		s += fmt.Sprintf("%s %s;", a.Op, a.Want.Path)
	}
	return s
}

func TestPlanSingleVersion(t *testing.T) {
	base := version("a.txt", "A", 1, vec("A", 1), "one")
	newer := version("a.txt", "B", 1, vec("A", 1, "B", 1), "two")
	cases := []struct {
		name   string
		local  []store.FileInfo
		remote []Candidate
		want   string
	}{
		{"new remote file is fetched", nil, accepted(base), "fetch a.txt;"},
		{"newer remote version is fetched", []store.FileInfo{base}, accepted(newer), "fetch a.txt;"},
		{"older remote version is ignored", []store.FileInfo{newer}, accepted(base), ""},
		{"equal version needs nothing", []store.FileInfo{base}, accepted(base), ""},
		{"remote deletion deletes", []store.FileInfo{base}, accepted(tomb("a.txt", "B", 1, vec("A", 1, "B", 1))), "delete a.txt;"},
		{"deletion of a file we never had is only recorded", nil, accepted(tomb("a.txt", "B", 1, vec("B", 1))), "record a.txt;"},
		{"rejected version takes no part", []store.FileInfo{base}, []Candidate{{Version: newer, Verdict: Reject}}, ""},
		{"quarantined version is kept aside, not applied", []store.FileInfo{base}, []Candidate{{Version: newer, Verdict: Quarantine}}, "quarantine a.txt;"},
		{"a version losing to a lock is kept as a copy, not applied", []store.FileInfo{base}, []Candidate{{Version: newer, Verdict: LockConflict}, {Version: newer, Verdict: LockConflict}}, "keep-copy a.txt;"},
		{"a deletion losing to a lock keeps nothing", []store.FileInfo{base}, []Candidate{{Version: tomb("a.txt", "B", 1, vec("A", 1, "B", 1)), Verdict: LockConflict}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ops(Plan(Config{Local: "L"}, c.local, c.remote)); got != c.want {
				t.Fatalf("plan = %q, want %q", got, c.want)
			}
		})
	}
}

// TestPlanLockConflictCopyName: the copy of a version that lost to a lock is
// named after its author and time, the same on every device, and the path
// itself still gets the accepted winner.
func TestPlanLockConflictCopyName(t *testing.T) {
	base := version("d/doc.txt", "A", 1, vec("A", 1), "one")
	holder := version("d/doc.txt", "A", 2, vec("A", 2), "holder")
	intruder := version("d/doc.txt", "B", 1, vec("A", 1, "B", 1), "intruder")
	got := Plan(Config{Local: "C"}, []store.FileInfo{base}, []Candidate{{Version: holder}, {Version: intruder, Verdict: LockConflict}})
	if ops(got) != "fetch d/doc.txt;keep-copy d/doc.txt;" && ops(got) != "keep-copy d/doc.txt;fetch d/doc.txt;" {
		t.Fatalf("plan = %q", ops(got))
	}
	for _, a := range got {
		if a.Op == KeepCopy && (a.CopyName != "d/doc.sync-conflict-20261123-103000-42.txt" || a.Want.Author != "B") {
			t.Fatalf("copy %+v", a)
		}
		if a.Op == Fetch && a.Want.Author != "A" {
			t.Fatalf("the path got %s's version", a.Want.Author)
		}
	}
}

func TestPlanConcurrentEdits(t *testing.T) {
	// A and B both edit the base version; B's edit is later in ModTime, so B wins.
	a := version("doc.txt", "A", 2, vec("A", 2), "from A")
	b := version("doc.txt", "B", 7, vec("A", 1, "B", 7), "from B")
	b.ModTime = a.ModTime + int64(time.Second)

	// On A (holding the loser): keep A's content as a conflict copy, fetch B's.
	got := Plan(Config{Local: "A"}, []store.FileInfo{a}, accepted(b))
	if len(got) != 1 || got[0].Op != ConflictCopy || got[0].Want.Author != "B" {
		t.Fatalf("loser plan = %+v", got)
	}
	wantName := "doc.sync-conflict-20261123-103000-41.txt" // ModTime of A's version, device "A" = 0x41
	if got[0].CopyName != wantName {
		t.Fatalf("copy name %q, want %q", got[0].CopyName, wantName)
	}
	// On B (holding the winner): nothing to do.
	if got := Plan(Config{Local: "B"}, []store.FileInfo{b}, accepted(a)); len(got) != 0 {
		t.Fatalf("winner plan = %+v", got)
	}
	// On C (holding neither): take the winner, no copy.
	if got := ops(Plan(Config{Local: "C"}, nil, accepted(a, b))); got != "fetch doc.txt;" {
		t.Fatalf("bystander plan = %q", got)
	}
	// After A adopted B's version, A's plan is stable even though A's old
	// version is still announced somewhere.
	if got := Plan(Config{Local: "A"}, []store.FileInfo{b}, accepted(a, b)); len(got) != 0 {
		t.Fatalf("settled plan = %+v", got)
	}
}

func TestPlanEditBeatsConcurrentDelete(t *testing.T) {
	edit := version("x", "A", 2, vec("A", 2), "edited")
	del := tomb("x", "B", 9, vec("A", 1, "B", 9))
	del.ModTime = edit.ModTime + int64(time.Hour) // a later delete still loses
	if got := ops(Plan(Config{Local: "B"}, []store.FileInfo{del}, accepted(edit))); got != "fetch x;" {
		t.Fatalf("deleting side: %q", got)
	}
	if got := Plan(Config{Local: "A"}, []store.FileInfo{edit}, accepted(del)); len(got) != 0 {
		t.Fatalf("editing side must keep its edit: %+v", got)
	}
}

func TestPlanIdenticalConcurrentContentIsNotAConflict(t *testing.T) {
	a := version("same", "A", 1, vec("A", 1), "same bytes")
	b := version("same", "B", 1, vec("B", 1), "same bytes")
	got := Plan(Config{Local: "A"}, []store.FileInfo{a}, accepted(b))
	if w, _, _ := Winner([]store.FileInfo{a, b}); w.Author == "A" {
		if len(got) != 0 {
			t.Fatalf("winner side plan = %+v", got)
		}
	} else if ops(got) != "record same;" {
		t.Fatalf("plan = %q, want a record only", ops(got))
	}
}

func TestPlanRenameIsAMove(t *testing.T) {
	old := version("old/name.bin", "A", 1, vec("A", 1), "payload")
	gone := tomb("old/name.bin", "B", 1, vec("A", 1, "B", 1))
	moved := version("new/name.bin", "B", 2, vec("B", 2), "payload")
	got := Plan(Config{Local: "A"}, []store.FileInfo{old}, accepted(gone, moved))
	if len(got) != 2 || got[0].Op != Move || got[0].From != "old/name.bin" || got[0].Want.Path != "new/name.bin" || got[1].Op != Record {
		t.Fatalf("plan = %+v", got)
	}
}

func TestPlanOrdersDirectoriesAndDeletions(t *testing.T) {
	dir := store.FileInfo{Path: "d", Kind: store.KindDir, Author: "B", Seq: 1, Version: vec("B", 1)}
	file := version("d/f", "B", 2, vec("B", 2), "f")
	oldDir := store.FileInfo{Path: "e", Kind: store.KindDir, Author: "A", Seq: 1, Version: vec("A", 1)}
	oldFile := version("e/g", "A", 2, vec("A", 2), "g")
	got := ops(Plan(Config{Local: "A"}, []store.FileInfo{oldDir, oldFile}, accepted(file, dir,
		tomb("e", "B", 3, vec("A", 1, "B", 3)), tomb("e/g", "B", 4, vec("A", 2, "B", 4)))))
	if want := "fetch d;fetch d/f;delete e/g;delete e;"; got != want {
		t.Fatalf("plan = %q, want %q", got, want)
	}
}

func TestConflictName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"report.docx", "report.sync-conflict-20261123-103000-dev.docx"},
		{"a/b/archive.tar.gz", "a/b/archive.tar.sync-conflict-20261123-103000-dev.gz"},
		{".bashrc", ".bashrc.sync-conflict-20261123-103000-dev"},
		{"dir/Makefile", "dir/Makefile.sync-conflict-20261123-103000-dev"},
	} {
		if got := ConflictName(c.in, t0, "dev"); got != c.want {
			t.Errorf("ConflictName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestPlanIsOrderIndependent: shuffling and duplicating the inputs never
// changes the plan (the harness depends on this).
func TestPlanIsOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	devs := []string{"A", "B", "C", "D"}
	for seed := range 300 {
		var local []store.FileInfo
		var remote []Candidate
		for p := range 6 {
			name := fmt.Sprintf("f%d", p)
			for range 1 + r.IntN(4) {
				d := devs[r.IntN(len(devs))]
				v := vec("A", r.IntN(3), "B", r.IntN(3), d, 3+r.IntN(3))
				fv := version(name, d, uint64(r.IntN(50)+1), v, fmt.Sprint(r.IntN(3)))
				if r.IntN(4) == 0 {
					fv.Deleted, fv.Chunks, fv.Size = true, nil, 0
				}
				remote = append(remote, Candidate{Version: fv, Verdict: Verdict(r.IntN(3))})
			}
			if r.IntN(2) == 0 {
				local = append(local, remote[len(remote)-1].Version)
			}
		}
		want := Plan(Config{Local: "L"}, local, remote)
		for range 5 {
			l2, r2 := slices.Clone(local), slices.Clone(remote)
			r.Shuffle(len(l2), func(i, j int) { l2[i], l2[j] = l2[j], l2[i] })
			r2 = append(r2, r2[:r.IntN(len(r2)+1)]...)
			r.Shuffle(len(r2), func(i, j int) { r2[i], r2[j] = r2[j], r2[i] })
			got := Plan(Config{Local: "L"}, l2, r2)
			if !slices.Equal(summary(got), summary(want)) {
				t.Fatalf("seed %d: plan depends on input order:\n%+v\nvs\n%+v", seed, got, want)
			}
		}
	}
}

func summary(a []Action) []string {
	var out []string
	for _, x := range a {
		out = append(out, fmt.Sprintf("%s %s %s %d %s %s", x.Op, x.Want.Path, x.Want.Author, x.Want.Seq, x.From, x.CopyName))
	}
	return out
}

func TestDefaultShortIDTellsEd25519DevicesApart(t *testing.T) {
	// Two peer IDs of Ed25519 keys share their first bytes (the multihash and
	// key-type prefix); the default short ID must still differ.
	a := store.DeviceID("\x00\x24\x08\x01\x12\x20" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	b := store.DeviceID("\x00\x24\x08\x01\x12\x20" + "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	if shortID(Config{}, a) == shortID(Config{}, b) {
		t.Fatalf("both devices render as %q", shortID(Config{}, a))
	}
}
