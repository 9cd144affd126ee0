package crdt

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"github.com/zeebo/blake3"
)

// Limits on what one op may hold. They bound memory and CPU spent on a
// single op received from the network (LOG-RULES R1, R2).
const (
	MaxOpSize      = 64 << 10 // bytes of one encoded op
	MaxParents     = 64       // parents named by one op
	MaxNameLen     = 255      // bytes of a folder or group name
	MaxNoteLen     = 1024     // bytes of a free-text note (access requests)
	MaxWitnesses   = 15       // devices in a declared witness set
	MaxInviteUses  = 1000     // max_uses of one invitation
	MaxLeaseSecs   = 8 * 3600 // longest lock lease (LOG-RULES R10)
	MaxPathLen     = 4096     // bytes of a path in a lock or link op
	maxNestedLevel = 8
)

// Domain-separation prefixes: every signature made by this package starts
// its message with one of these, so a signature made for one purpose can
// never be replayed as another.
const (
	domainOp          = "meshfold/crdt/op/v1\n"
	domainDeviceCert  = "meshfold/crdt/device-cert/v1\n"
	domainInviteProof = "meshfold/crdt/invite-proof/v1\n"
)

// Errors returned when an op cannot be decoded or fails its stateless checks.
var (
	ErrMalformed    = errors.New("crdt: malformed op")
	ErrTooLarge     = errors.New("crdt: op too large")
	ErrBadSignature = errors.New("crdt: bad signature")
	ErrWrongFolder  = errors.New("crdt: op belongs to another folder")
	ErrNotCanonical = errors.New("crdt: op encoding is not canonical")
)

// Signer signs messages with a private key. A crypto.PrivKey satisfies it.
type Signer interface {
	Sign(msg []byte) ([]byte, error)
	GetPublic() crypto.PubKey
}

// OpCodec is the multicodec of an op's CID: the op is CBOR.
const OpCodec = cid.DagCBOR

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   maxNestedLevel,
		MaxArrayElements:  MaxOpSize,
		MaxMapPairs:       MaxOpSize,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8DecodeInvalid, // peer IDs travel as CBOR text holding binary
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// wireOp is the encoded form of an op. Field numbers are part of the format.
type wireOp struct {
	Folder  []byte          `cbor:"1,keyasint,omitempty"`
	Kind    Kind            `cbor:"2,keyasint"`
	Author  []byte          `cbor:"3,keyasint"`
	Seq     uint64          `cbor:"4,keyasint"`
	Parents [][]byte        `cbor:"5,keyasint,omitempty"`
	Lamport uint64          `cbor:"6,keyasint"`
	Time    int64           `cbor:"7,keyasint,omitempty"`
	Body    cbor.RawMessage `cbor:"8,keyasint"`
	Sig     []byte          `cbor:"9,keyasint,omitempty"`
}

// Op is one signed entry of the log. Ops are immutable once signed; their
// identity is the CID of their encoding.
type Op struct {
	ID      cid.Cid   // CIDv1 (dag-cbor, BLAKE3-256) of Raw
	Folder  cid.Cid   // the folder (genesis CID); cid.Undef in the genesis op
	Kind    Kind      // what the op does
	Author  peer.ID   // the signing device
	Seq     uint64    // the author's op sequence: 1, 2, 3 ... (one per op)
	Parents []cid.Cid // the heads the author had seen, sorted by bytes
	Lamport uint64    // 1 + the highest parent Lamport time
	Time    int64     // advisory wall-clock hint (Unix ms); never decides authority
	Body    Body      // the kind-specific payload
	Raw     []byte    // the canonical signed encoding
}

func opCID(raw []byte) cid.Cid {
	sum := blake3.Sum256(raw) // same digest as mh.Sum(raw, mh.BLAKE3, 32), without its per-call hasher allocation
	h, err := mh.Encode(sum[:], mh.BLAKE3)
	if err != nil {
		panic(err) // a 32-byte digest always encodes
	}
	return cid.NewCidV1(OpCodec, h)
}

func sortCids(cs []cid.Cid) []cid.Cid {
	out := append([]cid.Cid(nil), cs...)
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Bytes(), out[j].Bytes()) < 0 })
	// dedupe
	w := 0
	for i, c := range out {
		if i > 0 && c.Equals(out[w-1]) {
			continue
		}
		out[w] = c
		w++
	}
	return out[:w]
}

