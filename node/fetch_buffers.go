package node

import (
	"context"

	"github.com/meshfold/meshfold/protocol/chunks"
)

// Reused receive buffers for the executor's fetches.
//
// The executor's deliver copies each chunk into its file (or a direct-write
// run buffer) and keeps nothing, so its fetches read responses into buffers
// that are used again (chunks.FetchOptions.Buffers) instead of a new slice
// per chunk. Other callers of Folder.Fetch keep the old promise: the data
// handed to deliver is theirs.

// maxRecvBuffers bounds the receive buffers kept for reuse, for every node
// of the process together (memory: maxRecvBuffers * chunks.MaxResponseSize,
// about 8 MiB). One peer's transfer has at most chunks.DeliverQueue+2 in use
// at a time; more are allocated when needed, and not kept.
const maxRecvBuffers = 8

var recvBuffers = &bufferPool{free: make(chan []byte, maxRecvBuffers)}

// bufferPool is a bounded free list of response buffers (chunks.Buffers).
type bufferPool struct{ free chan []byte }

// Get returns a buffer that holds any chunk response.
func (p *bufferPool) Get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, 0, chunks.MaxResponseSize)
	}
}

// Put keeps b for reuse if there is room.
func (p *bufferPool) Put(b []byte) {
	if cap(b) < chunks.MaxResponseSize {
		return
	}
	select {
	case p.free <- b[:0]:
	default:
	}
}

type deliverNotKeptKey struct{}

// deliverNotKept marks a fetch whose deliver keeps no data after it returns,
// so its responses may be read into reused buffers.
func deliverNotKept(ctx context.Context) context.Context {
	return context.WithValue(ctx, deliverNotKeptKey{}, true)
}

// fetchBuffers returns the buffers for a fetch under ctx: recvBuffers if
// its deliver keeps no data, nil otherwise.
func fetchBuffers(ctx context.Context) chunks.Buffers {
	if v, _ := ctx.Value(deliverNotKeptKey{}).(bool); v {
		return recvBuffers
	}
	return nil
}
