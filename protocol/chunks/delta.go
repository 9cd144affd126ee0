package chunks

// Delta exchange, protocol ID DeltaProtocolID: fetching a chunk as the byte
// ranges the client lacks, when it holds bytes that likely share most of the
// chunk's content (an older version of the same file). Chunk identity, the
// index and the plain exchange are untouched: this is only another way to
// obtain a chunk's bytes, and what it assembles is verified against the CID
// like any chunk.
//
//	client -> ManifestRequest{Folder, CIDs}   at most MaxManifestsPerRequest
//	server -> Manifest{CID, Code, Sizes, Hashes}   one per CID, in order: the
//	          chunk cut by store.PieceCuts, each piece's store.HashPiece
//	client -> RangeRequest{Folder, CID, Ranges}    the pieces it lacks
//	server -> RangeResponse{CID, Code, Data}       those bytes, concatenated
//
// Both kinds of request may be pipelined on one stream; answers come in
// request order. The server reads every chunk through its Source with the
// same read check as a chunk request (a file the requester may read, read
// back verified), computes manifests on demand and keeps nothing.
//
// The client (FetchDelta) cuts its local bytes (a Basis) the same way,
// takes every piece of the manifest it finds there (by hash, or at the place
// the chunk likely sits in the basis, its anchors), asks for the rest, then
// verifies the assembled chunk against its CID. Nothing the server says is
// trusted: a manifest or ranges that lie give a chunk that does not verify,
// and that chunk (with every later one) is handed back to be fetched whole
// with the plain exchange, which verifies and penalises as always.
//
// What it saves, `meshfold bench sync` (d), 1 MiB overwritten in the middle
// of a 256 MiB file: the two chunks the edit cuts into re-sent whole cost
// ~0.3 MB each at 256 KiB average chunks; as pieces, only the pieces the edit
// touches travel (~2 x 10 KB), plus ~0.7 KB of manifest per changed chunk.
// The piece sizes (store.MinPieceSize etc., 2/8/32 KiB) are explained and
// measured in store/piece.go (BenchmarkPieceSizes).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// DeltaProtocolID is the libp2p protocol of the delta exchange.
const DeltaProtocolID = "/meshfold/chunkdelta/1.0.0"

// Limits of the delta exchange.
const (
	// MaxManifestsPerRequest bounds the CIDs of one ManifestRequest.
	MaxManifestsPerRequest = 64
	// MaxPiecesPerChunk bounds the pieces of a manifest and the ranges of
	// a RangeRequest: a chunk of wire.MaxChunkSize cut in pieces of at
	// least store.MinPieceSize (the last may be shorter).
	MaxPiecesPerChunk = wire.MaxChunkSize/store.MinPieceSize + 1
	// MaxManifestRequestSize bounds a ManifestRequest payload.
	MaxManifestRequestSize = wire.MaxFolderIDLength + 8 + MaxManifestsPerRequest*(wire.MaxCIDLength+2)
	// MaxManifestSize bounds a Manifest payload: CID, code, a size (at
	// most 3 bytes of uvarint) and a hash per piece.
	MaxManifestSize = wire.MaxCIDLength + 16 + MaxPiecesPerChunk*(3+store.PieceHashSize)
	// MaxRangeRequestSize bounds a RangeRequest payload: a gap and a
	// length (at most 3 bytes of uvarint each) per range.
	MaxRangeRequestSize = wire.MaxFolderIDLength + wire.MaxCIDLength + 16 + MaxPiecesPerChunk*6
	// MaxDeltaPending bounds the requests FetchDelta has sent on one
	// stream and not yet had answered (it sends them in batches of this).
	MaxDeltaPending = 4 * MaxManifestsPerRequest
)

var (
	deltaServerLimits = wire.Limits{
		wire.TypeDeltaManifestRequest: MaxManifestRequestSize,
		wire.TypeDeltaRangeRequest:    MaxRangeRequestSize,
	}
	deltaClientLimits = wire.Limits{
		wire.TypeDeltaManifest: MaxManifestSize,
		wire.TypeDeltaRange:    MaxResponseSize,
		wire.TypeError:         wire.MaxErrorFrame,
	}
)

// ManifestRequest asks for the piece manifests of chunks.
type ManifestRequest struct {
	Folder string
	CIDs   []cid.Cid
}

