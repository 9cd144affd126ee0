package chunks

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// ErrTooManyPending: Send would exceed MaxPendingPerStream.
var ErrTooManyPending = errors.New("too many chunk requests in flight on one stream")

// Client is the requesting side of one chunk stream. Send and Recv may be
// called from different goroutines (one sender, one receiver): requests are
// pipelined, and responses come back in request order.
type Client struct {
	rw     io.ReadWriter
	folder string

	wmu sync.Mutex // serialises Send: the order of expect is the order on the wire
	mu  sync.Mutex
	exp []cid.Cid // requested, not yet answered, in order
}

// NewClient returns a client for folder over rw.
func NewClient(rw io.ReadWriter, folder string) *Client { return &Client{rw: rw, folder: folder} }

// Pending is the number of CIDs requested and not yet answered.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.exp)
}

// Send requests cids (1..MaxChunksPerRequest of them).
func (c *Client) Send(cids []cid.Cid) error {
	if len(cids) == 0 || len(cids) > MaxChunksPerRequest {
		return fmt.Errorf("request of %d chunks: %w", len(cids), wire.ErrBadRequest)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if len(c.exp)+len(cids) > MaxPendingPerStream {
		c.mu.Unlock()
		return ErrTooManyPending
	}
	c.exp = append(c.exp, cids...)
	c.mu.Unlock()
	return wire.WriteFrame(c.rw, wire.TypeChunkRequest, Request{Folder: c.folder, CIDs: cids}.Marshal())
}

// Result is the answer for one CID: its verified data, or the error the
// server reported for it (wire.ErrNotFound, wire.ErrNoAccess,
// wire.ErrChanged, ...).
type Result struct {
	CID  cid.Cid
	Data []byte
	Err  error
}

// Recv reads the next response. It returns an error (and the stream is no
// longer usable) for anything that makes the peer untrustworthy: a response
// to nothing, for another CID than the next one requested, a malformed frame,
// or data that does not hash to its CID (wrapping store.ErrChunkMismatch).
// io.EOF means the server closed the stream with nothing pending.
func (c *Client) Recv() (Result, error) { return c.RecvInto(nil) }

// RecvInto is Recv reading the response into buf when it fits in buf's
// capacity (Result.Data then aliases buf).
func (c *Client) RecvInto(buf []byte) (Result, error) {
	f, err := wire.ReadFrameInto(c.rw, clientLimits, buf)
	if err != nil {
		if errors.Is(err, io.EOF) && c.Pending() > 0 {
			return Result{}, wire.ErrTruncated
		}
		return Result{}, err
	}
	if f.Type == wire.TypeError {
		e, err := wire.UnmarshalErrorMsg(f.Payload)
		if err != nil {
			return Result{}, err
		}
		return Result{}, e.Err()
	}
	resp, err := UnmarshalResponse(f.Payload)
	if err != nil {
		return Result{}, fmt.Errorf("chunk response: %w", err)
	}
	c.mu.Lock()
	if len(c.exp) == 0 || !c.exp[0].Equals(resp.CID) {
		c.mu.Unlock()
		return Result{}, fmt.Errorf("response for %s out of order: %w", resp.CID, wire.ErrProtocol)
	}
	c.exp = c.exp[1:]
	c.mu.Unlock()
	if resp.Code != wire.CodeOK {
		return Result{CID: resp.CID, Err: resp.Code.Err()}, nil
	}
	if err := store.VerifyChunk(resp.CID, resp.Data); err != nil {
		return Result{}, fmt.Errorf("chunk %s: %w", resp.CID, err)
	}
	return Result{CID: resp.CID, Data: resp.Data}, nil
}
