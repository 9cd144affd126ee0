package chunks

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/golden"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors in testdata/")

const testFolder = "bafyreigenesisfolder"

// memSource holds chunks by CID, each in one file path. A unit-test fake of
// store's verified read-back.
type memSource struct {
	data map[string][]byte
	path map[string]string
}

func newMemSource() *memSource {
	return &memSource{data: map[string][]byte{}, path: map[string]string{}}
}

func (m *memSource) add(path string, data []byte) cid.Cid {
	c := store.ChunkCID(data)
	m.data[c.KeyString()] = data
	m.path[c.KeyString()] = path
	return c
}

func (m *memSource) ReadChunk(folder string, c cid.Cid, allowed func(string) bool) ([]byte, error) {
	d, ok := m.data[c.KeyString()]
	if !ok || folder != testFolder {
		return nil, wire.ErrNotFound
	}
	if !allowed(m.path[c.KeyString()]) {
		return nil, wire.ErrNoAccess
	}
	if strings.HasPrefix(m.path[c.KeyString()], "changing/") {
		return nil, fmt.Errorf("reading back: %w", store.ErrChunkMismatch)
	}
	return d, nil
}

// corruptSource serves every chunk with one bit flipped.
type corruptSource struct{ *memSource }

func (c corruptSource) ReadChunk(folder string, id cid.Cid, allowed func(string) bool) ([]byte, error) {
	d, err := c.memSource.ReadChunk(folder, id, allowed)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(d)
	out[len(out)/2] ^= 0x01
	return out, nil
}

type denyPrefix string

func (d denyPrefix) CanRead(_ string, _ peer.ID, path string) bool {
	return d == "" || !strings.HasPrefix(path, string(d))
}

