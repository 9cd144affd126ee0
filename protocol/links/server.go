package links

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/wire"
)

// StreamTimeout bounds one whole download stream.
const StreamTimeout = 30 * time.Minute

// File is a linked file a Provider opened for one download.
type File interface {
	Meta() Meta
	// Chunk returns chunk i of Meta().Chunks, verified against its CID.
	Chunk(i int) ([]byte, error)
	// Complete records that the whole file was sent (it counts against the
	// download limit).
	Complete() error
	Close() error
}

// Provider decides a request: the file, or an error wrapping one of the
// refusal sentinels (ErrExpired, ErrPassword, ...). The node implements it
// once, for libp2p and the relay's HTTP gateway alike.
type Provider interface {
	OpenLink(ctx context.Context, req Request, from string) (File, error)
}

// Server serves share-link downloads.
type Server struct{ p Provider }

// NewServer returns a server over p.
func NewServer(p Provider) *Server { return &Server{p: p} }

// Register installs the server on h.
func (s *Server) Register(h host.Host) { wire.Handle(h, ProtocolID, StreamTimeout, s.Serve) }

// Serve answers one download over rw from device remote. A refusal is
// answered with a Refusal frame and returns nil.
func (s *Server) Serve(ctx context.Context, rw io.ReadWriter, remote peer.ID) error {
	defer wire.Bind(ctx, rw)()
	payload, err := wire.ExpectFrame(rw, serverLimits, TypeRequest)
	if err != nil {
		return err
	}
	req, err := UnmarshalRequest(payload)
	if err != nil {
		return refuse(rw, fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	f, err := s.p.OpenLink(ctx, req, "p2p:"+remote.String())
	if err != nil {
		return refuse(rw, err)
	}
	defer f.Close()
	m := f.Meta()
	if err := wire.WriteFrame(rw, TypeMeta, m.Marshal()); err != nil {
		return err
	}
	for i, c := range m.Chunks {
		data, err := f.Chunk(i)
		if err != nil {
			return refuse(rw, fmt.Errorf("%w: %v", ErrUnavailable, err))
		}
		if err := wire.WriteFrame(rw, TypeData, Data{CID: c.CID, Data: data}.Marshal()); err != nil {
			return err
		}
	}
	return f.Complete()
}

// refuse writes err as a Refusal; its text goes along only for bad requests
// and plain reasons (never an internal error's detail).
func refuse(w io.Writer, err error) error {
	r := Refusal{Reason: ReasonOf(err)}
	var detail *Detail
	if errors.As(err, &detail) {
		r.Message = truncate(detail.Text, MaxMessageLength)
	}
	return wire.WriteFrame(w, TypeRefusal, r.Marshal())
}

// Detail is a human detail a Provider may attach to a refusal (wrap it with
// the sentinel: fmt.Errorf("%w%w", ErrExpired, &Detail{...})).
type Detail struct{ Text string }

func (d *Detail) Error() string { return "" }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
