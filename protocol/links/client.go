package links

import (
	"context"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// Sink receives a download: Begin once with the file's description, then
// Write with the file's bytes in order (each chunk already verified).
type Sink interface {
	Begin(m Meta) error
	io.Writer
}

// Get downloads the file behind req from device p over h into sink.
func Get(ctx context.Context, h host.Host, p peer.ID, req Request, sink Sink) (Meta, error) {
	st, err := h.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return Meta{}, err
	}
	defer st.Close()
	defer wire.Bind(ctx, st)()
	if err := wire.WriteFrame(st, TypeRequest, req.Marshal()); err != nil {
		return Meta{}, err
	}
	return Receive(st, sink)
}

// Receive reads the server's answer from r into sink: a refusal comes back as
// an error wrapping its sentinel; a chunk that does not match its CID is
// wire.ErrMalformed.
func Receive(r io.Reader, sink Sink) (Meta, error) {
	f, err := wire.ReadFrame(r, clientLimits)
	if err != nil {
		return Meta{}, err
	}
	switch f.Type {
	case TypeRefusal:
		ref, err := UnmarshalRefusal(f.Payload)
		if err != nil {
			return Meta{}, err
		}
		return Meta{}, ref.Err()
	case TypeMeta:
	default:
		return Meta{}, fmt.Errorf("got message type %#x first: %w", f.Type, wire.ErrProtocol)
	}
	m, err := UnmarshalMeta(f.Payload)
	if err != nil {
		return Meta{}, err
	}
	if err := sink.Begin(m); err != nil {
		return m, err
	}
	for i, c := range m.Chunks {
		f, err := wire.ReadFrame(r, clientLimits)
		if err != nil {
			return m, err
		}
		if f.Type == TypeRefusal {
			ref, err := UnmarshalRefusal(f.Payload)
			if err != nil {
				return m, err
			}
			return m, ref.Err()
		}
		if f.Type != TypeData {
			return m, fmt.Errorf("got message type %#x for chunk %d: %w", f.Type, i, wire.ErrProtocol)
		}
		d, err := UnmarshalData(f.Payload)
		if err != nil {
			return m, err
		}
		if !d.CID.Equals(c.CID) || len(d.Data) != int(c.Size) {
			return m, fmt.Errorf("chunk %d is not the one announced: %w", i, wire.ErrMalformed)
		}
		if err := store.VerifyChunk(c.CID, d.Data); err != nil {
			return m, fmt.Errorf("chunk %d: %w", i, err)
		}
		if _, err := sink.Write(d.Data); err != nil {
			return m, err
		}
	}
	return m, nil
}
