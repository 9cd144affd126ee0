package join

import (
	"bytes"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/wire"
)

// ProtocolID is the libp2p protocol of the join handshake.
const ProtocolID = "/meshfold/join/1.0.0"

// Frame types of the handshake.
const (
	TypeRequest wire.Type = 0x50
	TypeOps     wire.Type = 0x51
	TypeJoinOp  wire.Type = 0x52
	TypeAck     wire.Type = 0x53
)

// Limits of the handshake.
const (
	MaxInviteIDLength = 128
	MaxSigLength      = 256
	MaxOpSize         = 64 << 10
	MaxOpsPerFrame    = 256
	MaxOpsFrameSize   = 4 << 20
	// MaxLogOps bounds the log a joiner accepts (the same bound as log sync).
	MaxLogOps     = 100_000
	maxPeerIDLen  = 128
	maxRequestLen = wire.MaxFolderIDLength + MaxInviteIDLength + 2*maxPeerIDLen + 2*MaxSigLength + 32
)

var (
	serverLimits = wire.Limits{TypeRequest: maxRequestLen, TypeJoinOp: MaxOpSize + 16}
	clientLimits = wire.Limits{TypeOps: MaxOpsFrameSize, TypeAck: 0, wire.TypeError: wire.MaxErrorFrame}
)

// Request asks to join a folder with an invitation.
type Request struct {
	Folder     string
	Invite     []byte  // the invitation's ID (crdt.InviteID bytes)
	CertUser   peer.ID // the joiner's device certificate: its user,
	CertDevice peer.ID // the device (the stream's remote peer),
	CertSig    []byte  // and the user's signature
	Proof      []byte  // crdt.InviteProof by the invitation key
}

// Marshal encodes r as a frame payload.
func (r Request) Marshal() []byte {
	var e wire.Encoder
	e.String(r.Folder)
	e.Bytes(r.Invite)
	e.Bytes([]byte(r.CertUser))
	e.Bytes([]byte(r.CertDevice))
	e.Bytes(r.CertSig)
	e.Bytes(r.Proof)
	return e.Out()
}

// UnmarshalRequest decodes a Request payload.
func UnmarshalRequest(b []byte) (Request, error) {
	d := wire.NewDecoder(b)
	r := Request{
		Folder:     d.String(wire.MaxFolderIDLength, "folder"),
		Invite:     d.Bytes(MaxInviteIDLength, "invite"),
		CertUser:   peer.ID(d.Bytes(maxPeerIDLen, "cert user")),
		CertDevice: peer.ID(d.Bytes(maxPeerIDLen, "cert device")),
		CertSig:    d.Bytes(MaxSigLength, "cert signature"),
		Proof:      d.Bytes(MaxSigLength, "proof"),
	}
	if d.Err() == nil && (r.Folder == "" || len(r.Invite) == 0 || r.CertUser == "" || r.CertDevice == "" || len(r.Proof) == 0) {
		d.Fail("empty field")
	}
	if err := d.Finish(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Ops carries part of the folder's log, parents before children; Last marks
// the final frame.
type Ops struct {
	Ops  [][]byte
	Last bool
}

// Marshal encodes o as a frame payload.
func (o Ops) Marshal() []byte {
	var e wire.Encoder
	e.Bool(o.Last)
	e.Uvarint(uint64(len(o.Ops)))
	for _, op := range o.Ops {
		e.Bytes(op)
	}
	return e.Out()
}

// UnmarshalOps decodes an Ops payload.
func UnmarshalOps(b []byte) (Ops, error) {
	d := wire.NewDecoder(b)
	o := Ops{Last: d.Bool()}
	n := d.Count(MaxOpsPerFrame, "ops")
	for range n {
		op := bytes.Clone(d.Bytes(MaxOpSize, "op"))
		if d.Err() == nil && len(op) == 0 {
			d.Fail("empty op")
		}
		o.Ops = append(o.Ops, op)
	}
	if err := d.Finish(); err != nil {
		return Ops{}, err
	}
	return o, nil
}

// JoinOp carries the joiner's signed Join op.
type JoinOp struct{ Op []byte }

// Marshal encodes j as a frame payload.
func (j JoinOp) Marshal() []byte {
	var e wire.Encoder
	e.Bytes(j.Op)
	return e.Out()
}

// UnmarshalJoinOp decodes a JoinOp payload.
func UnmarshalJoinOp(b []byte) (JoinOp, error) {
	d := wire.NewDecoder(b)
	j := JoinOp{Op: bytes.Clone(d.Bytes(MaxOpSize, "op"))}
	if d.Err() == nil && len(j.Op) == 0 {
		d.Fail("empty op")
	}
	if err := d.Finish(); err != nil {
		return JoinOp{}, err
	}
	return j, nil
}
