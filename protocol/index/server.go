package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// StreamTimeout bounds one whole request/response exchange.
const StreamTimeout = 2 * time.Minute

// Source is what the server needs from the node's index: the current
// versions authored by dev with Seq >= from, in rising Seq order, until fn
// returns an error (which Since returns) — the semantics of store's
// FolderIndex.Since. An unknown folder is wire.ErrNotFound.
type Source interface {
	Since(folder string, dev store.DeviceID, from uint64, fn func(store.FileInfo) error) error
}

// Access answers whether a peer may read a path of a folder (false for
// non-members). It is consulted for every entry before it is sent.
type Access interface {
	CanRead(folder string, p peer.ID, path string) bool
}

// Server answers index requests.
type Server struct {
	src Source
	acc Access
}

// NewServer returns a server over src that withholds what acc denies.
func NewServer(src Source, acc Access) *Server { return &Server{src: src, acc: acc} }

// Register makes h answer ProtocolID with s.
func (s *Server) Register(h host.Host) {
	h.SetStreamHandler(ProtocolID, func(st network.Stream) {
		ctx, cancel := context.WithTimeout(context.Background(), StreamTimeout)
		defer cancel()
		if err := s.Serve(ctx, st, st.Conn().RemotePeer()); err != nil {
			_ = st.Reset()
			return
		}
		_ = st.Close()
	})
}

var errLimit = errors.New("limit reached")

// Serve answers one request read from rw, sent by remote. Request-level
// failures (bad request, unknown folder, source errors) are answered with an
// Error frame and return nil; Serve returns an error only when the exchange
// itself failed (unreadable request, write error), and the caller should then
// reset the stream.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter, remote peer.ID) error {
	defer wire.Bind(ctx, rw)()
	payload, err := wire.ExpectFrame(rw, serverLimits, wire.TypeIndexRequest)
	if err != nil {
		return fmt.Errorf("index request from %s: %w", remote, err)
	}
	req, err := UnmarshalRequest(payload)
	if err != nil {
		return wire.WriteError(rw, fmt.Errorf("%w: %w", wire.ErrBadRequest, err))
	}
	var (
		batch    wire.Encoder
		count    int
		examined int
		end      = End{Through: req.FromSeq}
	)
	flush := func() error {
		if count == 0 {
			return nil
		}
		var e wire.Encoder
		e.Uvarint(uint64(count))
		err := wire.WriteFrame(rw, wire.TypeIndexBatch, append(e.Out(), batch.Out()...))
		batch, count = wire.Encoder{}, 0
		return err
	}
	if req.FromSeq == math.MaxUint64 {
		return wire.WriteFrame(rw, wire.TypeIndexEnd, end.Marshal())
	}
	err = s.src.Since(req.Folder, req.Device, req.FromSeq+1, func(fi store.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if examined == req.limit() {
			end.More = true
			return errLimit
		}
		examined++
		if fi.Author != req.Device || fi.Seq <= end.Through {
			return fmt.Errorf("index source returned %q seq %d by %s out of order: %w", fi.Path, fi.Seq, peer.ID(fi.Author), wire.ErrInternal)
		}
		end.Through = fi.Seq
		if !s.acc.CanRead(req.Folder, remote, fi.Path) || len(fi.Signature) == 0 || Validate(fi) != nil {
			// Withheld (unreadable for the requester, or a version no
			// receiver could accept); the client still learns Through.
			return nil
		}
		var one wire.Encoder
		appendEntry(&one, fi)
		if len(one.Out()) > MaxEntrySize {
			return nil
		}
		if count == MaxEntriesPerBatch || (count > 0 && len(batch.Out())+len(one.Out()) > BatchTarget) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch.Raw(one.Out())
		count++
		return nil
	})
	if err != nil && !errors.Is(err, errLimit) {
		// Answered: the client learns the error's code; only a failure to
		// tell it is the exchange's failure.
		return wire.WriteError(rw, err)
	}
	if err := flush(); err != nil {
		return err
	}
	return wire.WriteFrame(rw, wire.TypeIndexEnd, end.Marshal())
}
