// Package links is the share-link download protocol: someone holding a link
// token (Token) asks any device that holds the linked file for it, proving
// the link's secret and, if one is set, its password; the device answers
// with the file's chunk list and its chunks, or with a typed refusal.
//
// One stream per download:
//
//	client -> Request
//	server -> Refusal                       (and the stream ends), or
//	server -> Meta, then one Data per chunk, in file order
//
// The client verifies every chunk against its CID before writing it.
package links

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/meshfold/meshfold/protocol/wire"
)

// ProtocolID is the libp2p protocol of share-link downloads.
const ProtocolID = "/meshfold/links/1.0.0"

// Frame types of the protocol.
const (
	TypeRequest wire.Type = 0x60
	TypeRefusal wire.Type = 0x61
	TypeMeta    wire.Type = 0x62
	TypeData    wire.Type = 0x63
)

// Limits of the protocol.
const (
	// MaxLinkIDLength bounds a link ID (the binary CID of its CreateLink op).
	MaxLinkIDLength = wire.MaxCIDLength
	// SecretLength is the length of a link's secret.
	SecretLength = 16
	// MaxPasswordLength bounds a link password.
	MaxPasswordLength = 1024
	// MaxNameLength bounds the file name a server announces.
	MaxNameLength = 255
	// MaxMessageLength bounds the human text of a Refusal.
	MaxMessageLength = 256
	// MaxFileChunks bounds the chunks of one linked file (64 GiB at the
	// average chunk size).
	MaxFileChunks = 1 << 18
	// MaxFileSize bounds the size a server may announce.
	MaxFileSize = int64(MaxFileChunks) * wire.MaxChunkSize

	maxRequestSize = wire.MaxFolderIDLength + MaxLinkIDLength + SecretLength + MaxPasswordLength + 16
	maxRefusalSize = MaxMessageLength + 8
	maxMetaSize    = MaxNameLength + 32 + MaxFileChunks*(wire.MaxCIDLength+8)
	maxDataSize    = wire.MaxChunkSize + wire.MaxCIDLength + 16
)

var (
	serverLimits = wire.Limits{TypeRequest: maxRequestSize}
	clientLimits = wire.Limits{TypeRefusal: maxRefusalSize, TypeMeta: maxMetaSize, TypeData: maxDataSize,
		wire.TypeError: wire.MaxErrorFrame}
)

// Request asks for the file behind a link.
type Request struct {
	Folder   string // the folder ID (string form of its genesis CID)
	Link     []byte // the link ID (binary CID of its CreateLink op)
	Secret   []byte // the link's secret, from the token
	Password string // "" when the link has none
}

// Marshal encodes r as a frame payload.
func (r Request) Marshal() []byte {
	var e wire.Encoder
	e.String(r.Folder)
	e.Bytes(r.Link)
	e.Bytes(r.Secret)
	e.String(r.Password)
	return e.Out()
}

