package chunks

import (
	"bytes"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// bufSource is a memSource that reads into the server's buffers when the
// chunk fits, as store's ReadChunkInto does.
type bufSource struct {
	*memSource
	fits, misses atomic.Int64 // reads into buf, reads that did not fit
}

func (b *bufSource) ReadChunkInto(folder string, c cid.Cid, allowed func(string) bool, buf []byte) ([]byte, error) {
	d, err := b.ReadChunk(folder, c, allowed)
	if err != nil {
		return nil, err
	}
	if cap(buf) < len(d) {
		b.misses.Add(1)
		return bytes.Clone(d), nil
	}
	b.fits.Add(1)
	return append(buf[:0], d...), nil
}

// served is what a server writes for reqs (then EOF).
func served(t *testing.T, src Source, reqs ...[]cid.Cid) []byte {
	t.Helper()
	var in bytes.Buffer
	for _, r := range reqs {
		if err := wire.WriteFrame(&in, wire.TypeChunkRequest, Request{Folder: testFolder, CIDs: r}.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	rw := struct {
		*bytes.Buffer
		*bytes.Reader
	}{&out, bytes.NewReader(in.Bytes())}
	if err := NewServer(src, denyPrefix("secret/")).Serve(t.Context(), fakeRW{rw.Reader, rw.Buffer}, "client"); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

type fakeRW struct {
	r *bytes.Reader
	w *bytes.Buffer
}

func (f fakeRW) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f fakeRW) Write(p []byte) (int, error) { return f.w.Write(p) }

// Responses built in reused buffers (chunks read straight into the frame)
// are byte for byte the frames of a plain Source, errors and chunks too
// large for the first buffers included; once buffers grew, reads fit.
func TestServerBuffersFramesMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	mem := newMemSource()
	var all []cid.Cid
	for i, size := range []int{1, 1000, frameBufferMin, frameBufferMin + 1, 300_000, store.MaxChunkSize, 5000} {
		all = append(all, mem.add("docs/"+string(rune('a'+i)), randomData(r, size)))
	}
	secret := mem.add("secret/x", randomData(r, 100))
	missing := store.ChunkCID([]byte("nobody has this"))
	var reqs [][]cid.Cid
	for range 3 { // enough rounds for the buffers to grow and be reused
		reqs = append(reqs, all[:4], append([]cid.Cid{secret, missing}, all[4:]...))
	}
	want := served(t, mem, reqs...)
	bs := &bufSource{memSource: mem}
	got := served(t, bs, reqs...)
	if !bytes.Equal(got, want) {
		t.Fatalf("in-place frames differ from appended ones (%d vs %d bytes)", len(got), len(want))
	}
	if bs.fits.Load() < int64(len(all)) || bs.misses.Load() == 0 {
		t.Fatalf("%d reads fit a buffer, %d did not: buffers neither used nor grown", bs.fits.Load(), bs.misses.Load())
	}
}
