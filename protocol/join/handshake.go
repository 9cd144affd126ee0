package join

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/wire"
)

// StreamTimeout bounds one whole handshake.
const StreamTimeout = 2 * time.Minute

// Inviter is what the serving side needs from the node.
type Inviter interface {
	// Admit checks req from device remote (invitation live, certificate by
	// the joiner's user naming remote, proof by the invitation key) and
	// returns the folder's log, parents before children. Errors are sent to
	// the joiner: wrap a wire sentinel (ErrNoAccess, ErrNotFound, ...).
	Admit(req Request, remote peer.ID) ([][]byte, error)
	// Complete merges the joiner's Join op and fails unless it is valid.
	Complete(req Request, remote peer.ID, op []byte) error
}

// Server serves the handshake.
type Server struct{ inv Inviter }

// NewServer returns a server over inv.
func NewServer(inv Inviter) *Server { return &Server{inv: inv} }

// Register installs the server on h.
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

// Serve runs the serving side of one handshake over rw with device remote.
// A refusal (bad request, unknown or used-up invitation, invalid Join op) is
// answered with an Error frame and returns nil; Serve returns an error only
// when the exchange itself broke, and the stream is then reset.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter, remote peer.ID) error {
	defer wire.Bind(ctx, rw)()
	payload, err := wire.ExpectFrame(rw, serverLimits, TypeRequest)
	if err != nil {
		return err
	}
	req, err := UnmarshalRequest(payload)
	if err != nil {
		return wire.WriteError(rw, fmt.Errorf("%w: %w", wire.ErrBadRequest, err))
	}
	if req.CertDevice != remote {
		return wire.WriteError(rw, fmt.Errorf("the certificate names another device: %w", wire.ErrNoAccess))
	}
	ops, err := s.inv.Admit(req, remote)
	if err != nil {
		return wire.WriteError(rw, err)
	}
	if err := writeOps(rw, ops); err != nil {
		return err
	}
	payload, err = wire.ExpectFrame(rw, serverLimits, TypeJoinOp)
	if err != nil {
		return err
	}
	j, err := UnmarshalJoinOp(payload)
	if err != nil {
		return wire.WriteError(rw, fmt.Errorf("%w: %w", wire.ErrBadRequest, err))
	}
	if err := s.inv.Complete(req, remote, j.Op); err != nil {
		return wire.WriteError(rw, err)
	}
	return wire.WriteFrame(rw, TypeAck, nil)
}

// writeOps sends the log in frames of at most MaxOpsPerFrame ops and
// MaxOpsFrameSize bytes (one op is at most MaxOpSize, so one always fits).
func writeOps(w io.Writer, ops [][]byte) error {
	start := 0
	for {
		end := min(start+MaxOpsPerFrame, len(ops))
		for end > start+1 && len(Ops{Ops: ops[start:end]}.Marshal()) > MaxOpsFrameSize {
			end = start + (end-start)/2
		}
		last := end == len(ops)
		if err := wire.WriteFrame(w, TypeOps, Ops{Ops: ops[start:end], Last: last}.Marshal()); err != nil {
			return err
		}
		if last {
			return nil
		}
		start = end
	}
}

// ErrLogTooLarge: the member sent more than MaxLogOps ops.
var ErrLogTooLarge = errors.New("join: the folder's log is larger than this device accepts")

// Join runs the joining side over rw: it sends req, collects the log, calls
// build to make and sign the Join op on top of it, sends that op and waits for
// the member's acknowledgement. It returns the log it received.
func Join(ctx context.Context, rw io.ReadWriter, req Request, build func(log [][]byte) ([]byte, error)) ([][]byte, error) {
	defer wire.Bind(ctx, rw)()
	if err := wire.WriteFrame(rw, TypeRequest, req.Marshal()); err != nil {
		return nil, err
	}
	var log [][]byte
	for {
		payload, err := wire.ExpectFrame(rw, clientLimits, TypeOps)
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		ops, err := UnmarshalOps(payload)
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		if len(log)+len(ops.Ops) > MaxLogOps {
			return nil, ErrLogTooLarge
		}
		log = append(log, ops.Ops...)
		if ops.Last {
			break
		}
	}
	op, err := build(log)
	if err != nil {
		return nil, err
	}
	if err := wire.WriteFrame(rw, TypeJoinOp, JoinOp{Op: op}.Marshal()); err != nil {
		return nil, err
	}
	if _, err := wire.ExpectFrame(rw, clientLimits, TypeAck); err != nil {
		return nil, fmt.Errorf("join refused: %w", err)
	}
	return append(log, op), nil
}

// Open runs Join with peer p over a new libp2p stream.
func Open(ctx context.Context, h host.Host, p peer.ID, req Request, build func([][]byte) ([]byte, error)) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	s, err := h.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	log, err := Join(ctx, s, req, build)
	if err != nil {
		s.Reset()
	}
	return log, err
}
