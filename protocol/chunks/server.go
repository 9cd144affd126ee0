package chunks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

const (
	// IdleTimeout is how long a server waits for the next request on a
	// stream, and how long one response may take to write.
	IdleTimeout = time.Minute
	// ServerReadAhead is how many chunks of a request the server reads
	// and verifies ahead of the one it is writing, each on its own
	// goroutine: disk reads and hashing overlap the network. It bounds the
	// chunk buffers one stream holds (ServerReadAhead+1 of at most
	// wire.MaxChunkSize).
	ServerReadAhead = 4
)

// Source is what the server needs from the node's store: the chunk c of
// folder, read back from a file whose path allowed accepts and verified
// against c. It returns wire.ErrNotFound if no file holds c,
// wire.ErrNoAccess if only files allowed refuses hold it, and an error
// wrapping store.ErrChunkMismatch (or wire.ErrChanged) if the file changed
// under it. Taking allowed rather than returning one path lets the source
// pick a readable file when the same chunk is in several.
type Source interface {
	ReadChunk(folder string, c cid.Cid, allowed func(path string) bool) ([]byte, error)
}

// Access answers whether a peer may read a path of a folder.
type Access interface {
	CanRead(folder string, p peer.ID, path string) bool
}

// Server answers chunk requests.
type Server struct {
	src Source
	acc Access
}

// NewServer returns a server reading through src, serving what acc allows.
func NewServer(src Source, acc Access) *Server { return &Server{src: src, acc: acc} }

// Register makes h answer ProtocolID with s.
func (s *Server) Register(h host.Host) { wire.Handle(h, ProtocolID, 0, s.Serve) }

// Serve answers requests from rw until the client closes its side (nil),
// ctx ends, or the exchange fails (an error; reset the stream).
//
// Requests are read on a goroutine of their own and every requested chunk
// is read back and verified on its own goroutine, up to ServerReadAhead
// ahead of the response being written: disk reads and hashing overlap the
// network across request boundaries (a client with a full window sends
// requests of one or two chunks). Responses go out in request order.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter, remote peer.ID) error {
	defer wire.Bind(ctx, rw)()
	d, hasDeadline := rw.(splitDeadliner)
	pending := make(chan *readResult, ServerReadAhead) // in request order
	bufs := newFrameBuffers()
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		defer close(pending)
		readerDone <- s.readRequests(ctx, rw, remote, d, hasDeadline, pending, stop, bufs)
	}()
	err := s.writeResponses(ctx, rw, pending, d, hasDeadline, bufs)
	if err != nil {
		close(stop)
		if hasDeadline {
			// Unblock the reader so it is gone when Serve returns.
			_ = d.SetReadDeadline(time.Unix(1, 0))
			for range pending {
			}
			<-readerDone
		}
		return err
	}
	return <-readerDone
}

// splitDeadliner is a stream with separate read and write deadlines (libp2p
// streams, net.Conn): requests are read while responses are written.
type splitDeadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// readResult is one requested chunk being read back, or (badRequest) the
// error to answer in place of the rest.
type readResult struct {
	c          cid.Cid
	data       []byte
	buf        []byte // the frame buffer data was read into, or nil (server_buffers.go)
	err        error
	badRequest error
	done       chan struct{} // closed once data and err are set
}

// readRequests reads requests until EOF (nil) or an error, starting the
// read-back of each CID as pending has room for it.
func (s *Server) readRequests(ctx context.Context, r io.Reader, remote peer.ID, d splitDeadliner, hasDeadline bool,
	pending chan<- *readResult, stop <-chan struct{}, bufs *frameBuffers) error {
	for {
		if hasDeadline {
			_ = d.SetReadDeadline(time.Now().Add(IdleTimeout))
		}
		payload, err := wire.ExpectFrame(r, serverLimits, wire.TypeChunkRequest)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("chunk request from %s: %w", remote, err)
		}
		req, err := UnmarshalRequest(payload)
		if err != nil {
			bad := &readResult{badRequest: fmt.Errorf("%w: %w", wire.ErrBadRequest, err), done: make(chan struct{})}
			close(bad.done)
			select {
			case pending <- bad:
			case <-stop:
			}
			return fmt.Errorf("chunk request from %s: %w", remote, err)
		}
		allowed := func(path string) bool { return s.acc.CanRead(req.Folder, remote, path) }
		for _, c := range req.CIDs {
			res := &readResult{c: c, done: make(chan struct{})}
			select {
			case pending <- res:
			case <-stop:
				return nil
			}
			if ctx.Err() != nil {
				close(res.done) // answered with ctx's error by the writer
				continue
			}
			go func() {
				defer close(res.done)
				res.data, res.err = s.readInto(res, req.Folder, c, allowed, bufs)
			}()
		}
	}
}

// writeResponses writes the answer to each pending read, in order.
func (s *Server) writeResponses(ctx context.Context, w io.Writer, pending <-chan *readResult, d splitDeadliner, hasDeadline bool, bufs *frameBuffers) error {
	var buf []byte // one frame at a time, reused: Write is done with it on return
	for r := range pending {
		<-r.done
		if err := ctx.Err(); err != nil {
			return err
		}
		if hasDeadline {
			_ = d.SetWriteDeadline(time.Now().Add(IdleTimeout))
		}
		if r.badRequest != nil {
			_ = wire.WriteError(w, r.badRequest)
			continue // the reader returns the error
		}
		resp := Response{CID: r.c, Data: r.data}
		switch err := r.err; {
		case err == nil && len(r.data) > wire.MaxChunkSize:
			resp.Code, resp.Data = wire.CodeInternal, nil
		case errors.Is(err, store.ErrChunkMismatch):
			resp.Code, resp.Data = wire.CodeChanged, nil
		case err != nil:
			resp.Code, resp.Data = wire.CodeOf(err), nil
		}
		frame, ok := r.inPlace(resp, bufs)
		if !ok {
			buf = resp.appendFrame(buf[:0])
			frame = buf
		}
		_, err := w.Write(frame)
		if r.buf != nil {
			bufs.put(r.buf)
		}
		if err != nil {
			return fmt.Errorf("writing chunk response: %w", err)
		}
	}
	return nil
}
