package logsync

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/golden"
	"github.com/meshfold/meshfold/protocol/internal/testhosts"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors in testdata/")

const testFolder = "bafyreigenesisfolder"

// memLog is a toy op DAG: an op is "name|parent-cid,parent-cid", addressed
// like a chunk. A unit-test fake of crdt's log.
type memLog struct {
	ops   map[string][]byte
	heads []cid.Cid
}

func newLog() *memLog { return &memLog{ops: map[string][]byte{}} }

func (l *memLog) add(name string, parents ...cid.Cid) cid.Cid {
	var ps []string
	for _, p := range parents {
		ps = append(ps, p.String())
	}
	op := []byte(name + "|" + strings.Join(ps, ","))
	c := store.ChunkCID(op)
	l.ops[c.KeyString()] = op
	return c
}

func (l *memLog) Heads(folder string) ([]cid.Cid, error) {
	if folder != testFolder {
		return nil, wire.ErrNotFound
	}
	return l.heads, nil
}

func (l *memLog) Op(_ string, c cid.Cid) ([]byte, error) {
	if op, ok := l.ops[c.KeyString()]; ok {
		return op, nil
	}
	return nil, wire.ErrNotFound
}

func parseParents(op []byte) ([]cid.Cid, error) {
	_, ps, ok := strings.Cut(string(op), "|")
	if !ok {
		return nil, fmt.Errorf("bad op")
	}
	var out []cid.Cid
	for _, s := range strings.Split(ps, ",") {
		if s == "" {
			continue
		}
		c, err := cid.Decode(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

type members map[peer.ID]bool

func (m members) IsMember(_ string, p peer.ID) bool { return m[p] }

// buildDAG makes a server log with two long branches merging, and a client
// log holding the first `shared` ops of the trunk.
func buildDAG(n, shared int) (server, client *memLog) {
	server, client = newLog(), newLog()
	root := server.add("genesis")
	client.add("genesis")
	client.heads = []cid.Cid{root}
	prev := root
	for i := range shared {
		prev = server.add(fmt.Sprintf("t%d", i), prev)
		client.add(fmt.Sprintf("t%d", i), client.heads...)
		client.heads = []cid.Cid{prev}
	}
	a, b := prev, prev
	for i := range n {
		a = server.add(fmt.Sprintf("a%d", i), a)
		b = server.add(fmt.Sprintf("b%d", i), b)
	}
	merge := server.add("merge", a, b)
	server.heads = []cid.Cid{merge, server.add("side", b)}
	return server, client
}

func pullOver(t *testing.T, srv *Server, remote peer.ID, cl *memLog) ([]cid.Cid, error) {
	t.Helper()
	c, s := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(t.Context(), s, remote); s.Close() }()
	var order []cid.Cid
	_, err := Pull(t.Context(), c, testFolder, cl.heads, PullFuncs{
		Have:    func(x cid.Cid) bool { _, ok := cl.ops[x.KeyString()]; return ok },
		Parents: parseParents,
		Deliver: func(x cid.Cid, op []byte) error {
			ps, _ := parseParents(op)
			for _, p := range ps {
				if _, ok := cl.ops[p.KeyString()]; !ok {
					t.Fatalf("op %s delivered before its parent %s", x, p)
				}
			}
			cl.ops[x.KeyString()] = op
			order = append(order, x)
			return nil
		},
	})
	c.Close()
	if serr := <-done; serr != nil && err == nil {
		t.Fatalf("server: %v", serr)
	}
	return order, err
}

func TestPull(t *testing.T) {
	server, client := buildDAG(300, 50) // 600 branch ops + merge + side > MaxWant
	before := len(client.ops)
	order, err := pullOver(t, NewServer(server, members{"me": true}), "me", client)
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 602 || len(client.ops) != len(server.ops) || before+602 != len(server.ops) {
		t.Fatalf("delivered %d, client has %d of %d", len(order), len(client.ops), len(server.ops))
	}
	// Already in sync: nothing to fetch.
	client.heads = server.heads
	if order, err := pullOver(t, NewServer(server, members{"me": true}), "me", client); err != nil || len(order) != 0 {
		t.Fatalf("second pull: %d, %v", len(order), err)
	}
}

func TestPullRefusals(t *testing.T) {
	server, client := buildDAG(3, 1)
	if _, err := pullOver(t, NewServer(server, members{}), "stranger", client); !errors.Is(err, wire.ErrNoAccess) {
		t.Fatalf("non-member: %v", err)
	}
	// The server lost an op it references.
	for k, op := range server.ops {
		if strings.HasPrefix(string(op), "a1|") {
			delete(server.ops, k)
		}
	}
	if _, err := pullOver(t, NewServer(server, members{"me": true}), "me", client); !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("missing op: %v", err)
	}
}

type fakeConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error) { return f.w.Write(p) }

