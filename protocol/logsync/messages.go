package logsync

import (
	"github.com/ipfs/go-cid"
	"github.com/meshfold/meshfold/protocol/wire"
)

// ProtocolID is the libp2p protocol of log sync.
const ProtocolID = "/meshfold/log/1.0.0"

// Limits of the exchange.
const (
	// MaxWant bounds the CIDs of one Want.
	MaxWant = 256
	// MaxOpSize bounds one op's encoding.
	MaxOpSize = 64 << 10
	// MaxOpsPerMessage bounds the ops of one Ops message.
	MaxOpsPerMessage = MaxWant
	// MaxOpsSize bounds an Ops payload; the server stops adding ops before
	// passing it.
	MaxOpsSize = 4 << 20
	// MaxHeadsSize bounds a Heads payload.
	MaxHeadsSize = wire.MaxFolderIDLength + 8 + wire.MaxLogHeads*(wire.MaxCIDLength+2)
	// MaxWantSize bounds a Want payload.
	MaxWantSize = 8 + MaxWant*(wire.MaxCIDLength+2)
	// MaxRounds bounds the Want rounds one stream may have.
	MaxRounds = 4096
)

var (
	serverLimits = wire.Limits{wire.TypeLogHeads: MaxHeadsSize, wire.TypeLogWant: MaxWantSize}
	clientLimits = wire.Limits{wire.TypeLogHeads: MaxHeadsSize, wire.TypeLogOps: MaxOpsSize, wire.TypeError: wire.MaxErrorFrame}
)

// Heads is one side's log heads for a folder.
type Heads struct {
	Folder string
	Heads  []cid.Cid // sorted, unique
}

// Marshal encodes h as a frame payload; Heads are sorted first.
func (h Heads) Marshal() []byte {
	var e wire.Encoder
	e.String(h.Folder)
	e.CIDs(wire.SortCIDs(h.Heads))
	return e.Out()
}

// UnmarshalHeads decodes a Heads payload.
func UnmarshalHeads(b []byte) (Heads, error) {
	d := wire.NewDecoder(b)
	h := Heads{Folder: d.String(wire.MaxFolderIDLength, "folder"), Heads: d.SortedCIDs(wire.MaxLogHeads, "heads")}
	if d.Err() == nil && h.Folder == "" {
		d.Fail("empty folder")
	}
	if err := d.Finish(); err != nil {
		return Heads{}, err
	}
	return h, nil
}

// Want asks for ops by CID.
type Want struct{ CIDs []cid.Cid }

// Marshal encodes w as a frame payload.
func (w Want) Marshal() []byte {
	var e wire.Encoder
	e.CIDs(w.CIDs)
	return e.Out()
}

// UnmarshalWant decodes a Want payload (1..MaxWant CIDs).
func UnmarshalWant(b []byte) (Want, error) {
	d := wire.NewDecoder(b)
	w := Want{CIDs: d.CIDs(MaxWant, "want")}
	if d.Err() == nil && len(w.CIDs) == 0 {
		d.Fail("empty want")
	}
	if err := d.Finish(); err != nil {
		return Want{}, err
	}
	return w, nil
}

// Ops carries raw ops.
type Ops struct{ Ops [][]byte }

// Marshal encodes o as a frame payload.
func (o Ops) Marshal() []byte {
	var e wire.Encoder
	e.Uvarint(uint64(len(o.Ops)))
	for _, op := range o.Ops {
		e.Bytes(op)
	}
	return e.Out()
}

// UnmarshalOps decodes an Ops payload. The ops alias b.
func UnmarshalOps(b []byte) (Ops, error) {
	d := wire.NewDecoder(b)
	n := d.Count(MaxOpsPerMessage, "ops")
	o := Ops{}
	for range n {
		op := d.Bytes(MaxOpSize, "op")
		if d.Err() != nil {
			break
		}
		if len(op) == 0 {
			d.Fail("empty op")
			break
		}
		o.Ops = append(o.Ops, op)
	}
	if err := d.Finish(); err != nil {
		return Ops{}, err
	}
	return o, nil
}
