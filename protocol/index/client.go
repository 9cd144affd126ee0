package index

import (
	"context"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// KeyFunc finds a device's public key. AuthorKey (the key embedded in an
// Ed25519 device ID) is the default.
type KeyFunc func(store.DeviceID) (crypto.PubKey, error)

// Fetch sends req over rw and passes every version of the answer to accept,
// after checking it: author req.Device, sequence rising within
// (req.FromSeq, End.Through], at most the request's limit, fields valid,
// signature by the author over req.Folder. The first entry that fails a check
// ends the exchange with an error (the peer is broken or hostile). accept is
// where the caller checks the entry against the rights log at the log state
// it names; it returns nil to go on (also after quarantining an entry it
// refuses) and an error to end the exchange, which Fetch returns. keys may be
// nil.
func Fetch(ctx context.Context, rw io.ReadWriter, req Request, keys KeyFunc, accept func(store.FileInfo) error) (End, error) {
	defer wire.Bind(ctx, rw)()
	if keys == nil {
		keys = AuthorKey
	}
	pub, err := keys(req.Device)
	if err != nil {
		return End{}, fmt.Errorf("index of %s: %w", peer.ID(req.Device), err)
	}
	if err := wire.WriteFrame(rw, wire.TypeIndexRequest, req.Marshal()); err != nil {
		return End{}, err
	}
	last, n := req.FromSeq, 0
	for {
		f, err := wire.ReadFrame(rw, clientLimits)
		if err != nil {
			return End{}, fmt.Errorf("index of %s: %w", peer.ID(req.Device), err)
		}
		switch f.Type {
		case wire.TypeIndexBatch:
			b, err := UnmarshalBatch(f.Payload)
			if err != nil {
				return End{}, fmt.Errorf("index batch: %w", err)
			}
			for _, e := range b.Entries {
				fi := FromWire(e)
				n++
				switch {
				case fi.Author != req.Device:
					return End{}, fmt.Errorf("entry %q by %s in the index of %s: %w", fi.Path, peer.ID(fi.Author), peer.ID(req.Device), wire.ErrProtocol)
				case fi.Seq <= last:
					return End{}, fmt.Errorf("entry %q seq %d after %d: %w", fi.Path, fi.Seq, last, wire.ErrProtocol)
				case n > req.limit():
					return End{}, fmt.Errorf("more entries than the limit %d: %w", req.limit(), wire.ErrProtocol)
				}
				if err := VerifyVersion(req.Folder, fi, pub); err != nil {
					return End{}, err
				}
				last = fi.Seq
				if err := accept(fi); err != nil {
					return End{}, err
				}
			}
		case wire.TypeIndexEnd:
			end, err := UnmarshalEnd(f.Payload)
			if err != nil {
				return End{}, fmt.Errorf("index end: %w", err)
			}
			if end.Through < last {
				return End{}, fmt.Errorf("end at %d before entry %d: %w", end.Through, last, wire.ErrProtocol)
			}
			return end, nil
		case wire.TypeError:
			e, err := wire.UnmarshalErrorMsg(f.Payload)
			if err != nil {
				return End{}, err
			}
			return End{}, fmt.Errorf("index of %s: %w", peer.ID(req.Device), e.Err())
		}
	}
}

// Open asks peer p over a new libp2p stream; see Fetch.
func Open(ctx context.Context, h host.Host, p peer.ID, req Request, keys KeyFunc, accept func(store.FileInfo) error) (End, error) {
	st, err := h.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return End{}, fmt.Errorf("opening index stream to %s: %w", p, err)
	}
	end, err := Fetch(ctx, st, req, keys, accept)
	if err != nil {
		_ = st.Reset()
		return End{}, err
	}
	_ = st.Close()
	return end, nil
}