// Marshal encodes r as a frame payload.
func (r ManifestRequest) Marshal() []byte { return Request(r).Marshal() }

// UnmarshalManifestRequest decodes a ManifestRequest payload: a folder and
// 1..MaxManifestsPerRequest CIDs.
func UnmarshalManifestRequest(b []byte) (ManifestRequest, error) {
	d := wire.NewDecoder(b)
	r := ManifestRequest{Folder: d.String(wire.MaxFolderIDLength, "folder"), CIDs: d.CIDs(MaxManifestsPerRequest, "cids")}
	if d.Err() == nil && (r.Folder == "" || len(r.CIDs) == 0) {
		d.Fail("empty folder or no CIDs")
	}
	if err := d.Finish(); err != nil {
		return ManifestRequest{}, err
	}
	return r, nil
}

// Manifest describes one chunk as pieces: Sizes[i] and Hashes[i] are the
// length and store.HashPiece of the i-th piece. With a Code other than
// CodeOK it has no pieces.
type Manifest struct {
	CID    cid.Cid
	Code   wire.Code
	Sizes  []uint32
	Hashes []store.PieceHash
}

// Marshal encodes m as a frame payload: CID, code, piece count, each size,
// then every hash as one byte string.
func (m Manifest) Marshal() []byte {
	var e wire.Encoder
	e.CID(m.CID)
	e.Byte(byte(m.Code))
	e.Uvarint(uint64(len(m.Sizes)))
	for _, s := range m.Sizes {
		e.Uvarint(uint64(s))
	}
	hashes := make([]byte, 0, len(m.Hashes)*store.PieceHashSize)
	for _, h := range m.Hashes {
		hashes = append(hashes, h[:]...)
	}
	e.Bytes(hashes)
	return e.Out()
}

// UnmarshalManifest decodes a Manifest payload: at most MaxPiecesPerChunk
// pieces of 1..store.MaxPieceSize bytes adding up to at most
// wire.MaxChunkSize, one hash each, and none with an error code.
func UnmarshalManifest(b []byte) (Manifest, error) {
	d := wire.NewDecoder(b)
	m := Manifest{CID: d.CID(), Code: wire.Code(d.Byte())}
	n := d.Count(MaxPiecesPerChunk, "pieces")
	total := 0
	if n > 0 {
		m.Sizes = make([]uint32, 0, n)
	}
	for range n {
		s := d.Uvarint()
		if d.Err() != nil {
			break
		}
		if s == 0 || s > store.MaxPieceSize {
			d.Fail(fmt.Sprintf("piece of %d bytes", s))
			break
		}
		total += int(s)
		m.Sizes = append(m.Sizes, uint32(s))
	}
	hashes := d.Bytes(MaxPiecesPerChunk*store.PieceHashSize, "hashes")
	switch {
	case d.Err() != nil:
	case len(hashes) != len(m.Sizes)*store.PieceHashSize:
		d.Fail("hashes do not match the pieces")
	case total > wire.MaxChunkSize:
		d.Fail("pieces larger than a chunk")
	case m.Code != wire.CodeOK && n != 0:
		d.Fail("pieces with an error code")
	}
	if err := d.Finish(); err != nil {
		return Manifest{}, err
	}
	if n > 0 {
		m.Hashes = make([]store.PieceHash, n)
		for i := range m.Hashes {
			copy(m.Hashes[i][:], hashes[i*store.PieceHashSize:])
		}
	}
	return m, nil
}

// NewManifest cuts chunk data into pieces and hashes each.
func NewManifest(c cid.Cid, data []byte) Manifest {
	m := Manifest{CID: c}
	store.PieceCuts(data, func(off, n int) {
		m.Sizes = append(m.Sizes, uint32(n))
		m.Hashes = append(m.Hashes, store.HashPiece(data[off:off+n]))
	})
	return m
}

// Range is a byte range of a chunk.
type Range struct {
	Off, Len uint32
}

// RangeRequest asks for byte ranges of one chunk: sorted, not overlapping
// nor touching (adjacent ranges are one range), each at least one byte.
type RangeRequest struct {
	Folder string
	CID    cid.Cid
	Ranges []Range
}

// Marshal encodes r as a frame payload; each range is its gap from the end
// of the previous one and its length.
func (r RangeRequest) Marshal() []byte {
	var e wire.Encoder
	e.String(r.Folder)
	e.CID(r.CID)
	e.Uvarint(uint64(len(r.Ranges)))
	var end uint32
	for _, rg := range r.Ranges {
		e.Uvarint(uint64(rg.Off - end))
		e.Uvarint(uint64(rg.Len))
		end = rg.Off + rg.Len
	}
	return e.Out()
}

