package chunks

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/meshfold/meshfold/protocol/internal/testhosts"
	"github.com/meshfold/meshfold/store"
)

// swarm is a client host and server hosts on mocknet, each server with its
// own source and link options.
func swarm(t *testing.T, links []mocknet.LinkOptions, sources []Source) (host.Host, []peer.ID) {
	t.Helper()
	client, servers := swarmHosts(t, links, sources)
	var ids []peer.ID
	for _, h := range servers {
		ids = append(ids, h.ID())
	}
	return client, ids
}

func swarmHosts(t *testing.T, links []mocknet.LinkOptions, sources []Source) (host.Host, []host.Host) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	client, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	var servers []host.Host
	for i, src := range sources {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		l, err := mn.LinkPeers(client.ID(), h.ID())
		if err != nil {
			t.Fatal(err)
		}
		l.SetOptions(links[i])
		if _, err := mn.ConnectPeers(client.ID(), h.ID()); err != nil {
			t.Fatal(err)
		}
		NewServer(src, denyPrefix("")).Register(h)
		servers = append(servers, h)
	}
	return client, servers
}

func testChunks(t *testing.T, n, size int) (*memSource, []cid.Cid) {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	src := newMemSource()
	var cids []cid.Cid
	for range n {
		cids = append(cids, src.add("file", randomData(r, size)))
	}
	return src, cids
}

type collector struct {
	mu  sync.Mutex
	got map[string]int
}

func (c *collector) deliver(id cid.Cid, data []byte) error {
	if err := store.VerifyChunk(id, data); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[string]int{}
	}
	c.got[id.KeyString()]++
	return nil
}

func (c *collector) check(t *testing.T, want []cid.Cid) {
	t.Helper()
	for _, id := range want {
		if c.got[id.KeyString()] != 1 {
			t.Fatalf("chunk %s delivered %d times", id, c.got[id.KeyString()])
		}
	}
	if len(c.got) != len(want) {
		t.Fatalf("delivered %d distinct chunks, want %d", len(c.got), len(want))
	}
}

// One honest peer and one serving corrupted chunks: every chunk arrives
// verified, the bad peer is dropped and penalised.
func TestFetchDropsCorruptPeer(t *testing.T) {
	src, want := testChunks(t, 200, 8<<10)
	client, ids := swarm(t, []mocknet.LinkOptions{{}, {}}, []Source{src, corruptSource{src}})
	honest, bad := ids[0], ids[1]
	var (
		mu        sync.Mutex
		penalised = map[peer.ID]error{}
	)
	opts := FetchOptions{Folder: testFolder, Open: OpenWith(client), Penalize: func(p peer.ID, reason error) {
		mu.Lock()
		defer mu.Unlock()
		penalised[p] = reason
	}}
	var col collector
	stats, err := Fetch(t.Context(), opts, want, []peer.ID{bad, honest}, col.deliver)
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, want)
	if !errors.Is(stats.Peers[bad].Dropped, ErrBadPeer) || !errors.Is(stats.Peers[bad].Dropped, store.ErrChunkMismatch) {
		t.Fatalf("bad peer not dropped for bad data: %v", stats.Peers[bad].Dropped)
	}
	if stats.Peers[bad].Chunks != 0 || stats.Peers[honest].Chunks != len(want) || stats.Peers[honest].Dropped != nil {
		t.Fatalf("stats: bad %+v honest %+v", *stats.Peers[bad], *stats.Peers[honest])
	}
	// Dropped at its first answer: it was never asked more than its
	// initial window.
	if stats.Peers[bad].Asked > InitialWindow {
		t.Fatalf("bad peer asked for %d chunks after being caught", stats.Peers[bad].Asked)
	}
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(penalised[bad], ErrBadPeer) || len(penalised) != 1 {
		t.Fatalf("penalised %v", penalised)
	}
}

// A slow peer (high latency link) gets fewer chunks than a fast one.
func TestFetchSlowPeerGetsLess(t *testing.T) {
	src, want := testChunks(t, 300, 16<<10)
	client, ids := swarm(t, []mocknet.LinkOptions{{Latency: 2 * time.Millisecond}, {Latency: 20 * time.Millisecond}}, []Source{src, src})
	fast, slow := ids[0], ids[1]
	var col collector
	stats, err := Fetch(t.Context(), FetchOptions{Folder: testFolder, Open: OpenWith(client)}, want, []peer.ID{slow, fast}, col.deliver)
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, want)
	f, s := stats.Peers[fast], stats.Peers[slow]
	t.Logf("fast: %d chunks %d requests rate %.0f B/s; slow: %d chunks %d requests rate %.0f B/s", f.Chunks, f.Requests, f.Rate, s.Chunks, s.Requests, s.Rate)
	if s.Chunks == 0 {
		t.Fatal("slow peer was never used: the transfer is not multi-source")
	}
	if s.Chunks*2 > f.Chunks || s.Asked >= f.Asked || s.Rate >= f.Rate {
		t.Fatalf("slow peer got %d chunks vs %d for the fast one", s.Chunks, f.Chunks)
	}
}

