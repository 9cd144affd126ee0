package chunks

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/meshfold/meshfold/protocol/internal/golden"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

func deltaVectors() map[string][]byte {
	a, b := store.ChunkCID([]byte("chunk a")), store.ChunkCID([]byte("chunk b"))
	m := NewManifest(a, []byte("chunk a"))
	return map[string][]byte{
		"manifest_request_v1":  wire.AppendFrame(nil, wire.TypeDeltaManifestRequest, ManifestRequest{Folder: testFolder, CIDs: []cid.Cid{a, b}}.Marshal()),
		"manifest_ok_v1":       wire.AppendFrame(nil, wire.TypeDeltaManifest, m.Marshal()),
		"manifest_noaccess_v1": wire.AppendFrame(nil, wire.TypeDeltaManifest, Manifest{CID: b, Code: wire.CodeNoAccess}.Marshal()),
		"range_request_v1": wire.AppendFrame(nil, wire.TypeDeltaRangeRequest,
			RangeRequest{Folder: testFolder, CID: a, Ranges: []Range{{Off: 0, Len: 2}, {Off: 4, Len: 3}}}.Marshal()),
		"range_ok_v1": wire.AppendFrame(nil, wire.TypeDeltaRange, RangeResponse{CID: a, Data: []byte("ch" + " a")}.Marshal()),
	}
}

func TestDeltaGolden(t *testing.T) {
	for name, v := range deltaVectors() {
		golden.Check(t, name, v, *update)
	}
	f, err := wire.ReadFrameBytes(golden.Read(t, "range_request_v1"), deltaServerLimits)
	if err != nil {
		t.Fatal(err)
	}
	r, err := UnmarshalRangeRequest(f.Payload)
	if err != nil || len(r.Ranges) != 2 || r.Ranges[1] != (Range{Off: 4, Len: 3}) || r.Total() != 5 {
		t.Fatalf("%+v %v", r, err)
	}
	f, _ = wire.ReadFrameBytes(golden.Read(t, "manifest_ok_v1"), deltaClientLimits)
	m, err := UnmarshalManifest(f.Payload)
	if err != nil || len(m.Sizes) != 1 || m.Sizes[0] != 7 || m.Hashes[0] != store.HashPiece([]byte("chunk a")) {
		t.Fatalf("%+v %v", m, err)
	}
}

// The piece cutter is wire-visible between peers: pin its cut points on a
// fixed input, and its bounds on random data.
func TestPieceCutsGolden(t *testing.T) {
	data := randomData(rand.New(rand.NewPCG(3, 4)), 256<<10)
	var cuts []int
	store.PieceCuts(data, func(off, n int) {
		if n > store.MaxPieceSize || (n < store.MinPieceSize && off+n != len(data)) {
			t.Fatalf("piece of %d bytes at %d", n, off)
		}
		cuts = append(cuts, n)
	})
	var e wire.Encoder
	for _, n := range cuts {
		e.Uvarint(uint64(n))
	}
	golden.Check(t, "piece_cuts_v1", e.Out(), *update)
}

func TestDeltaMessagesReject(t *testing.T) {
	a := store.ChunkCID([]byte("a"))
	h := store.HashPiece([]byte("a"))
	for name, in := range map[string][]byte{
		"no cids":   ManifestRequest{Folder: testFolder}.Marshal(),
		"no folder": ManifestRequest{CIDs: []cid.Cid{a}}.Marshal(),
	} {
		if _, err := UnmarshalManifestRequest(in); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("manifest request %s: %v", name, err)
		}
	}
	big := Manifest{CID: a}
	for range MaxPiecesPerChunk {
		big.Sizes, big.Hashes = append(big.Sizes, store.MaxPieceSize), append(big.Hashes, h)
	}
	for name, in := range map[string][]byte{
		"pieces with error": Manifest{CID: a, Code: wire.CodeNotFound, Sizes: []uint32{1}, Hashes: []store.PieceHash{h}}.Marshal(),
		"empty piece":       Manifest{CID: a, Sizes: []uint32{0}, Hashes: []store.PieceHash{h}}.Marshal(),
		"oversize piece":    Manifest{CID: a, Sizes: []uint32{store.MaxPieceSize + 1}, Hashes: []store.PieceHash{h}}.Marshal(),
		"missing hash":      Manifest{CID: a, Sizes: []uint32{1, 2}, Hashes: []store.PieceHash{h}}.Marshal(),
		"beyond a chunk":    big.Marshal(),
		"trailing":          append(Manifest{CID: a}.Marshal(), 0),
	} {
		if _, err := UnmarshalManifest(in); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("manifest %s: %v", name, err)
		}
	}
	enc := func(gapLens ...uint64) []byte {
		var e wire.Encoder
		e.String(testFolder)
		e.CID(a)
		e.Uvarint(uint64(len(gapLens) / 2))
		for _, v := range gapLens {
			e.Uvarint(v)
		}
		return e.Out()
	}
	for name, in := range map[string][]byte{
		"no ranges":    enc(),
		"empty range":  enc(0, 0),
		"touching":     enc(0, 4, 0, 4),
		"beyond chunk": enc(wire.MaxChunkSize, 1),
		"no folder":    RangeRequest{CID: a, Ranges: []Range{{0, 1}}}.Marshal(),
	} {
		if _, err := UnmarshalRangeRequest(in); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("range request %s: %v", name, err)
		}
	}
	if r, err := UnmarshalRangeRequest(enc(0, 4, 1, 4)); err != nil || r.Ranges[1] != (Range{Off: 5, Len: 4}) {
		t.Errorf("good range request: %+v %v", r, err)
	}
}

