package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/chunks"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// countingStream counts what a server writes.
type countingStream struct {
	network.Stream
	n *atomic.Int64
}

func (c countingStream) Write(p []byte) (int, error) {
	n, err := c.Stream.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// serveCounting makes n answer id with serve, counting the bytes it sends.
func serveCounting(n *Node, id protocol.ID, serve wire.ServeFunc, sent *atomic.Int64) {
	n.Host().SetStreamHandler(id, func(st network.Stream) {
		if err := serve(context.Background(), countingStream{st, sent}, st.Conn().RemotePeer()); err != nil {
			_ = st.Reset()
			return
		}
		_ = st.Close()
	})
}

// syncedPair has a share a file of size bytes with b and waits for b's copy.
func syncedPair(t *testing.T, content []byte) (a *Node, dirA, dirB string) {
	t.Helper()
	a = testNode(t, "a")
	b := testNode(t, "b", a.AddrInfo())
	dirA, dirB = t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dirA, "big.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	share(t, a, fa, b, crdt.RoleEditor, dirB)
	eventually(t, "the first sync", fileIs(dirB, "big.bin", content))
	return a, dirA, dirB
}

// overwriteAt writes n new random bytes at off of dir/name and returns the
// file's new content.
func overwriteAt(t *testing.T, dir, name string, content []byte, off, n int, seed uint64) []byte {
	t.Helper()
	edited := bytes.Clone(content)
	copy(edited[off:], randomBytes(seed, n))
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(edited[off:off+n], int64(off)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return edited
}

// TestOverwriteMovesAboutTheOverwrittenBytes: 1 MiB overwritten in the
// middle of a 16 MiB file reaches the peer as about 1 MiB of chunk data:
// the two chunks the edit cuts into (~0.3 MB each whole, 64 KiB at least)
// travel as the pieces the edit touched.
func TestOverwriteMovesAboutTheOverwrittenBytes(t *testing.T) {
	const size, edit = 16 << 20, 1 << 20
	content := randomBytes(21, size)
	a, dirA, dirB := syncedPair(t, content)
	var plain, delta atomic.Int64
	serveCounting(a, chunks.ProtocolID, chunks.NewServer(a, a).Serve, &plain)
	serveCounting(a, chunks.DeltaProtocolID, chunks.NewDeltaServer(a, a).Serve, &delta)

	edited := overwriteAt(t, dirA, "big.bin", content, (size-edit)/2, edit, 22)
	eventually(t, "the overwrite on b", fileIs(dirB, "big.bin", edited))
	sent := plain.Load() + delta.Load()
	t.Logf("chunk data sent: %d bytes whole, %d by delta", plain.Load(), delta.Load())
	if delta.Load() == 0 {
		t.Fatal("nothing fetched by delta")
	}
	// The edit, at most two pieces it cut into, a manifest per changed
	// chunk (at most 6 of ~1 KB), frame headers.
	if limit := int64(edit + 2*32<<10 + 16<<10); sent > limit || sent < edit {
		t.Fatalf("%d bytes of chunk data sent for a %d-byte overwrite (want %d..%d)", sent, edit, edit, limit)
	}
}

// lyingDelta is a chunk source for a delta server that lies: on manifest
// reads (the first read of each CID) when manifests is set, else on range
// reads (the later ones).
type lyingDelta struct {
	n         *Node
	manifests bool
	mu        sync.Mutex
	reads     map[string]int
	lies      atomic.Int64
}

func (l *lyingDelta) ReadChunk(folder string, c cid.Cid, allowed func(string) bool) ([]byte, error) {
	data, err := l.n.ReadChunk(folder, c, allowed)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.reads[c.KeyString()]++
	first := l.reads[c.KeyString()] == 1
	l.mu.Unlock()
	if first != l.manifests {
		return data, nil
	}
	l.lies.Add(1)
	bad := bytes.Clone(data)
	if l.manifests { // real pieces, in the wrong order: the client holds most of them
		return append(bad[len(bad)/2:], bad[:len(bad)/2]...), nil
	}
	for i := 0; i < len(bad); i += 4096 { // wrong bytes in every range
		bad[i] ^= 0x5a
	}
	return bad, nil
}

// TestLyingDeltaPeerCannotPoisonTheFile: a peer whose delta server lies
// (manifests listing the chunk's pieces in the wrong order, or ranges of
// wrong bytes) gets no assembled chunk accepted; the chunks arrive whole
// from the plain exchange and the file is the sender's, byte for byte.
func TestLyingDeltaPeerCannotPoisonTheFile(t *testing.T) {
	for _, manifests := range []bool{true, false} {
		name := map[bool]string{true: "manifests", false: "ranges"}[manifests]
		t.Run(name, func(t *testing.T) {
			const size, edit = 4 << 20, 300 << 10
			content := randomBytes(31, size)
			a, dirA, dirB := syncedPair(t, content)
			liar := &lyingDelta{n: a, manifests: manifests, reads: map[string]int{}}
			chunks.NewDeltaServer(liar, a).Register(a.Host()) // replaces a's honest delta server

			edited := overwriteAt(t, dirA, "big.bin", content, size/2, edit, 32)
			eventually(t, "the overwrite on b", fileIs(dirB, "big.bin", edited))
			if liar.lies.Load() == 0 {
				t.Fatal(errors.New("the delta server was never asked, so it could not lie"))
			}
		})
	}
}

// TestNonMemberGetsNoDelta: a device that is not a member asks a member's
// delta server for manifests and ranges of the folder's chunks, holding
// almost all of their bytes already: every answer is a refusal.
func TestNonMemberGetsNoDelta(t *testing.T) {
	a := testNode(t, "a")
	dir := t.TempDir()
	content := randomBytes(41, 1<<20)
	os.WriteFile(filepath.Join(dir, "secret.bin"), content, 0o644)
	fa, err := a.CreateFolder(dir, "private")
	if err != nil {
		t.Fatal(err)
	}
	var fi store.FileInfo
	eventually(t, "the index entry", func() error {
		var ok bool
		fi, ok, err = fa.idx.Get("secret.bin")
		if err != nil || !ok || len(fi.Chunks) == 0 {
			return fmt.Errorf("not indexed yet (%v)", err)
		}
		return nil
	})
	x := testNode(t, "outsider", a.AddrInfo())
	ctx := context.Background()
	if err := x.Host().Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	near := bytes.Clone(content)
	near[len(near)/2] ^= 1 // the outsider's basis: all but one byte
	basis := chunks.NewBasis(near)
	var wants []chunks.DeltaWant
	var off int
	for _, c := range fi.Chunks {
		wants = append(wants, chunks.DeltaWant{CID: c.CID, Size: int(c.Size), Basis: basis, Anchors: []int{off}})
		off += int(c.Size)
	}
	s, err := x.Host().NewStream(ctx, a.ID(), chunks.DeltaProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	rest, st, err := chunks.FetchDelta(ctx, s, fa.ID(), wants, func(cid.Cid, []byte) error { delivered++; return nil })
	if err != nil || delivered != 0 || len(rest) != len(wants) || st.Manifests != len(wants) {
		t.Fatalf("a non-member got %d chunks by delta (%d manifests, err %v)", delivered, st.Manifests, err)
	}
	// Asking for ranges directly, without a manifest, is refused too.
	req := chunks.RangeRequest{Folder: fa.ID(), CID: fi.Chunks[0].CID, Ranges: []chunks.Range{{Off: 0, Len: 100}}}
	if err := wire.WriteFrame(s, wire.TypeDeltaRangeRequest, req.Marshal()); err != nil {
		t.Fatal(err)
	}
	payload, err := wire.ExpectFrame(s, wire.Limits{wire.TypeDeltaRange: chunks.MaxResponseSize, wire.TypeError: wire.MaxErrorFrame}, wire.TypeDeltaRange)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := chunks.UnmarshalRangeResponse(payload)
	if err != nil || resp.Code != wire.CodeNoAccess || len(resp.Data) != 0 {
		t.Fatalf("range request answered %v with %d bytes (err %v)", resp.Code, len(resp.Data), err)
	}
	s.Close()
}
