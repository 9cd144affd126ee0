package chunks

// Reused receive buffers.
//
// Every response used to be read into a new slice: for a GiB fetched, a GiB
// allocated, zeroed and collected (0.3-0.4 of the receiver's 2.3-2.7
// CPU-seconds in bench sync). With FetchOptions.Buffers, responses of a peer
// that sends large chunks are read into buffers from it, and each goes back
// once its chunk was delivered; responses of a peer sending small chunks
// (many small files) are still read into slices of their own size, so a
// pool of large buffers is not touched for them.

// Buffers supplies response buffers. Get returns a buffer (its capacity is
// what counts; at least MaxResponseSize to hold any response); Put takes
// back one that Get returned. Both may be called concurrently.
type Buffers interface {
	Get() []byte
	Put(b []byte)
}

// pooledMin is the smallest response size (the last one of a peer) for
// which the next response is read into a pooled buffer.
const pooledMin = 64 << 10

// received is a verified response waiting for deliver, with the pooled
// buffer it was read into (nil if none).
type received struct {
	Result
	buf []byte
}

// recvBuffers is one peer's reader's use of FetchOptions.Buffers.
type recvBuffers struct {
	last int // data size of the last response
}

// get returns the buffer to read the next response into: pooled when the
// last response was large, nil (a slice of the response's size) otherwise.
func (r *recvBuffers) get(p Buffers) []byte {
	if p == nil || r.last < pooledMin {
		return nil
	}
	return p.Get()
}

// put returns a buffer whose response is not delivered.
func (r *recvBuffers) put(p Buffers, b []byte) {
	if p != nil && b != nil {
		p.Put(b)
	}
}

// sized notes the size of the response just read.
func (r *recvBuffers) sized(n int) { r.last = n }
