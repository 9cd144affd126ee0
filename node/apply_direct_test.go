package node

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/meshfold/meshfold/node/plan"
)

// shuffledFetcher delivers the chunks of a mapFetcher in a seeded random
// order, so the files' runs of contiguous chunks break and interleave.
type shuffledFetcher struct {
	m    *mapFetcher
	seed uint64
}

func (s shuffledFetcher) Fetch(ctx context.Context, want []cid.Cid, deliver func(cid.Cid, []byte) error) error {
	want = append([]cid.Cid(nil), want...)
	r := rand.New(rand.NewPCG(s.seed, 1))
	// Shuffle runs of 1-3 chunks, so some stay contiguous.
	for i := 0; i < len(want); i += 3 {
		j := r.IntN(len(want))
		want[i], want[j] = want[j], want[i]
	}
	return s.m.Fetch(ctx, want, deliver)
}

// directWorks: this platform and the test's temporary filesystem take
// O_DIRECT opens.
func directWorks(t *testing.T, dir string) bool {
	if oDirect == 0 {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|oDirect, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(filepath.Join(dir, "probe"))
	return true
}

// Files fetched in file order, in a shuffled order (runs break, more files
// want a buffer than maxDirectBuffers), and files partly copied from local
// chunks (buffered writes beside direct ones) all land byte for byte.
func TestApplyDirectWritesLandExactly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		shuffle bool
	}{{"in order", false}, {"shuffled", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newApplyEnv(t)
			base := randomBytes(40, 6<<20)
			if err := os.WriteFile(filepath.Join(e.dir, "base.bin"), base, 0o644); err != nil {
				t.Fatal(err)
			}
			e.scan()
			if tc.shuffle {
				e.app.Fetcher = shuffledFetcher{m: e.fetcher, seed: 7}
			}
			var actions []plan.Action
			want := map[string][]byte{}
			for i := range maxDirectBuffers + 3 {
				content := randomBytes(uint64(50+i), directMinFetch+i*77_777+13)
				if i%3 == 1 { // the middle of base is local: copied, not fetched
					content = append(append(content[:1<<20:1<<20], base[2<<20:4<<20]...), content[1<<20:]...)
				}
				name := string(rune('a'+i)) + ".bin"
				want[name] = content
				e.fetcher.add(content)
				actions = append(actions, plan.Action{Op: plan.Fetch, Want: remoteVersion(t, name, content, "B", uint64(i+1))})
			}
			small := randomBytes(60, 100_000) // under directMinFetch: buffered only
			want["small.bin"] = small
			e.fetcher.add(small)
			actions = append(actions, plan.Action{Op: plan.Fetch, Want: remoteVersion(t, "small.bin", small, "B", 99)})

			res := e.apply(actions...)
			if len(res.Skipped) > 0 {
				t.Fatalf("skipped: %v", res.Skipped)
			}
			for name, content := range want {
				if !bytes.Equal(e.read(name), content) {
					t.Fatalf("%s differs from what was fetched", name)
				}
			}
			if res.BytesCopied == 0 {
				t.Fatalf("copied %d bytes: local chunks were not reused", res.BytesCopied)
			}
			if directWorks(t, e.dir) && res.BytesDirect < res.BytesFetched/2 {
				t.Fatalf("%d of %d fetched bytes written directly on %s", res.BytesDirect, res.BytesFetched, runtime.GOOS)
			}
			if !directWorks(t, e.dir) && res.BytesDirect != 0 {
				t.Fatalf("%d bytes written directly where O_DIRECT does not open", res.BytesDirect)
			}
			if res := e.scan(); len(res.ChangedPaths) != 0 {
				t.Fatalf("scan after apply found changes: %v", res.ChangedPaths)
			}
		})
	}
}

// A direct write the descriptor refuses goes through the page cache instead
// (and the rest of that file too); a write that fails both ways is the
// file's error once the queue is drained.
func TestDirectWriterFallsBackAndReportsErrors(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	buffered, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer buffered.Close()
	readOnly, err := os.Open(name) // writes through it fail
	if err != nil {
		t.Fatal(err)
	}
	var p directPool
	var res ApplyResult
	s := &stagedFile{f: buffered, direct: &directWriter{f: readOnly}}
	content := randomBytes(70, 3*directBufSize)
	for i := range 3 {
		buf := p.get()
		copy(buf, content[i*directBufSize:])
		p.submit(s, buf, directBufSize, int64(i*directBufSize))
	}
	s.direct.closed = true
	p.closeLater(s)
	p.drain(&res)
	if err := s.directErr(); err != nil {
		t.Fatalf("fallback write failed: %v", err)
	}
	if !s.direct.refused || res.BytesDirect != 0 {
		t.Fatalf("refused %v, %d bytes counted as direct", s.direct.refused, res.BytesDirect)
	}
	got, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("file holds %d bytes (err %v), want the %d written", len(got), err, len(content))
	}
	if p.held != 0 || len(p.free) != p.alloc {
		t.Fatalf("buffers: %d held, %d of %d free after drain", p.held, len(p.free), p.alloc)
	}

	// Both descriptors refuse: the error reaches the file.
	ro2, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	ro3, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ro3.Close()
	s2 := &stagedFile{f: ro3, direct: &directWriter{f: ro2}}
	buf := p.get()
	p.submit(s2, buf, directAlign, 0)
	p.closeLater(s2)
	p.drain(&res)
	if s2.directErr() == nil {
		t.Fatal("a write that failed through both descriptors was not reported")
	}
}