// Total is the number of bytes r asks for.
func (r RangeRequest) Total() int {
	n := 0
	for _, rg := range r.Ranges {
		n += int(rg.Len)
	}
	return n
}

// UnmarshalRangeRequest decodes a RangeRequest payload: a folder, a CID and
// 1..MaxPiecesPerChunk ranges in canonical form within wire.MaxChunkSize.
func UnmarshalRangeRequest(b []byte) (RangeRequest, error) {
	d := wire.NewDecoder(b)
	r := RangeRequest{Folder: d.String(wire.MaxFolderIDLength, "folder"), CID: d.CID()}
	n := d.Count(MaxPiecesPerChunk, "ranges")
	var end uint64
	for i := range n {
		gap, length := d.Uvarint(), d.Uvarint()
		if d.Err() != nil {
			break
		}
		if (gap == 0 && i > 0) || length == 0 || gap > wire.MaxChunkSize || length > wire.MaxChunkSize || end+gap+length > wire.MaxChunkSize {
			d.Fail("range out of order, empty or beyond a chunk")
			break
		}
		r.Ranges = append(r.Ranges, Range{Off: uint32(end + gap), Len: uint32(length)})
		end += gap + length
	}
	if d.Err() == nil && (r.Folder == "" || n == 0) {
		d.Fail("empty folder or no ranges")
	}
	if err := d.Finish(); err != nil {
		return RangeRequest{}, err
	}
	return r, nil
}

// RangeResponse answers a RangeRequest: the requested bytes in order, only
// with CodeOK.
type RangeResponse struct {
	CID  cid.Cid
	Code wire.Code
	Data []byte
}

// Marshal encodes r as a frame payload (the same layout as Response).
func (r RangeResponse) Marshal() []byte { return Response(r).Marshal() }

// UnmarshalRangeResponse decodes a RangeResponse payload. Data aliases b.
func UnmarshalRangeResponse(b []byte) (RangeResponse, error) {
	r, err := UnmarshalResponse(b)
	return RangeResponse(r), err
}

// DeltaServer answers the delta exchange.
type DeltaServer struct {
	src Source
	acc Access
}

// NewDeltaServer returns a server reading chunks through src, serving what
// acc allows (the same Source and Access as the chunk Server).
func NewDeltaServer(src Source, acc Access) *DeltaServer { return &DeltaServer{src: src, acc: acc} }

// Register makes h answer DeltaProtocolID with s.
func (s *DeltaServer) Register(h host.Host) { wire.Handle(h, DeltaProtocolID, 0, s.Serve) }

// Serve answers requests from rw, one at a time in order, until the client
// closes its side (nil), ctx ends, or the exchange fails (an error).
func (s *DeltaServer) Serve(ctx context.Context, rw io.ReadWriter, remote peer.ID) error {
	defer wire.Bind(ctx, rw)()
	d, hasDeadline := rw.(splitDeadliner)
	for {
		if hasDeadline {
			_ = d.SetReadDeadline(time.Now().Add(IdleTimeout))
		}
		f, err := wire.ReadFrame(rw, deltaServerLimits)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delta request from %s: %w", remote, err)
		}
		if hasDeadline {
			_ = d.SetWriteDeadline(time.Now().Add(IdleTimeout))
		}
		if err := s.answer(ctx, rw, remote, f); err != nil {
			return err
		}
	}
}