func randomData(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestGolden(t *testing.T) {
	a, b := store.ChunkCID([]byte("chunk a")), store.ChunkCID([]byte("chunk b"))
	vectors := map[string][]byte{
		"request_v1":           wire.AppendFrame(nil, wire.TypeChunkRequest, Request{Folder: testFolder, CIDs: []cid.Cid{a, b}}.Marshal()),
		"response_ok_v1":       wire.AppendFrame(nil, wire.TypeChunkResponse, Response{CID: a, Data: []byte("chunk a")}.Marshal()),
		"response_noaccess_v1": wire.AppendFrame(nil, wire.TypeChunkResponse, Response{CID: b, Code: wire.CodeNoAccess}.Marshal()),
	}
	for name, v := range vectors {
		golden.Check(t, name, v, *update)
	}
	f, err := wire.ReadFrameBytes(golden.Read(t, "request_v1"), serverLimits)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := UnmarshalRequest(f.Payload); err != nil || len(r.CIDs) != 2 || !r.CIDs[1].Equals(b) {
		t.Fatalf("%+v %v", r, err)
	}
	f, _ = wire.ReadFrameBytes(golden.Read(t, "response_ok_v1"), clientLimits)
	if r, err := UnmarshalResponse(f.Payload); err != nil || string(r.Data) != "chunk a" || !r.CID.Equals(a) {
		t.Fatalf("%+v %v", r, err)
	}
	f, _ = wire.ReadFrameBytes(golden.Read(t, "response_noaccess_v1"), clientLimits)
	if r, err := UnmarshalResponse(f.Payload); err != nil || !errors.Is(r.Code.Err(), wire.ErrNoAccess) {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestMessagesReject(t *testing.T) {
	a := store.ChunkCID([]byte("a"))
	many := make([]cid.Cid, MaxChunksPerRequest+1)
	for i := range many {
		many[i] = a
	}
	for name, in := range map[string][]byte{
		"no cids":   Request{Folder: testFolder}.Marshal(),
		"no folder": Request{CIDs: []cid.Cid{a}}.Marshal(),
		"too many":  Request{Folder: testFolder, CIDs: many}.Marshal(),
		"trailing":  append(Request{Folder: testFolder, CIDs: []cid.Cid{a}}.Marshal(), 0),
	} {
		if _, err := UnmarshalRequest(in); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("request %s: %v", name, err)
		}
	}
	if _, err := UnmarshalResponse(Response{CID: a, Code: wire.CodeNotFound, Data: []byte("x")}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("data with error code: %v", err)
	}
}

// Server and Client over net.Pipe: pipelined requests, every kind of answer.
func TestServeAndClient(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	src := newMemSource()
	ok1 := src.add("docs/a", randomData(r, 1000))
	ok2 := src.add("docs/b", randomData(r, store.MaxChunkSize))
	secret := src.add("secret/c", randomData(r, 10))
	changing := src.add("changing/d", randomData(r, 10))
	missing := store.ChunkCID([]byte("nobody has this"))

	c, s := net.Pipe()
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- NewServer(src, denyPrefix("secret/")).Serve(t.Context(), s, "client"); s.Close() }()
	cl := NewClient(c, testFolder)
	sendErr := make(chan error, 1)
	go func() {
		// Two requests in flight before any answer is read.
		if err := cl.Send([]cid.Cid{ok1, secret, missing}); err != nil {
			sendErr <- err
			return
		}
		sendErr <- cl.Send([]cid.Cid{changing, ok2})
	}()
	want := []struct {
		c   cid.Cid
		err error
	}{{ok1, nil}, {secret, wire.ErrNoAccess}, {missing, wire.ErrNotFound}, {changing, wire.ErrChanged}, {ok2, nil}}
	for _, w := range want {
		res, err := cl.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !res.CID.Equals(w.c) || !errors.Is(res.Err, w.err) || (w.err == nil && store.VerifyChunk(w.c, res.Data) != nil) {
			t.Fatalf("got %v %v, want %v %v", res.CID, res.Err, w.c, w.err)
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// A server that answers the wrong CID, or sends data that does not hash to
// the CID, is caught.
func TestClientRejectsBadResponses(t *testing.T) {
	a, b := store.ChunkCID([]byte("a")), store.ChunkCID([]byte("b"))
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"wrong cid":      {wire.AppendFrame(nil, wire.TypeChunkResponse, Response{CID: b, Data: []byte("b")}.Marshal()), wire.ErrProtocol},
		"bad data":       {wire.AppendFrame(nil, wire.TypeChunkResponse, Response{CID: a, Data: []byte("b")}.Marshal()), store.ErrChunkMismatch},
		"truncated":      {nil, wire.ErrTruncated},
		"error frame":    {wire.AppendFrame(nil, wire.TypeError, wire.ErrorMsg{Code: wire.CodeBadRequest, Message: "no"}.Marshal()), wire.ErrBadRequest},
		"oversize frame": {[]byte{byte(wire.TypeChunkResponse), 1, 0xff, 0xff, 0xff, 0x7f}, wire.ErrFrameTooLarge},
	} {
		cl := NewClient(&fakeConn{r: bytes.NewReader(tc.in)}, testFolder)
		if err := cl.Send([]cid.Cid{a}); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Recv(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

type fakeConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f *fakeConn) Close() error                { return nil }

func FuzzUnmarshalRequest(f *testing.F) {
	a := store.ChunkCID([]byte("a"))
	f.Add(Request{Folder: testFolder, CIDs: []cid.Cid{a, a}}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := UnmarshalRequest(in)
		if err == nil && !bytes.Equal(r.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalResponse(f *testing.F) {
	a := store.ChunkCID([]byte("a"))
	f.Add(Response{CID: a, Data: []byte("a")}.Marshal())
	f.Add(Response{CID: a, Code: wire.CodeChanged}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := UnmarshalResponse(in)
		if err == nil && !bytes.Equal(r.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

// FuzzClientRecv plays an arbitrary server: Recv never panics and never
// returns data that does not verify.
func FuzzClientRecv(f *testing.F) {
	for _, b := range golden.All(f) {
		f.Add(b)
	}
	a := store.ChunkCID([]byte("chunk a"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cl := NewClient(&fakeConn{r: bytes.NewReader(in)}, testFolder)
		if err := cl.Send([]cid.Cid{a, a}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			res, err := cl.Recv()
			if err != nil {
				return
			}
			if res.Err == nil && store.VerifyChunk(res.CID, res.Data) != nil {
				t.Fatal("unverified data returned")
			}
		}
	})
}