// A server that answers with an op nobody asked for is caught.
func TestPullRejectsUnaskedOp(t *testing.T) {
	head := store.ChunkCID([]byte("head|"))
	in := wire.AppendFrame(nil, wire.TypeLogHeads, Heads{Folder: testFolder, Heads: []cid.Cid{head}}.Marshal())
	in = wire.AppendFrame(in, wire.TypeLogOps, Ops{Ops: [][]byte{[]byte("forged|")}}.Marshal())
	_, err := Pull(t.Context(), &fakeConn{r: bytes.NewReader(in)}, testFolder, nil, PullFuncs{
		Have: func(cid.Cid) bool { return false }, Parents: parseParents,
		Deliver: func(cid.Cid, []byte) error { t.Fatal("delivered"); return nil },
	})
	if !errors.Is(err, wire.ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
}

func TestPullOverLibp2p(t *testing.T) {
	client, server := testhosts.Pair(t)
	slog, clog := buildDAG(20, 5)
	NewServer(slog, members{client.ID(): true}).Register(server)
	n, err := Open(t.Context(), client, server.ID(), testFolder, clog.heads, PullFuncs{
		Have:    func(x cid.Cid) bool { _, ok := clog.ops[x.KeyString()]; return ok },
		Parents: parseParents,
		Deliver: func(x cid.Cid, op []byte) error { clog.ops[x.KeyString()] = op; return nil },
	})
	if err != nil || n != 42 || len(clog.ops) != len(slog.ops) {
		t.Fatalf("pulled %d: %v", n, err)
	}
}

func TestGolden(t *testing.T) {
	a, b := store.ChunkCID([]byte("op a|")), store.ChunkCID([]byte("op b|"))
	vectors := map[string][]byte{
		"heads_v1": wire.AppendFrame(nil, wire.TypeLogHeads, Heads{Folder: testFolder, Heads: []cid.Cid{b, a}}.Marshal()),
		"want_v1":  wire.AppendFrame(nil, wire.TypeLogWant, Want{CIDs: []cid.Cid{a, b}}.Marshal()),
		"ops_v1":   wire.AppendFrame(nil, wire.TypeLogOps, Ops{Ops: [][]byte{[]byte("op a|"), []byte("op b|")}}.Marshal()),
	}
	for name, v := range vectors {
		golden.Check(t, name, v, *update)
	}
	f, _ := wire.ReadFrameBytes(golden.Read(t, "heads_v1"), clientLimits)
	if h, err := UnmarshalHeads(f.Payload); err != nil || len(h.Heads) != 2 || h.Folder != testFolder {
		t.Fatalf("%+v %v", h, err)
	}
	f, _ = wire.ReadFrameBytes(golden.Read(t, "want_v1"), serverLimits)
	if w, err := UnmarshalWant(f.Payload); err != nil || !w.CIDs[0].Equals(a) {
		t.Fatalf("%+v %v", w, err)
	}
	f, _ = wire.ReadFrameBytes(golden.Read(t, "ops_v1"), clientLimits)
	if o, err := UnmarshalOps(f.Payload); err != nil || string(o.Ops[1]) != "op b|" {
		t.Fatalf("%+v %v", o, err)
	}
}

func TestMessagesReject(t *testing.T) {
	a := store.ChunkCID([]byte("a"))
	if _, err := UnmarshalWant(Want{}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("empty want: %v", err)
	}
	if _, err := UnmarshalOps(Ops{Ops: [][]byte{{}}}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("empty op: %v", err)
	}
	if _, err := UnmarshalOps(Ops{Ops: [][]byte{make([]byte, MaxOpSize+1)}}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("oversize op: %v", err)
	}
	var e wire.Encoder
	e.String(testFolder)
	e.CIDs([]cid.Cid{a, a})
	if _, err := UnmarshalHeads(e.Out()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("duplicate heads: %v", err)
	}
}

func FuzzUnmarshalHeads(f *testing.F) {
	f.Add(Heads{Folder: testFolder, Heads: []cid.Cid{store.ChunkCID([]byte("x"))}}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		if h, err := UnmarshalHeads(in); err == nil && !bytes.Equal(h.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalWant(f *testing.F) {
	f.Add(Want{CIDs: []cid.Cid{store.ChunkCID([]byte("x"))}}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		if w, err := UnmarshalWant(in); err == nil && !bytes.Equal(w.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalOps(f *testing.F) {
	f.Add(Ops{Ops: [][]byte{[]byte("a"), []byte("bc")}}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		if o, err := UnmarshalOps(in); err == nil && !bytes.Equal(o.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

// FuzzPull plays an arbitrary server: Pull returns, and delivers only ops
// that hash to CIDs it asked for.
func FuzzPull(f *testing.F) {
	for _, b := range golden.All(f) {
		f.Add(b)
	}
	head := store.ChunkCID([]byte("op a|"))
	in := wire.AppendFrame(nil, wire.TypeLogHeads, Heads{Folder: testFolder, Heads: []cid.Cid{head}}.Marshal())
	f.Add(wire.AppendFrame(in, wire.TypeLogOps, Ops{Ops: [][]byte{[]byte("op a|")}}.Marshal()))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = Pull(t.Context(), &fakeConn{r: bytes.NewReader(in)}, testFolder, nil, PullFuncs{
			Have:    func(cid.Cid) bool { return false },
			Parents: parseParents,
			Deliver: func(c cid.Cid, op []byte) error {
				if !store.ChunkCID(op).Equals(c) {
					t.Fatalf("delivered op does not hash to %s", c)
				}
				return nil
			},
		})
	})
}