// answer answers one request frame.
func (s *DeltaServer) answer(ctx context.Context, w io.Writer, remote peer.ID, f wire.Frame) error {
	bad := func(err error) error {
		_ = wire.WriteError(w, fmt.Errorf("%w: %w", wire.ErrBadRequest, err))
		return fmt.Errorf("delta request from %s: %w", remote, err)
	}
	switch f.Type {
	case wire.TypeDeltaManifestRequest:
		req, err := UnmarshalManifestRequest(f.Payload)
		if err != nil {
			return bad(err)
		}
		allowed := func(path string) bool { return s.acc.CanRead(req.Folder, remote, path) }
		for _, c := range req.CIDs {
			if err := ctx.Err(); err != nil {
				return err
			}
			data, err := s.src.ReadChunk(req.Folder, c, allowed)
			m := Manifest{CID: c, Code: responseCode(data, err)}
			if m.Code == wire.CodeOK {
				m = NewManifest(c, data)
			}
			if err := wire.WriteFrame(w, wire.TypeDeltaManifest, m.Marshal()); err != nil {
				return fmt.Errorf("writing manifest: %w", err)
			}
		}
	case wire.TypeDeltaRangeRequest:
		req, err := UnmarshalRangeRequest(f.Payload)
		if err != nil {
			return bad(err)
		}
		allowed := func(path string) bool { return s.acc.CanRead(req.Folder, remote, path) }
		data, err := s.src.ReadChunk(req.Folder, req.CID, allowed)
		resp := RangeResponse{CID: req.CID, Code: responseCode(data, err)}
		if resp.Code == wire.CodeOK {
			last := req.Ranges[len(req.Ranges)-1]
			if int(last.Off)+int(last.Len) > len(data) {
				resp.Code = wire.CodeBadRequest
			} else {
				resp.Data = make([]byte, 0, req.Total())
				for _, rg := range req.Ranges {
					resp.Data = append(resp.Data, data[rg.Off:rg.Off+rg.Len]...)
				}
			}
		}
		if err := wire.WriteFrame(w, wire.TypeDeltaRange, resp.Marshal()); err != nil {
			return fmt.Errorf("writing ranges: %w", err)
		}
	}
	return nil
}

// responseCode is the code answering a chunk read back as data, err (as the
// chunk Server answers it).
func responseCode(data []byte, err error) wire.Code {
	switch {
	case err == nil && len(data) > wire.MaxChunkSize:
		return wire.CodeInternal
	case errors.Is(err, store.ErrChunkMismatch):
		return wire.CodeChanged
	}
	return wire.CodeOf(err)
}

// Basis is local bytes a wanted chunk likely shares pieces with (the
// region of an older version of its file where the chunk sits), cut into
// pieces the way the server cuts chunks and indexed by hash. The bytes must
// be verified ones (read back against their own CIDs); even so the client
// trusts nothing it takes from them until the assembled chunk verifies.
type Basis struct {
	Data   []byte
	pieces map[store.PieceHash]Range
}

// NewBasis cuts data into pieces and indexes them.
func NewBasis(data []byte) *Basis {
	b := &Basis{Data: data, pieces: make(map[store.PieceHash]Range, len(data)/store.AvgPieceSize+1)}
	store.PieceCuts(data, func(off, n int) {
		b.pieces[store.HashPiece(data[off:off+n])] = Range{Off: uint32(off), Len: uint32(n)}
	})
	return b
}

// find returns where in b a piece of size n and hash h is: by hash among
// b's own pieces, else at each anchor a (b.Data[a+at:]), at being the
// piece's offset in its chunk.
func (b *Basis) find(h store.PieceHash, n, at int, anchors []int) (int, bool) {
	if r, ok := b.pieces[h]; ok && int(r.Len) == n {
		return int(r.Off), true
	}
	for i, a := range anchors {
		if slices.Contains(anchors[:i], a) {
			continue
		}
		if p := a + at; p >= 0 && p+n <= len(b.Data) && store.HashPiece(b.Data[p:p+n]) == h {
			return p, true
		}
	}
	return 0, false
}

// DeltaWant is a chunk to fetch by delta.
type DeltaWant struct {
	CID  cid.Cid
	Size int // its size, from the file version's chunk list
	// Basis holds bytes it likely shares; several wants may share one.
	Basis *Basis
	// Anchors are where in Basis.Data the chunk's first byte would be if
	// the bytes around it did not move (e.g. aligned on the unchanged
	// chunk before it, and on the one after it); may be negative or
	// beyond the basis.
	Anchors []int
}

// DeltaStats says what FetchDelta did.
type DeltaStats struct {
	Chunks    int   // chunks delivered, assembled and verified
	Reused    int64 // their bytes taken from the basis
	Fetched   int64 // their bytes received as ranges
	Manifests int   // manifests received
	// PeerErr is why the peer's answers stopped being used, if they did:
	// a broken exchange, or (wrapping ErrBadPeer) pieces that did not
	// assemble into the chunk.
	PeerErr error
}

// deltaPlan is one chunk being assembled.
type deltaPlan struct {
	w    DeltaWant
	data []byte  // assembled so far
	req  []Range // what is still missing
}