// overwrite returns a copy of data with n random bytes written at off.
func overwrite(r *rand.Rand, data []byte, off, n int) []byte {
	out := bytes.Clone(data)
	copy(out[off:], randomData(r, n))
	return out
}

// deltaPair serves src on one end of a pipe and returns the other end.
func deltaPair(t *testing.T, srv *DeltaServer) io.ReadWriteCloser {
	c, s := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), s, "client"); s.Close() }()
	t.Cleanup(func() { c.Close(); <-done })
	return c
}

// A chunk edited in its middle arrives as pieces: only about the edit
// travels, the chunk verifies; chunks the server may not serve, lacks, or
// that share nothing with their basis are handed back to be fetched whole.
func TestFetchDeltaMovesOnlyMissingPieces(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	old := randomData(r, 3*store.AvgChunkSize)
	edited := overwrite(r, old, store.AvgChunkSize+1000, 5000)
	src := newMemSource()
	chunk := edited[store.AvgChunkSize : 2*store.AvgChunkSize]
	c := src.add("docs/big", chunk)
	secret := src.add("secret/s", edited[:1000])
	unrelated := src.add("docs/other", randomData(r, 50000))
	missing := store.ChunkCID([]byte("nobody"))

	basis := NewBasis(old)
	anchors := []int{store.AvgChunkSize}
	wants := []DeltaWant{
		{CID: secret, Size: 1000, Basis: basis, Anchors: anchors},
		{CID: c, Size: len(chunk), Basis: basis, Anchors: anchors},
		{CID: missing, Size: 10, Basis: basis},
		{CID: unrelated, Size: 50000, Basis: basis},
	}
	got := map[string][]byte{}
	rest, st, err := FetchDelta(t.Context(), deltaPair(t, NewDeltaServer(src, denyPrefix("secret/"))), testFolder, wants,
		func(c cid.Cid, data []byte) error { got[c.KeyString()] = bytes.Clone(data); return nil })
	if err != nil || st.PeerErr != nil {
		t.Fatal(err, st.PeerErr)
	}
	if !bytes.Equal(got[c.KeyString()], chunk) || len(got) != 1 {
		t.Fatalf("delivered %d chunks", len(got))
	}
	if len(rest) != 3 || !rest[0].Equals(secret) || !rest[1].Equals(missing) || !rest[2].Equals(unrelated) {
		t.Fatalf("rest %v", rest)
	}
	// The edit is 5000 bytes; it can cut into at most two pieces more.
	if st.Fetched < 5000 || st.Fetched > 5000+2*store.MaxPieceSize || st.Reused+st.Fetched != int64(len(chunk)) || st.Chunks != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// liarSource answers some reads (lieOn, by the count of reads so far) with
// lie(data): the delta server computes manifests and ranges from what its
// source reads, so this makes it lie about either.
type liarSource struct {
	*memSource
	reads int
	lieOn func(read int) bool
	lie   func([]byte) []byte
}

func (l *liarSource) ReadChunk(folder string, c cid.Cid, allowed func(string) bool) ([]byte, error) {
	d, err := l.memSource.ReadChunk(folder, c, allowed)
	l.reads++
	if err != nil || !l.lieOn(l.reads) {
		return d, err
	}
	return l.lie(bytes.Clone(d)), nil
}

// swapHalves gives the chunk's pieces in another order: a manifest of real
// pieces that the client holds, in the wrong places.
func swapHalves(d []byte) []byte { return append(d[len(d)/2:], d[:len(d)/2]...) }

// flipBytes corrupts every 4096th byte: ranges of wrong bytes.
func flipBytes(d []byte) []byte {
	for i := 0; i < len(d); i += 4096 {
		d[i] ^= 0x5a
	}
	return d
}

// A server whose manifests or ranges lie gets no chunk accepted: the
// assembled bytes fail their CID, the exchange stops with ErrBadPeer and
// every chunk not delivered verified is handed back.
func TestFetchDeltaLyingServer(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	old := randomData(r, 2*store.AvgChunkSize)
	edited := overwrite(r, old, 3000, 20000)
	a, b := edited[:store.AvgChunkSize], edited[store.AvgChunkSize:]
	b = overwrite(r, b, 100000, 100)
	same := old[:store.AvgChunkSize] // all of its pieces are in the basis: no ranges
	for name, tc := range map[string]struct {
		l         *liarSource
		delivered int
	}{
		"manifests": {&liarSource{lieOn: func(read int) bool { return read <= 3 }, lie: swapHalves}, 0}, // the three manifest reads
		"ranges":    {&liarSource{lieOn: func(read int) bool { return read > 3 }, lie: flipBytes}, 1},   // the range reads
	} {
		t.Run(name, func(t *testing.T) {
			l := tc.l
			l.memSource = newMemSource()
			ca, cb, cs := l.add("f", a), l.add("f", b), l.add("g", same)
			basis := NewBasis(old)
			wants := []DeltaWant{
				{CID: ca, Size: len(a), Basis: basis, Anchors: []int{0}},
				{CID: cb, Size: len(b), Basis: basis, Anchors: []int{store.AvgChunkSize}},
				{CID: cs, Size: len(same), Basis: basis, Anchors: []int{0}},
			}
			delivered := 0
			rest, st, err := FetchDelta(t.Context(), deltaPair(t, NewDeltaServer(l, denyPrefix(""))), testFolder, wants,
				func(c cid.Cid, data []byte) error {
					if store.VerifyChunk(c, data) != nil {
						t.Fatal("unverified chunk delivered")
					}
					delivered++
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if delivered != tc.delivered || len(rest) != 3-tc.delivered || !errors.Is(st.PeerErr, ErrBadPeer) {
				t.Fatalf("delivered %d, rest %d, peer error %v", delivered, len(rest), st.PeerErr)
			}
		})
	}
}

func FuzzUnmarshalManifestRequest(f *testing.F) {
	f.Add(deltaVectors()["manifest_request_v1"][3:])
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := UnmarshalManifestRequest(in)
		if err == nil && !bytes.Equal(r.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalManifest(f *testing.F) {
	for _, name := range []string{"manifest_ok_v1", "manifest_noaccess_v1"} {
		f.Add(deltaVectors()[name][3:])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := UnmarshalManifest(in)
		if err == nil && !bytes.Equal(m.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalRangeRequest(f *testing.F) {
	f.Add(deltaVectors()["range_request_v1"][3:])
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := UnmarshalRangeRequest(in)
		if err == nil && !bytes.Equal(r.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalRangeResponse(f *testing.F) {
	f.Add(deltaVectors()["range_ok_v1"][3:])
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := UnmarshalRangeResponse(in)
		if err == nil && !bytes.Equal(r.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

// FuzzFetchDelta plays an arbitrary server: FetchDelta never panics, never
// hangs, and never delivers a chunk that does not verify.
func FuzzFetchDelta(f *testing.F) {
	for _, v := range deltaVectors() {
		f.Add(v)
	}
	chunk := []byte("chunk a")
	c := store.ChunkCID(chunk)
	f.Fuzz(func(t *testing.T, in []byte) {
		wants := []DeltaWant{{CID: c, Size: len(chunk), Basis: NewBasis([]byte("chunk b")), Anchors: []int{0}}}
		_, _, err := FetchDelta(t.Context(), &fakeConn{r: bytes.NewReader(in)}, testFolder, wants, func(got cid.Cid, data []byte) error {
			if store.VerifyChunk(got, data) != nil {
				t.Fatal("unverified chunk delivered")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// A manifest listing only pieces the client holds, in the wrong order: no
// range is asked for, the assembled chunk fails its CID, and it is handed
// back with the chunks after it.
func TestFetchDeltaKnownPiecesWrongOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	old := randomData(r, store.AvgChunkSize)
	c := store.ChunkCID(old)
	m := NewManifest(c, old)
	if len(m.Sizes) < 2 {
		t.Fatal("need two pieces")
	}
	m.Sizes[0], m.Sizes[1] = m.Sizes[1], m.Sizes[0]
	m.Hashes[0], m.Hashes[1] = m.Hashes[1], m.Hashes[0]
	other := store.ChunkCID([]byte("other"))
	cl, srv := net.Pipe()
	defer cl.Close()
	go func() {
		defer srv.Close()
		if _, err := wire.ExpectFrame(srv, deltaServerLimits, wire.TypeDeltaManifestRequest); err != nil {
			return
		}
		wire.WriteFrame(srv, wire.TypeDeltaManifest, m.Marshal())
		io.Copy(io.Discard, srv)
	}()
	wants := []DeltaWant{
		{CID: c, Size: len(old), Basis: NewBasis(old), Anchors: []int{0}},
		{CID: other, Size: 5, Basis: NewBasis(old)},
	}
	rest, st, err := FetchDelta(t.Context(), cl, testFolder, wants, func(cid.Cid, []byte) error {
		t.Fatal("a chunk was delivered")
		return nil
	})
	if err != nil || len(rest) != 2 || !rest[0].Equals(c) || !errors.Is(st.PeerErr, ErrBadPeer) {
		t.Fatalf("rest %v, peer error %v, err %v", rest, st.PeerErr, err)
	}
}