// UnmarshalRequest decodes a Request payload.
func UnmarshalRequest(b []byte) (Request, error) {
	d := wire.NewDecoder(b)
	r := Request{
		Folder:   d.String(wire.MaxFolderIDLength, "folder"),
		Link:     d.Bytes(MaxLinkIDLength, "link"),
		Secret:   d.Bytes(SecretLength, "secret"),
		Password: d.String(MaxPasswordLength, "password"),
	}
	if d.Err() == nil && (r.Folder == "" || len(r.Link) == 0 || len(r.Secret) != SecretLength) {
		d.Fail("empty field or short secret")
	}
	if err := d.Finish(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Reason says why a download was refused. Values are part of the wire
// format: never renumber, only append.
type Reason uint8

// The refusal reasons.
const (
	ReasonUnknown     Reason = 1 // no such link here (or the token is not for this device's folders)
	ReasonRevoked     Reason = 2
	ReasonSuspended   Reason = 3
	ReasonExpired     Reason = 4
	ReasonUsedUp      Reason = 5 // the download limit is reached
	ReasonPassword    Reason = 6 // wrong or missing password (or secret)
	ReasonRateLimited Reason = 7 // too many wrong passwords for this link lately
	ReasonUnavailable Reason = 8 // this device does not hold the file (now): try another
	ReasonBadRequest  Reason = 9
	maxReason                = ReasonBadRequest
)

// The refusals as errors, for errors.Is.
var (
	ErrUnknownLink = errors.New("the link does not exist")
	ErrRevoked     = errors.New("the link was revoked")
	ErrSuspended   = errors.New("the link is suspended")
	ErrExpired     = errors.New("the link has expired")
	ErrUsedUp      = errors.New("the link's download limit is reached")
	ErrPassword    = errors.New("wrong password")
	ErrRateLimited = errors.New("too many wrong passwords for this link; try again later")
	ErrUnavailable = errors.New("the device does not hold the file right now")
	ErrBadRequest  = errors.New("bad request")
)

var reasonErrs = map[Reason]error{
	ReasonUnknown: ErrUnknownLink, ReasonRevoked: ErrRevoked, ReasonSuspended: ErrSuspended, ReasonExpired: ErrExpired,
	ReasonUsedUp: ErrUsedUp, ReasonPassword: ErrPassword, ReasonRateLimited: ErrRateLimited,
	ReasonUnavailable: ErrUnavailable, ReasonBadRequest: ErrBadRequest,
}

// Err is the sentinel of a reason.
func (r Reason) Err() error {
	if e, ok := reasonErrs[r]; ok {
		return e
	}
	return fmt.Errorf("refused (reason %d)", r)
}

// ReasonOf maps an error to its reason: the sentinel it wraps, or
// ReasonUnavailable for anything else (the client then tries another device).
func ReasonOf(err error) Reason {
	for r := Reason(1); r <= maxReason; r++ {
		if errors.Is(err, reasonErrs[r]) {
			return r
		}
	}
	return ReasonUnavailable
}

// Refusal is the server's "no".
type Refusal struct {
	Reason  Reason
	Message string // optional detail for humans
}

// Marshal encodes r as a frame payload.
func (r Refusal) Marshal() []byte {
	var e wire.Encoder
	e.Byte(byte(r.Reason))
	e.String(r.Message)
	return e.Out()
}

// UnmarshalRefusal decodes a Refusal payload.
func UnmarshalRefusal(b []byte) (Refusal, error) {
	d := wire.NewDecoder(b)
	r := Refusal{Reason: Reason(d.Byte()), Message: d.String(MaxMessageLength, "message")}
	if d.Err() == nil && (r.Reason == 0 || r.Reason > maxReason) {
		d.Fail("unknown reason")
	}
	if err := d.Finish(); err != nil {
		return Refusal{}, err
	}
	return r, nil
}

// Err is the refusal as an error wrapping its reason's sentinel.
func (r Refusal) Err() error {
	if r.Message == "" {
		return r.Reason.Err()
	}
	return fmt.Errorf("%w (%s)", r.Reason.Err(), r.Message)
}

// Chunk is one chunk of the file.
type Chunk struct {
	CID  cid.Cid
	Size uint32
}

// Meta describes the file about to be sent.
type Meta struct {
	Name    string // base name, for the default destination
	Size    int64
	ModTime int64 // Unix ns
	Chunks  []Chunk
}

// Marshal encodes m as a frame payload.
func (m Meta) Marshal() []byte {
	var e wire.Encoder
	e.String(m.Name)
	e.Uvarint(uint64(m.Size))
	e.Varint(m.ModTime)
	e.Uvarint(uint64(len(m.Chunks)))
	for _, c := range m.Chunks {
		e.CID(c.CID)
		e.Uvarint(uint64(c.Size))
	}
	return e.Out()
}

// UnmarshalMeta decodes a Meta payload; the chunk sizes must add up to Size
// and none may exceed the chunk limit.
func UnmarshalMeta(b []byte) (Meta, error) {
	d := wire.NewDecoder(b)
	m := Meta{Name: d.String(MaxNameLength, "name")}
	size := d.Uvarint()
	m.ModTime = d.Varint()
	n := d.Count(MaxFileChunks, "chunks")
	var sum uint64
	for range n {
		c := Chunk{CID: d.CID()}
		s := d.Uvarint()
		if d.Err() != nil {
			break
		}
		if s == 0 || s > wire.MaxChunkSize {
			d.Fail("chunk size")
			break
		}
		c.Size = uint32(s)
		sum += s
		m.Chunks = append(m.Chunks, c)
	}
	if d.Err() == nil && (size > uint64(MaxFileSize) || sum != size) {
		d.Fail("chunk sizes do not add up to the file size")
	}
	if d.Err() == nil && !validName(m.Name) {
		d.Fail("file name")
	}
	if err := d.Finish(); err != nil {
		return Meta{}, err
	}
	m.Size = int64(size)
	return m, nil
}

// validName: a plain base name, no directory parts.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == '\\' || r == 0 {
			return false
		}
	}
	return true
}

// Data carries one chunk.
type Data struct {
	CID  cid.Cid
	Data []byte
}

// Marshal encodes d as a frame payload.
func (x Data) Marshal() []byte {
	var e wire.Encoder
	e.CID(x.CID)
	e.Bytes(x.Data)
	return e.Out()
}

// UnmarshalData decodes a Data payload. Data aliases b.
func UnmarshalData(b []byte) (Data, error) {
	d := wire.NewDecoder(b)
	x := Data{CID: d.CID(), Data: d.Bytes(wire.MaxChunkSize, "chunk")}
	if err := d.Finish(); err != nil {
		return Data{}, err
	}
	return x, nil
}