// FetchDelta fetches the wanted chunks over rw, a DeltaProtocolID stream
// (which it does not close), and passes each, assembled and verified
// against its CID, to deliver. It returns the wanted CIDs it did not
// deliver: the server lacked them, could not serve them, they had no piece
// in common with their basis worth a second round trip (all missing), or
// the peer broke the exchange or lied (Stats.PeerErr); fetch those whole.
// The error is non-nil only when deliver failed or ctx ended. After an
// error or a PeerErr a request may still be being written: reset rw.
func FetchDelta(ctx context.Context, rw io.ReadWriter, folder string, wants []DeltaWant, deliver func(cid.Cid, []byte) error) (rest []cid.Cid, st DeltaStats, err error) {
	defer wire.Bind(ctx, rw)()
	for len(wants) > 0 {
		batch := wants[:min(len(wants), MaxDeltaPending)]
		wants = wants[len(batch):]
		r, err := fetchDeltaBatch(rw, folder, batch, deliver, &st)
		rest = append(rest, r...)
		if err != nil {
			return rest, st, err
		}
		if ctx.Err() != nil {
			return rest, st, ctx.Err()
		}
		if st.PeerErr != nil {
			for _, w := range wants {
				rest = append(rest, w.CID)
			}
			return rest, st, nil
		}
	}
	return rest, st, nil
}

// deltaFailed ends a batch on a peer error: every chunk not delivered is
// handed back.
func deltaFailed(st *DeltaStats, err error, plans []*deltaPlan) []cid.Cid {
	st.PeerErr = err
	rest := make([]cid.Cid, 0, len(plans))
	for _, p := range plans {
		rest = append(rest, p.w.CID)
	}
	return rest
}

// fetchDeltaBatch runs both round trips for at most MaxDeltaPending wants.
func fetchDeltaBatch(rw io.ReadWriter, folder string, wants []DeltaWant, deliver func(cid.Cid, []byte) error, st *DeltaStats) ([]cid.Cid, error) {
	// Round 1: manifests. Requests are written from a goroutine so that a
	// server blocked writing answers never blocks us writing requests.
	sendErr := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < len(wants) && err == nil; i += MaxManifestsPerRequest {
			part := wants[i:min(len(wants), i+MaxManifestsPerRequest)]
			cids := make([]cid.Cid, len(part))
			for j, w := range part {
				cids[j] = w.CID
			}
			err = wire.WriteFrame(rw, wire.TypeDeltaManifestRequest, ManifestRequest{Folder: folder, CIDs: cids}.Marshal())
		}
		sendErr <- err
	}()
	var rest []cid.Cid
	var ranged []*deltaPlan
	for i, w := range wants {
		m, err := recvDelta(rw, wire.TypeDeltaManifest, UnmarshalManifest)
		if err == nil && !m.CID.Equals(w.CID) {
			err = fmt.Errorf("manifest for %s out of order: %w", m.CID, wire.ErrProtocol)
		}
		if err != nil {
			plans := make([]*deltaPlan, 0, len(wants)-i)
			for _, w := range wants[i:] {
				plans = append(plans, &deltaPlan{w: w})
			}
			return append(rest, deltaFailed(st, err, append(ranged, plans...))...), nil
		}
		st.Manifests++
		p, ok := planDelta(w, m)
		switch {
		case !ok:
			rest = append(rest, w.CID)
		case len(p.req) == 0:
			ok, err := finishDelta(p, nil, deliver, st)
			if err != nil {
				return rest, err
			}
			if !ok {
				return append(rest, deltaFailed(st, badAssembly(w.CID), append(ranged, plansOf(wants[i:])...))...), nil
			}
		default:
			ranged = append(ranged, p)
		}
	}
	if err := <-sendErr; err != nil {
		return append(rest, deltaFailed(st, err, ranged)...), nil
	}
	if len(ranged) == 0 {
		return rest, nil
	}

	// Round 2: the missing ranges, one request per chunk.
	go func() {
		var err error
		for _, p := range ranged {
			if err == nil {
				err = wire.WriteFrame(rw, wire.TypeDeltaRangeRequest, RangeRequest{Folder: folder, CID: p.w.CID, Ranges: p.req}.Marshal())
			}
		}
		sendErr <- err
	}()
	for i, p := range ranged {
		r, err := recvDelta(rw, wire.TypeDeltaRange, UnmarshalRangeResponse)
		switch {
		case err != nil:
		case !r.CID.Equals(p.w.CID):
			err = fmt.Errorf("ranges for %s out of order: %w", r.CID, wire.ErrProtocol)
		case r.Code != wire.CodeOK:
			rest = append(rest, p.w.CID)
			continue
		}
		if err != nil {
			return append(rest, deltaFailed(st, err, ranged[i:])...), nil
		}
		ok, err := finishDelta(p, r.Data, deliver, st)
		if err != nil {
			return rest, err
		}
		if !ok {
			return append(rest, deltaFailed(st, badAssembly(p.w.CID), ranged[i:])...), nil
		}
	}
	if err := <-sendErr; err != nil && st.PeerErr == nil {
		st.PeerErr = err // every answer arrived anyway
	}
	return rest, nil
}

