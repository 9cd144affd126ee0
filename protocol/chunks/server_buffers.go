package chunks

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/meshfold/meshfold/protocol/wire"
)

// Reused response buffers.
//
// A chunk read back for a response used to be a new slice, copied once more
// into the response frame: for a GiB served, a GiB allocated (and zeroed, and
// collected) and a GiB copied, 0.3 of the sender's 2.5 CPU-seconds in bench
// sync. A Source that is also a BufferSource reads each chunk straight into
// the data part of a response frame; the headers are written in front of it
// once the read is done, and the frame's buffer is used again for a later
// chunk of the same stream.

// BufferSource is a Source that reads a chunk into buf when it fits in buf's
// capacity (the data then aliases buf), and otherwise as ReadChunk does.
type BufferSource interface {
	ReadChunkInto(folder string, c cid.Cid, allowed func(path string) bool, buf []byte) ([]byte, error)
}

const (
	// frameHeadroom is the room in front of a chunk in a frame buffer for
	// the frame header (type, version, length) and the response's (CID,
	// code, data length).
	frameHeadroom = 2 + binary.MaxVarintLen64 + wire.MaxCIDLength + 1 + binary.MaxVarintLen64
	// frameBufferMin is the data capacity of a stream's first frame
	// buffers; they grow to the largest chunk the stream served (at most
	// wire.MaxChunkSize), so a stream of small files holds small buffers.
	frameBufferMin = 64 << 10
	// maxFreeFrameBuffers bounds the buffers one stream keeps for reuse:
	// as many as it can have in use (ServerReadAhead reads queued, one
	// being written) and one more.
	maxFreeFrameBuffers = ServerReadAhead + 2
)

// frameBuffers are the reusable response buffers of one stream.
type frameBuffers struct {
	free chan []byte
	size atomic.Int64 // data capacity of new buffers
}

func newFrameBuffers() *frameBuffers {
	p := &frameBuffers{free: make(chan []byte, maxFreeFrameBuffers)}
	p.size.Store(frameBufferMin)
	return p
}

func (p *frameBuffers) get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, frameHeadroom+int(p.size.Load()))
	}
}

// put keeps b for reuse if it is as large as new buffers are.
func (p *frameBuffers) put(b []byte) {
	if int64(cap(b)) < frameHeadroom+p.size.Load() {
		return
	}
	select {
	case p.free <- b:
	default:
	}
}

// grow makes later buffers hold n bytes of data.
func (p *frameBuffers) grow(n int) {
	for {
		cur := p.size.Load()
		want := min(int64(wire.MaxChunkSize), max(cur, int64(n)))
		if want <= cur || p.size.CompareAndSwap(cur, want) {
			return
		}
	}
}

// readInto reads chunk c for a response, into a reused frame buffer when
// the source can (r.buf is then that buffer).
func (s *Server) readInto(r *readResult, folder string, c cid.Cid, allowed func(string) bool, bufs *frameBuffers) ([]byte, error) {
	bs, ok := s.src.(BufferSource)
	if !ok {
		return s.src.ReadChunk(folder, c, allowed)
	}
	r.buf = bufs.get()
	return bs.ReadChunkInto(folder, c, allowed, r.buf[frameHeadroom:frameHeadroom])
}

// inPlace returns the whole response frame for r if its data was read into
// r.buf, with the headers written in front of the data; ok is false when
// the data is elsewhere (it did not fit: later buffers will be larger).
func (r *readResult) inPlace(resp Response, bufs *frameBuffers) (frame []byte, ok bool) {
	if r.buf == nil || len(resp.Data) == 0 {
		return nil, false
	}
	if &resp.Data[0] != &r.buf[frameHeadroom] {
		bufs.grow(len(resp.Data))
		return nil, false
	}
	var head wire.Encoder
	head.CID(resp.CID)
	head.Byte(byte(resp.Code))
	head.Uvarint(uint64(len(resp.Data)))
	var pre [2 + binary.MaxVarintLen64]byte
	pre[0], pre[1] = byte(wire.TypeChunkResponse), wire.Version1
	n := 2 + binary.PutUvarint(pre[2:], uint64(len(head.Out())+len(resp.Data)))
	start := frameHeadroom - len(head.Out()) - n
	copy(r.buf[start:], pre[:n])
	copy(r.buf[start+n:], head.Out())
	return r.buf[start : frameHeadroom+len(resp.Data)], true
}
