package chunks

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/testhosts"
	"github.com/meshfold/meshfold/store"
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

// syncLikeSource is a Source doing what the node's does per chunk: copy the
// bytes out (a file read from the page cache) and verify them.
type syncLikeSource struct{ m *memSource }

func (s syncLikeSource) ReadChunk(folder string, c cid.Cid, allowed func(string) bool) ([]byte, error) {
	d, err := s.m.ReadChunk(folder, c, allowed)
	if err != nil {
		return nil, err
	}
	d = bytes.Clone(d)
	return d, store.VerifyChunk(c, d)
}

// BenchmarkFetchLikeSync is BenchmarkFetchVsRawStream with the per-chunk
// work of a real sync on both ends: the server copies and verifies each
// chunk it reads back, and deliver verifies it again and copies it into the
// file being assembled (the executor). 64 MiB in 256 KiB chunks; the ratio
// to one raw stream in the same iteration is the figure to compare, as it
// cancels most of the machine's load.
func BenchmarkFetchLikeSync(b *testing.B) {
	const chunkSize, n = 256 << 10, 256
	r := rand.New(rand.NewPCG(5, 6))
	src := newMemSource()
	want := make([][]byte, 0, n)
	cs := make([]cid.Cid, 0, n)
	index := map[string]int{}
	for i := range n {
		d := randomData(r, chunkSize)
		want = append(want, d)
		c := src.add("file", d)
		cs = append(cs, c)
		index[c.KeyString()] = i
	}
	client, server := testhosts.Pair(b)
	NewServer(syncLikeSource{src}, denyPrefix("")).Register(server)
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
	file := make([]byte, n*chunkSize)
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
		write := func(c cid.Cid, data []byte) error {
			if err := store.VerifyChunk(c, data); err != nil {
				return err
			}
			copy(file[index[c.KeyString()]*chunkSize:], data)
			delivered++
			return nil
		}
		if _, err := Fetch(b.Context(), FetchOptions{Folder: testFolder, Open: OpenWith(client)}, cs, []peer.ID{server.ID()}, write); err != nil || delivered != n {
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
