package chunks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// IdleTimeout is how long a server waits for the next request on a stream,
// and how long one response may take to write.
const IdleTimeout = time.Minute

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
func (s *Server) Register(h host.Host) {
	h.SetStreamHandler(ProtocolID, func(st network.Stream) {
		if err := s.Serve(context.Background(), st, st.Conn().RemotePeer()); err != nil {
			_ = st.Reset()
			return
		}
		_ = st.Close()
	})
}

// Serve answers requests from rw until the client closes its side (nil),
// ctx ends, or the exchange fails (an error; reset the stream).
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter, remote peer.ID) error {
	defer wire.Bind(ctx, rw)()
	d, hasDeadline := rw.(interface{ SetDeadline(time.Time) error })
	for {
		if hasDeadline {
			_ = d.SetDeadline(time.Now().Add(IdleTimeout))
		}
		payload, err := wire.ExpectFrame(rw, serverLimits, wire.TypeChunkRequest)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("chunk request from %s: %w", remote, err)
		}
		req, err := UnmarshalRequest(payload)
		if err != nil {
			_ = wire.WriteError(rw, fmt.Errorf("%w: %w", wire.ErrBadRequest, err))
			return fmt.Errorf("chunk request from %s: %w", remote, err)
		}
		allowed := func(path string) bool { return s.acc.CanRead(req.Folder, remote, path) }
		for _, c := range req.CIDs {
			if err := ctx.Err(); err != nil {
				return err
			}
			data, err := s.src.ReadChunk(req.Folder, c, allowed)
			resp := Response{CID: c, Data: data}
			switch {
			case err == nil && len(data) > wire.MaxChunkSize:
				resp.Code, resp.Data = wire.CodeInternal, nil
			case errors.Is(err, store.ErrChunkMismatch):
				resp.Code, resp.Data = wire.CodeChanged, nil
			case err != nil:
				resp.Code, resp.Data = wire.CodeOf(err), nil
			}
			if hasDeadline {
				_ = d.SetDeadline(time.Now().Add(IdleTimeout))
			}
			if err := wire.WriteFrame(rw, wire.TypeChunkResponse, resp.Marshal()); err != nil {
				return err
			}
		}
	}
}
