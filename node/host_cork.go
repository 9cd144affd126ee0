package node

import (
	"context"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// TLS with one socket write per connection write.
//
// crypto/tls writes each record (at most 16 KiB of data) to the socket with
// a syscall of its own, so the 64 KiB frames yamux writes cost four writes
// each: 65,536 syscalls per GiB sent, 17% of the sending node's CPU in bench
// sync. corkedTLS is libp2p's TLS transport with the socket under the TLS
// connection held back (corked) for the duration of each Write of the
// secured connection, so the records of one Write leave in one syscall. The
// bytes on the wire, their order and the TLS session are unchanged: only
// when they are handed to the kernel differs, and every Write returns after
// its bytes were.
const (
	// corkMaxBuffer is the most a corked write holds before it writes
	// through: a bound on the buffer of one connection's Write in progress.
	corkMaxBuffer = 256 << 10
)

// corkBuffers are the buffers of corked writes in progress: a connection
// holds one only during a Write.
var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, corkMaxBuffer); return &b }}

// corkedTLS is libp2p's TLS transport with corked writes.
type corkedTLS struct{ *libp2ptls.Transport }

// newCorkedTLS has the signature of libp2ptls.New, for libp2p.Security.
func newCorkedTLS(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*corkedTLS, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return &corkedTLS{t}, nil
}

// SecureInbound secures an inbound connection (sec.SecureTransport).
func (t *corkedTLS) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	raw := &corkConn{Conn: insecure}
	sc, err := t.Transport.SecureInbound(ctx, raw, p)
	if err != nil {
		return nil, err
	}
	return &corkedConn{SecureConn: sc, raw: raw}, nil
}

// SecureOutbound secures an outbound connection (sec.SecureTransport).
func (t *corkedTLS) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	raw := &corkConn{Conn: insecure}
	sc, err := t.Transport.SecureOutbound(ctx, raw, p)
	if err != nil {
		return nil, err
	}
	return &corkedConn{SecureConn: sc, raw: raw}, nil
}

// corkedConn is a secured connection whose Write corks the socket under it.
type corkedConn struct {
	sec.SecureConn
	raw *corkConn
	wmu sync.Mutex // one corked Write at a time
}

// Write writes b through TLS with the records it makes collected and
// written to the socket together.
func (c *corkedConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.raw.cork()
	n, err := c.SecureConn.Write(b)
	if ferr := c.raw.uncork(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

// corkConn is the socket under TLS: while corked, writes collect in a
// buffer (written through when it is full) until uncork writes them.
type corkConn struct {
	net.Conn
	mu     sync.Mutex // TLS may write from its reading side too (alerts, key updates)
	corked bool
	buf    *[]byte
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what collected and stops collecting.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := *c.buf
	_, err := c.Conn.Write(b)
	*c.buf = b[:0]
	corkBuffers.Put(c.buf)
	c.buf = nil
	return err
}

// Write collects b while corked and writes it through otherwise.
func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(b)
	}
	if c.buf != nil && len(*c.buf)+len(b) > corkMaxBuffer {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(b) > corkMaxBuffer {
		return c.Conn.Write(b)
	}
	if c.buf == nil {
		c.buf = corkBuffers.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, b...)
	return len(b), nil
}