// signOp builds, signs and encodes an op. parents are sorted and deduplicated.
func signOp(s Signer, folder cid.Cid, seq uint64, parents []cid.Cid, lamport uint64, time int64, body Body) (*Op, error) {
	author, err := peer.IDFromPublicKey(s.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("crdt: signer key: %w", err)
	}
	bodyRaw, err := encMode.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("crdt: encoding body: %w", err)
	}
	w := wireOp{Kind: body.Kind(), Author: []byte(author), Seq: seq, Lamport: lamport, Time: time, Body: bodyRaw}
	if folder.Defined() {
		w.Folder = folder.Bytes()
	}
	ps := sortCids(parents)
	for _, p := range ps {
		w.Parents = append(w.Parents, p.Bytes())
	}
	unsigned, err := encMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("crdt: encoding op: %w", err)
	}
	sig, err := s.Sign(append([]byte(domainOp), unsigned...))
	if err != nil {
		return nil, fmt.Errorf("crdt: signing op: %w", err)
	}
	w.Sig = sig
	raw, err := encMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("crdt: encoding op: %w", err)
	}
	if len(raw) > MaxOpSize {
		return nil, ErrTooLarge
	}
	return &Op{ID: opCID(raw), Folder: folder, Kind: w.Kind, Author: author, Seq: seq,
		Parents: ps, Lamport: lamport, Time: time, Body: body, Raw: raw}, nil
}

// DecodeOp parses and statically validates an encoded op: canonical CBOR,
// known kind, well-formed body, sorted unique parents, and a signature by
// the author device over the domain-separated unsigned encoding. It does
// not check the op against the log (parents, rights): Merge does.
func DecodeOp(raw []byte) (*Op, error) {
	if len(raw) > MaxOpSize {
		return nil, ErrTooLarge
	}
	var w wireOp
	if err := decMode.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	again, err := encMode.Marshal(w)
	if err != nil || !bytes.Equal(again, raw) {
		return nil, ErrNotCanonical
	}
	op := &Op{Kind: w.Kind, Seq: w.Seq, Lamport: w.Lamport, Time: w.Time, Raw: raw}
	if len(w.Folder) > 0 {
		c, err := cid.Cast(w.Folder)
		if err != nil {
			return nil, fmt.Errorf("%w: folder: %v", ErrMalformed, err)
		}
		op.Folder = c
	}
	author, err := peer.IDFromBytes(w.Author)
	if err != nil {
		return nil, fmt.Errorf("%w: author: %v", ErrMalformed, err)
	}
	op.Author = author
	if len(w.Parents) > MaxParents {
		return nil, fmt.Errorf("%w: %d parents", ErrMalformed, len(w.Parents))
	}
	for i, p := range w.Parents {
		if i > 0 && bytes.Compare(w.Parents[i-1], p) >= 0 {
			return nil, fmt.Errorf("%w: parents not sorted", ErrMalformed)
		}
		c, err := cid.Cast(p)
		if err != nil {
			return nil, fmt.Errorf("%w: parent: %v", ErrMalformed, err)
		}
		op.Parents = append(op.Parents, c)
	}
	if op.Seq == 0 || op.Lamport == 0 {
		return nil, fmt.Errorf("%w: zero seq or lamport", ErrMalformed)
	}
	if (op.Kind == KindGenesis) != !op.Folder.Defined() {
		return nil, fmt.Errorf("%w: folder field", ErrMalformed)
	}
	if op.Kind == KindGenesis && (len(op.Parents) != 0 || op.Seq != 1 || op.Lamport != 1) {
		return nil, fmt.Errorf("%w: genesis with parents", ErrMalformed)
	}
	if op.Kind != KindGenesis && len(op.Parents) == 0 {
		return nil, fmt.Errorf("%w: no parents", ErrMalformed)
	}
	body, err := decodeBody(w.Kind, w.Body)
	if err != nil {
		return nil, err
	}
	op.Body = body
	pub, err := author.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: author key: %v", ErrMalformed, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: author key is not Ed25519", ErrMalformed)
	}
	sig := w.Sig
	w.Sig = nil
	unsigned, err := encMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	ok, err := pub.Verify(append([]byte(domainOp), unsigned...), sig)
	if err != nil || !ok {
		return nil, ErrBadSignature
	}
	op.ID = opCID(raw)
	return op, nil
}

// userKey extracts and checks the Ed25519 key inlined in a user or device ID.
func idKey(id peer.ID) (crypto.PubKey, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, err
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, errors.New("not an Ed25519 key")
	}
	return pub, nil
}
