package realstack

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// countingHost wraps a mocknet host (which counts no bytes) so every byte
// read from or written to a stream it opens or accepts is logged in bw: the
// node's BytesOnWire then reports what moved. Identify, which basichost
// registers itself, is not counted.
type countingHost struct {
	host.Host
	bw    *metrics.BandwidthCounter
	proto *protoBytes
}

// protoBytes counts bytes per protocol across every node of a cluster.
type protoBytes struct {
	mu sync.Mutex
	n  map[protocol.ID]int64
}

func (p *protoBytes) add(id protocol.ID, n int) {
	p.mu.Lock()
	p.n[id] += int64(n)
	p.mu.Unlock()
}

func (p *protoBytes) snapshot() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.n))
	for id, n := range p.n {
		out[string(id)] = n
	}
	return out
}

func (h *countingHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return &countingStream{Stream: s, h: h}, nil
}

func (h *countingHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.wrap(handler))
}

func (h *countingHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, h.wrap(handler))
}

func (h *countingHost) wrap(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) { handler(&countingStream{Stream: s, h: h}) }
}

type countingStream struct {
	network.Stream
	h *countingHost
}

func (s *countingStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if n > 0 {
		s.h.bw.LogRecvMessage(int64(n))
		s.h.proto.add(s.Protocol(), n)
	}
	return n, err
}

func (s *countingStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	if n > 0 {
		s.h.bw.LogSentMessage(int64(n))
	}
	return n, err
}
