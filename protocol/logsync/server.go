package logsync

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
)

// StreamTimeout bounds one whole log-sync exchange.
const StreamTimeout = 2 * time.Minute

// Log is what the server needs from the node's rights log.
type Log interface {
	// Heads returns the folder's current heads (wire.ErrNotFound for an
	// unknown folder).
	Heads(folder string) ([]cid.Cid, error)
	// Op returns the encoded op c (wire.ErrNotFound if absent).
	Op(folder string, c cid.Cid) ([]byte, error)
}

// Members says whether a peer is a member of a folder: only members may
// read its log.
type Members interface {
	IsMember(folder string, p peer.ID) bool
}

// Server answers log-sync streams.
type Server struct {
	log Log
	mem Members
}

// NewServer returns a server over log for the members mem admits.
func NewServer(log Log, mem Members) *Server { return &Server{log: log, mem: mem} }

// Register makes h answer ProtocolID with s.
func (s *Server) Register(h host.Host) { wire.Handle(h, ProtocolID, StreamTimeout, s.Serve) }

// Serve runs one exchange on rw with remote. Refusals (not a member, unknown
// folder) are answered with an Error frame and return nil; an error means
// the exchange failed and the stream should be reset.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter, remote peer.ID) error {
	defer wire.Bind(ctx, rw)()
	payload, err := wire.ExpectFrame(rw, serverLimits, wire.TypeLogHeads)
	if err != nil {
		return fmt.Errorf("log heads from %s: %w", remote, err)
	}
	theirs, err := UnmarshalHeads(payload)
	if err != nil {
		return wire.WriteError(rw, fmt.Errorf("%w: %w", wire.ErrBadRequest, err))
	}
	folder := theirs.Folder
	if !s.mem.IsMember(folder, remote) {
		return wire.WriteError(rw, wire.ErrNoAccess)
	}
	mine, err := s.log.Heads(folder)
	if err != nil {
		return wire.WriteError(rw, err)
	}
	if len(mine) > wire.MaxLogHeads {
		mine = wire.SortCIDs(mine)[:wire.MaxLogHeads]
	}
	if err := wire.WriteFrame(rw, wire.TypeLogHeads, Heads{Folder: folder, Heads: mine}.Marshal()); err != nil {
		return err
	}
	for range MaxRounds {
		payload, err := wire.ExpectFrame(rw, serverLimits, wire.TypeLogWant)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("log want from %s: %w", remote, err)
		}
		want, err := UnmarshalWant(payload)
		if err != nil {
			return fmt.Errorf("log want from %s: %w", remote, err)
		}
		var (
			out  Ops
			size = 8
		)
		for _, c := range want.CIDs {
			op, err := s.log.Op(folder, c)
			if errors.Is(err, wire.ErrNotFound) {
				continue
			}
			if err != nil {
				return wire.WriteError(rw, err)
			}
			if len(op) == 0 || len(op) > MaxOpSize {
				continue
			}
			if size+len(op)+8 > MaxOpsSize {
				break
			}
			size += len(op) + 8
			out.Ops = append(out.Ops, op)
		}
		if err := wire.WriteFrame(rw, wire.TypeLogOps, out.Marshal()); err != nil {
			return err
		}
	}
	return fmt.Errorf("log sync with %s: more than %d rounds: %w", remote, MaxRounds, wire.ErrProtocol)
}