// A chunk one peer lacks comes from another; a chunk nobody has is reported
// missing, and the rest still arrives.
func TestFetchRetriesElsewhereAndReportsMissing(t *testing.T) {
	srcA, want := testChunks(t, 20, 1000)
	srcB := newMemSource()
	onlyB := srcB.add("file", []byte("only b has this"))
	nobody := store.ChunkCID([]byte("nobody"))
	client, ids := swarm(t, []mocknet.LinkOptions{{}, {}}, []Source{srcA, srcB})
	all := append(append([]cid.Cid{}, want...), onlyB, nobody)
	var col collector
	stats, err := Fetch(t.Context(), FetchOptions{Folder: testFolder, Open: OpenWith(client)}, all, ids, col.deliver)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if len(stats.Missing) != 1 || !stats.Missing[0].Equals(nobody) {
		t.Fatalf("missing %v", stats.Missing)
	}
	col.check(t, append(want, onlyB))
}

// Has restricts which peer is asked for what; a peer that cannot be reached
// is dropped without penalty and its share goes to the others.
func TestFetchHasAndUnreachablePeer(t *testing.T) {
	src, want := testChunks(t, 30, 1000)
	client, ids := swarm(t, []mocknet.LinkOptions{{}}, []Source{src})
	ghost := peer.ID("not a reachable peer")
	var col collector
	var penalised int
	ghostFailed := make(chan struct{})
	opts := FetchOptions{Folder: testFolder,
		Has:      func(p peer.ID, c cid.Cid) bool { return true },
		Penalize: func(peer.ID, error) { penalised++ },
		Open: func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
			if p == ghost {
				defer close(ghostFailed)
			} else {
				<-ghostFailed // the ghost fails while the transfer is under way
			}
			return OpenWith(client)(ctx, p)
		}}
	stats, err := Fetch(t.Context(), opts, want, []peer.ID{ghost, ids[0]}, col.deliver)
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, want)
	if stats.Peers[ghost].Dropped == nil || errors.Is(stats.Peers[ghost].Dropped, ErrBadPeer) || penalised != 0 {
		t.Fatalf("ghost: %v, penalised %d", stats.Peers[ghost].Dropped, penalised)
	}

	// Nobody claims the chunks: unavailable at once, nothing asked.
	opts.Has = func(peer.ID, cid.Cid) bool { return false }
	opts.Open = OpenWith(client)
	stats, err = Fetch(t.Context(), opts, want, ids, (&collector{}).deliver)
	if !errors.Is(err, ErrUnavailable) || len(stats.Missing) != len(want) || stats.Peers[ids[0]].Asked != 0 {
		t.Fatalf("err %v, missing %d, asked %d", err, len(stats.Missing), stats.Peers[ids[0]].Asked)
	}
}

