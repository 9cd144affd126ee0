package chunks

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/testhosts"
)

const rawProtocol = "/meshfold/bench-raw/0"

// BenchmarkFetchVsRawStream fetches 16 MiB in 256 KiB chunks from one peer
// over real TCP+Noise+yamux hosts with Fetch (framing, pipelining,
// verification of every chunk), and, as the baseline in the same run, reads
// the same bytes as one plain stream write of 256 KiB pieces. It reports
// both throughputs and their ratio.
func BenchmarkFetchVsRawStream(b *testing.B) {
	const chunkSize, n = 256 << 10, 64
	r := rand.New(rand.NewPCG(3, 4))
	src := newMemSource()
	want := make([][]byte, 0, n)
	cs := make([]cid.Cid, 0, n)
	for range n {
		d := randomData(r, chunkSize)
		want = append(want, d)
		cs = append(cs, src.add("file", d))
	}
	client, server := testhosts.Pair(b)
	NewServer(src, denyPrefix("")).Register(server)
	server.SetStreamHandler(rawProtocol, func(s network.Stream) {
		defer s.Close()
		var hdr [4]byte
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			return
		}
		for i := range binary.BigEndian.Uint32(hdr[:]) {
			if _, err := s.Write(want[i]); err != nil {
				return
			}
		}
	})
	total := float64(n * chunkSize)
	var rawTime, fetchTime time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		s, err := client.NewStream(b.Context(), server.ID(), rawProtocol)
		if err != nil {
			b.Fatal(err)
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], n)
		if _, err := s.Write(hdr[:]); err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, s)
		if err != nil || got != int64(total) {
			b.Fatalf("raw read %d: %v", got, err)
		}
		_ = s.Close()
		rawTime += time.Since(start)

		start = time.Now()
		delivered := 0
		count := func(cid.Cid, []byte) error { delivered++; return nil } // Fetch has verified
		if _, err := Fetch(b.Context(), FetchOptions{Folder: testFolder, Open: OpenWith(client)}, cs, []peer.ID{server.ID()}, count); err != nil || delivered != n {
			b.Fatalf("fetched %d: %v", delivered, err)
		}
		fetchTime += time.Since(start)
	}
	iters := float64(b.N)
	rawMBs := total * iters / rawTime.Seconds() / 1e6
	fetchMBs := total * iters / fetchTime.Seconds() / 1e6
	b.ReportMetric(rawMBs, "raw-MB/s")
	b.ReportMetric(fetchMBs, "fetch-MB/s")
	b.ReportMetric(fetchMBs/rawMBs, "fetch/raw")
}
