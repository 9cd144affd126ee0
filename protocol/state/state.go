package state

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// MaxFolderStateSize bounds an encoded FolderState frame payload: a full
// vector of MaxVectorCounters devices plus MaxLogHeads heads fits.
const MaxFolderStateSize = 512 << 10

// Limits is what a FolderState reader accepts.
var Limits = wire.Limits{wire.TypeFolderState: MaxFolderStateSize}

// FolderState is one device's signed summary of its copy of a folder.
type FolderState struct {
	Folder string  // folder ID
	Device peer.ID // the device speaking, and the signer
	Seq    uint64  // Device's own change sequence
	// Seen is, for every other device, the highest of its change sequences
	// Device holds. It has the shape of a version vector (sorted, no zeros).
	Seen     store.VersionVector
	LogHeads []cid.Cid // heads of the folder's rights log, sorted, unique
	Time     int64     // Unix nanoseconds when made: a hint, never trusted

	Signature []byte // by Device over SignDomain + the fields above
}

// appendBody encodes every field but the signature: what is signed.
func (s *FolderState) appendBody(e *wire.Encoder) {
	e.String(s.Folder)
	e.String(string(s.Device))
	e.Uvarint(s.Seq)
	e.Vector(s.Seen)
	e.CIDs(s.LogHeads)
	e.Varint(s.Time)
}

// Marshal encodes s as a frame: the bytes published on the topic.
func (s *FolderState) Marshal() []byte {
	var e wire.Encoder
	s.appendBody(&e)
	e.Bytes(s.Signature)
	return wire.AppendFrame(nil, wire.TypeFolderState, e.Out())
}

// Unmarshal decodes a frame made by Marshal. It checks the encoding and the
// limits, not the signature (Verify does).
func Unmarshal(b []byte) (*FolderState, error) {
	f, err := wire.ReadFrameBytes(b, Limits)
	if err != nil {
		return nil, fmt.Errorf("folder state: %w", err)
	}
	d := wire.NewDecoder(f.Payload)
	s := &FolderState{
		Folder:   d.String(wire.MaxFolderIDLength, "folder"),
		Device:   d.Device("device"),
		Seq:      d.Uvarint(),
		Seen:     d.Vector("seen"),
		LogHeads: d.SortedCIDs(wire.MaxLogHeads, "log heads"),
		Time:     d.Varint(),
	}
	s.Signature = append([]byte(nil), d.Bytes(wire.MaxSignatureLength, "signature")...)
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("folder state: %w", err)
	}
	if s.Folder == "" {
		return nil, fmt.Errorf("folder state: empty folder: %w", wire.ErrMalformed)
	}
	return s, nil
}