// deliver's error aborts the transfer and is returned.
func TestFetchDeliverError(t *testing.T) {
	src, want := testChunks(t, 50, 1000)
	client, ids := swarm(t, []mocknet.LinkOptions{{}}, []Source{src})
	boom := errors.New("disk full")
	_, err := Fetch(t.Context(), FetchOptions{Folder: testFolder, Open: OpenWith(client)}, want, ids, func(cid.Cid, []byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

// Over two real libp2p hosts (TCP, Noise, yamux).
func TestFetchOverTCP(t *testing.T) {
	src, want := testChunks(t, 40, 64<<10)
	client, server := testhosts.Pair(t)
	NewServer(src, denyPrefix("")).Register(server)
	var col collector
	if _, err := Fetch(t.Context(), FetchOptions{Folder: testFolder, Open: OpenWith(client)}, want, []peer.ID{server.ID()}, col.deliver); err != nil {
		t.Fatal(err)
	}
	col.check(t, want)
}

// A peer that accepts requests and never answers is dropped after the
// response timeout, without penalty; the chunks only it had are reported
// missing instead of hanging the transfer, and the rest arrives.
func TestFetchDropsSilentPeer(t *testing.T) {
	src, want := testChunks(t, 40, 1000)
	client, servers := swarmHosts(t, []mocknet.LinkOptions{{}, {}}, []Source{src, src})
	honest, silent := servers[0].ID(), servers[1].ID()
	// Replace the silent peer's handler: read requests, never answer.
	requested := make(chan struct{})
	var once sync.Once
	servers[1].SetStreamHandler(ProtocolID, func(s network.Stream) {
		var b [1]byte
		if _, err := s.Read(b[:]); err == nil {
			once.Do(func() { close(requested) })
		}
		_, _ = io.Copy(io.Discard, s)
	})
	onlySilent := map[string]bool{}
	for _, c := range want[:5] {
		onlySilent[c.KeyString()] = true
	}
	var col collector
	var penalised int
	opts := FetchOptions{Folder: testFolder, ResponseTimeout: 300 * time.Millisecond,
		Penalize: func(peer.ID, error) { penalised++ },
		Has:      func(p peer.ID, c cid.Cid) bool { return p == silent || !onlySilent[c.KeyString()] },
		Open: func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
			if p == honest {
				<-requested // the silent peer holds requests before the honest one starts
			}
			return client.NewStream(ctx, p, ProtocolID)
		}}
	stats, err := Fetch(t.Context(), opts, want, []peer.ID{silent, honest}, col.deliver)
	if !errors.Is(err, ErrUnavailable) || len(stats.Missing) != 5 {
		t.Fatalf("err %v, missing %d", err, len(stats.Missing))
	}
	for _, c := range stats.Missing {
		if !onlySilent[c.KeyString()] {
			t.Fatalf("%s missing but the honest peer had it", c)
		}
	}
	col.check(t, want[5:])
	if d := stats.Peers[silent].Dropped; !errors.Is(d, ErrTimeout) || errors.Is(d, ErrBadPeer) || penalised != 0 {
		t.Fatalf("silent peer: dropped %v, penalised %d", d, penalised)
	}
}

// Cancelling the context ends a transfer stuck on a silent peer, even over
// mocknet streams whose deadlines do nothing.
func TestFetchCancelled(t *testing.T) {
	src, want := testChunks(t, 10, 1000)
	client, servers := swarmHosts(t, []mocknet.LinkOptions{{}}, []Source{src})
	servers[0].SetStreamHandler(ProtocolID, func(s network.Stream) { _, _ = io.Copy(io.Discard, s) })
	ctx, cancel := context.WithCancel(t.Context())
	var asked sync.Once
	opts := FetchOptions{Folder: testFolder, ResponseTimeout: time.Hour,
		Open: func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
			s, err := client.NewStream(ctx, p, ProtocolID)
			asked.Do(cancel) // cancel as soon as the transfer is under way
			return s, err
		}}
	_, err := Fetch(ctx, opts, want, []peer.ID{servers[0].ID()}, (&collector{}).deliver)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// Endgame: a peer that holds requests and never answers does not hold up the
// transfer; the honest peer is asked for those chunks too, long before the
// response timeout.
func TestFetchEndgame(t *testing.T) {
	src, want := testChunks(t, 40, 1000)
	client, servers := swarmHosts(t, []mocknet.LinkOptions{{}, {}}, []Source{src, src})
	honest, stalled := servers[0].ID(), servers[1].ID()
	requested := make(chan struct{})
	var once sync.Once
	servers[1].SetStreamHandler(ProtocolID, func(s network.Stream) {
		var b [1]byte
		if _, err := s.Read(b[:]); err == nil {
			once.Do(func() { close(requested) })
		}
		_, _ = io.Copy(io.Discard, s)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	opts := FetchOptions{Folder: testFolder, ResponseTimeout: time.Hour,
		Open: func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
			if p == honest {
				<-requested
			}
			return client.NewStream(ctx, p, ProtocolID)
		}}
	var col collector
	stats, err := Fetch(ctx, opts, want, []peer.ID{stalled, honest}, col.deliver)
	if err != nil {
		t.Fatal(err)
	}
	col.check(t, want)
	if s := stats.Peers[stalled]; s.Asked == 0 || s.Chunks != 0 || s.Dropped != nil {
		t.Fatalf("stalled peer: %+v", *s)
	}
	if h := stats.Peers[honest]; h.Chunks != len(want) || h.Asked != len(want) {
		t.Fatalf("honest peer: %+v", *h)
	}
}

// Fetch leaves no goroutine behind: workers, readers and timers end before
// it returns, and the streams it opened are closed (so the servers end too).
func TestFetchLeavesNoGoroutines(t *testing.T) {
	src, want := testChunks(t, 50, 1000)
	before := runtime.NumGoroutine()
	var servers sync.WaitGroup
	open := func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
		c, s := net.Pipe()
		servers.Go(func() {
			_ = NewServer(src, denyPrefix("")).Serve(context.Background(), s, p)
			s.Close()
		})
		return c, nil
	}
	var col collector
	if _, err := Fetch(t.Context(), FetchOptions{Folder: testFolder, Open: open}, want, []peer.ID{"a", "b", "c"}, col.deliver); err != nil {
		t.Fatal(err)
	}
	col.check(t, want)
	servers.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after", before, runtime.NumGoroutine())
		}
		runtime.Gosched()
	}
}