func plansOf(wants []DeltaWant) []*deltaPlan {
	out := make([]*deltaPlan, len(wants))
	for i, w := range wants {
		out[i] = &deltaPlan{w: w}
	}
	return out
}

func badAssembly(c cid.Cid) error {
	return fmt.Errorf("pieces of chunk %s do not assemble into it: %w", c, ErrBadPeer)
}

// recvDelta reads the next answer, of type t, decoded by dec.
func recvDelta[T any](r io.Reader, t wire.Type, dec func([]byte) (T, error)) (T, error) {
	var zero T
	f, err := wire.ReadFrame(r, deltaClientLimits)
	switch {
	case err != nil:
		return zero, err
	case f.Type == wire.TypeError:
		e, err := wire.UnmarshalErrorMsg(f.Payload)
		if err != nil {
			return zero, err
		}
		return zero, e.Err()
	case f.Type != t:
		return zero, fmt.Errorf("answer of type %#x, want %#x: %w", f.Type, t, wire.ErrProtocol)
	}
	v, err := dec(f.Payload)
	if err != nil {
		return zero, fmt.Errorf("delta answer: %w", err)
	}
	return v, nil
}

// planDelta lays m's pieces out: the ones found in the basis are copied in
// now, the others become ranges to ask for (adjacent ones merged). It fails
// (ok false) when the server has no manifest, the manifest does not add up
// to the chunk's size, or no piece was found (fetching the whole chunk
// costs the same bytes and one round trip less).
func planDelta(w DeltaWant, m Manifest) (p *deltaPlan, ok bool) {
	if m.Code != wire.CodeOK {
		return nil, false
	}
	total := 0
	for _, s := range m.Sizes {
		total += int(s)
	}
	if total != w.Size || w.Size == 0 {
		return nil, false
	}
	p = &deltaPlan{w: w, data: make([]byte, w.Size)}
	at, found := 0, 0
	for i, s := range m.Sizes {
		n := int(s)
		if w.Basis != nil {
			if src, ok := w.Basis.find(m.Hashes[i], n, at, w.Anchors); ok {
				copy(p.data[at:at+n], w.Basis.Data[src:src+n])
				found += n
				at += n
				continue
			}
		}
		if k := len(p.req) - 1; k >= 0 && int(p.req[k].Off+p.req[k].Len) == at {
			p.req[k].Len += uint32(n)
		} else {
			p.req = append(p.req, Range{Off: uint32(at), Len: uint32(n)})
		}
		at += n
	}
	if found == 0 {
		return nil, false
	}
	return p, true
}

// finishDelta fills p's missing ranges with data (their bytes in order),
// verifies the chunk and delivers it. ok is false when it does not verify
// (or data is not what was asked): the peer lied.
func finishDelta(p *deltaPlan, data []byte, deliver func(cid.Cid, []byte) error, st *DeltaStats) (ok bool, err error) {
	need := 0
	for _, r := range p.req {
		need += int(r.Len)
	}
	if len(data) != need {
		return false, nil
	}
	for _, r := range p.req {
		copy(p.data[r.Off:r.Off+r.Len], data[:r.Len])
		data = data[r.Len:]
	}
	if store.VerifyChunk(p.w.CID, p.data) != nil {
		return false, nil
	}
	if err := deliver(p.w.CID, p.data); err != nil {
		return true, err
	}
	st.Chunks++
	st.Fetched += int64(need)
	st.Reused += int64(len(p.data) - need)
	return true, nil
}
