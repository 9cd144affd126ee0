package chunks

import (
	"github.com/ipfs/go-cid"
	"github.com/meshfold/meshfold/protocol/wire"
)

// ProtocolID is the libp2p protocol of chunk exchange.
const ProtocolID = "/meshfold/chunks/1.0.0"

// Limits of the exchange.
const (
	// MaxChunksPerRequest bounds the CIDs of one Request.
	MaxChunksPerRequest = 64
	// MaxRequestSize bounds a Request payload.
	MaxRequestSize = wire.MaxFolderIDLength + 8 + MaxChunksPerRequest*(wire.MaxCIDLength+2)
	// MaxResponseSize bounds a Response payload: a chunk plus its header.
	MaxResponseSize = wire.MaxChunkSize + wire.MaxCIDLength + 16
	// MaxPendingPerStream bounds the CIDs a Client may have requested and
	// not yet received on one stream; Send refuses more.
	MaxPendingPerStream = 16 * MaxChunksPerRequest
)

var (
	serverLimits = wire.Limits{wire.TypeChunkRequest: MaxRequestSize}
	clientLimits = wire.Limits{wire.TypeChunkResponse: MaxResponseSize, wire.TypeError: wire.MaxErrorFrame}
)

// Request asks for chunks of a folder.
type Request struct {
	Folder string
	CIDs   []cid.Cid
}

// Marshal encodes r as a frame payload.
func (r Request) Marshal() []byte {
	var e wire.Encoder
	e.String(r.Folder)
	e.CIDs(r.CIDs)
	return e.Out()
}

// UnmarshalRequest decodes a Request payload; it must name a folder and at
// least one CID.
func UnmarshalRequest(b []byte) (Request, error) {
	d := wire.NewDecoder(b)
	r := Request{Folder: d.String(wire.MaxFolderIDLength, "folder"), CIDs: d.CIDs(MaxChunksPerRequest, "cids")}
	if d.Err() == nil && (r.Folder == "" || len(r.CIDs) == 0) {
		d.Fail("empty folder or no CIDs")
	}
	if err := d.Finish(); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Response answers one CID of a Request.
type Response struct {
	CID  cid.Cid
	Code wire.Code // CodeOK, CodeNotFound, CodeNoAccess, CodeChanged, ...
	Data []byte    // the chunk, only with CodeOK
}

// Marshal encodes r as a frame payload.
func (r Response) Marshal() []byte {
	var e wire.Encoder
	e.CID(r.CID)
	e.Byte(byte(r.Code))
	e.Bytes(r.Data)
	return e.Out()
}

// UnmarshalResponse decodes a Response payload. Data aliases b.
func UnmarshalResponse(b []byte) (Response, error) {
	d := wire.NewDecoder(b)
	r := Response{CID: d.CID(), Code: wire.Code(d.Byte()), Data: d.Bytes(wire.MaxChunkSize, "chunk")}
	if d.Err() == nil && r.Code != wire.CodeOK && len(r.Data) != 0 {
		d.Fail("data with an error code")
	}
	if err := d.Finish(); err != nil {
		return Response{}, err
	}
	return r, nil
}
