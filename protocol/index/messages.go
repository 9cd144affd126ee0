package index

import (
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// ProtocolID is the libp2p protocol of index sync.
const ProtocolID = "/meshfold/index/1.0.0"

// Limits of the exchange.
const (
	// MaxEntriesPerBatch bounds the entries in one Batch message.
	MaxEntriesPerBatch = 1000
	// BatchTarget is the size past which a server starts a new batch.
	BatchTarget = 4 << 20
	// MaxBatchSize bounds a Batch payload: a batch under BatchTarget plus one
	// entry of the largest size. Frames this large are read incrementally
	// (wire.ReadFrame), never allocated up front.
	MaxBatchSize = BatchTarget + MaxEntrySize
	// MaxEntriesPerRequest bounds how many versions one request makes the
	// server examine; Request.Limit is capped to it.
	MaxEntriesPerRequest = 10000
	// MaxRequestSize and MaxEndSize bound the small messages.
	MaxRequestSize = 256
	MaxEndSize     = 32
)

// clientLimits and serverLimits are what each side reads.
var (
	serverLimits = wire.Limits{wire.TypeIndexRequest: MaxRequestSize}
	clientLimits = wire.Limits{
		wire.TypeIndexBatch: MaxBatchSize,
		wire.TypeIndexEnd:   MaxEndSize,
		wire.TypeError:      wire.MaxErrorFrame,
	}
)

// Request asks for the versions authored by Device with Seq > FromSeq (the
// client holds Device's changes up to FromSeq).
type Request struct {
	Folder  string
	Device  store.DeviceID
	FromSeq uint64
	Limit   uint32 // at most this many versions examined; 0 or over MaxEntriesPerRequest means MaxEntriesPerRequest
}

// Marshal encodes r as a frame payload.
func (r Request) Marshal() []byte {
	var e wire.Encoder
	e.String(r.Folder)
	e.String(string(r.Device))
	e.Uvarint(r.FromSeq)
	e.Uvarint(uint64(r.Limit))
	return e.Out()
}

// UnmarshalRequest decodes a Request payload.
func UnmarshalRequest(b []byte) (Request, error) {
	d := wire.NewDecoder(b)
	r := Request{
		Folder:  d.String(wire.MaxFolderIDLength, "folder"),
		Device:  store.DeviceID(d.Device("device")),
		FromSeq: d.Uvarint(),
	}
	limit := d.Uvarint()
	if limit > MaxEntriesPerRequest {
		d.Fail("limit over MaxEntriesPerRequest")
	}
	r.Limit = uint32(limit)
	if r.Folder == "" {
		d.Fail("empty folder")
	}
	return r, d.Finish()
}

func (r Request) limit() int {
	if r.Limit == 0 || r.Limit > MaxEntriesPerRequest {
		return MaxEntriesPerRequest
	}
	return int(r.Limit)
}

// Batch is a run of signed versions.
type Batch struct{ Entries []Entry }

// Marshal encodes b as a frame payload.
func (b Batch) Marshal() []byte {
	var e wire.Encoder
	e.Uvarint(uint64(len(b.Entries)))
	for _, en := range b.Entries {
		appendEntry(&e, FromWire(en))
	}
	return e.Out()
}

// UnmarshalBatch decodes a Batch payload, validating every entry's fields
// (not signatures).
func UnmarshalBatch(b []byte) (Batch, error) {
	d := wire.NewDecoder(b)
	n := d.Count(MaxEntriesPerBatch, "entries")
	out := Batch{}
	for range n {
		fi := decodeEntry(d)
		if d.Err() != nil {
			break
		}
		out.Entries = append(out.Entries, ToWire(fi))
	}
	if err := d.Finish(); err != nil {
		return Batch{}, err
	}
	return out, nil
}

// End closes a response.
type End struct {
	Through uint64 // highest sequence the server examined; FromSeq if none
	More    bool   // the server stopped at the limit: ask again from Through
}

// Marshal encodes e as a frame payload.
func (e End) Marshal() []byte {
	var enc wire.Encoder
	enc.Uvarint(e.Through)
	enc.Bool(e.More)
	return enc.Out()
}

// UnmarshalEnd decodes an End payload.
func UnmarshalEnd(b []byte) (End, error) {
	d := wire.NewDecoder(b)
	e := End{Through: d.Uvarint(), More: d.Bool()}
	return e, d.Finish()
}
