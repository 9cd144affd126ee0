package chunks

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/testhosts"
	"github.com/meshfold/meshfold/store"
)

// countingBuffers is a Buffers that hands out a few buffers again and again
// and counts what it was asked.
type countingBuffers struct {
	mu         sync.Mutex
	free       [][]byte
	gets, puts int
	made       int
}

func (b *countingBuffers) Get() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gets++
	if n := len(b.free); n > 0 {
		buf := b.free[n-1]
		b.free = b.free[:n-1]
		return buf
	}
	b.made++
	return make([]byte, 0, MaxResponseSize)
}

func (b *countingBuffers) Put(buf []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.puts++
	b.free = append(b.free, buf[:0])
}

// With Buffers, large responses are read into reused buffers (each chunk
// still verified on arrival and delivered intact, and each buffer given
// back after its deliver), while a peer sending small chunks gets slices of
// their own size.
func TestFetchReusesBuffers(t *testing.T) {
	src, want := testChunks(t, 60, 200<<10)
	small := map[string]bool{}
	for i := range 20 {
		small[src.add("small", randomData(rand.New(rand.NewPCG(uint64(i), 9)), 100)).KeyString()] = true
	}
	var smallWant []cid.Cid
	for k := range small {
		c, _ := cid.Cast([]byte(k))
		smallWant = append(smallWant, c)
	}
	client, server := testhosts.Pair(t)
	NewServer(src, denyPrefix("")).Register(server)
	bufs := &countingBuffers{}
	var mu sync.Mutex
	seen := map[string][]byte{}
	deliver := func(c cid.Cid, data []byte) error {
		if err := store.VerifyChunk(c, data); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		seen[c.KeyString()] = append([]byte(nil), data...) // deliver keeps nothing of data itself
		return nil
	}
	opts := FetchOptions{Folder: testFolder, Open: OpenWith(client), Buffers: bufs}
	if _, err := Fetch(t.Context(), opts, want, []peer.ID{server.ID()}, deliver); err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(want) {
		t.Fatalf("delivered %d chunks, want %d", len(seen), len(want))
	}
	for _, c := range want {
		if store.VerifyChunk(c, seen[c.KeyString()]) != nil {
			t.Fatalf("chunk %s changed after deliver returned", c)
		}
	}
	// The reader takes one more buffer for a response that never comes.
	if bufs.gets < len(want)-1 || bufs.puts < bufs.gets-1 || bufs.made > DeliverQueue+3 {
		t.Fatalf("buffers: %d got, %d put back, %d made for %d chunks", bufs.gets, bufs.puts, bufs.made, len(want))
	}
	before := bufs.gets
	if _, err := Fetch(t.Context(), opts, smallWant, []peer.ID{server.ID()}, deliver); err != nil {
		t.Fatal(err)
	}
	if bufs.gets > before+1 {
		t.Fatalf("%d pooled buffers for %d small chunks: at most the first one should be", bufs.gets-before, len(smallWant))
	}
}
