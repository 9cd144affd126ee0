package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Type identifies a message kind. Values are unique across every meshfold
// protocol so that a frame is never mistaken for another protocol's, and are
// part of the wire format: never renumber.
type Type uint8

// The message types.
const (
	TypeError Type = 0x01 // Error: a server-reported error (any protocol)

	TypeFolderState Type = 0x10 // state.FolderState, signed (pubsub payload)

	TypeLogHeads Type = 0x20 // logsync.Heads
	TypeLogWant  Type = 0x21 // logsync.Want
	TypeLogOps   Type = 0x22 // logsync.Ops

	TypeIndexRequest Type = 0x30 // index.Request
	TypeIndexBatch   Type = 0x31 // index.Batch
	TypeIndexEnd     Type = 0x32 // index.End

	TypeChunkRequest  Type = 0x40 // chunks.Request
	TypeChunkResponse Type = 0x41 // chunks.Response

	TypeDeltaManifestRequest Type = 0x42 // chunks.ManifestRequest
	TypeDeltaManifest        Type = 0x43 // chunks.Manifest
	TypeDeltaRangeRequest    Type = 0x44 // chunks.RangeRequest
	TypeDeltaRange           Type = 0x45 // chunks.RangeResponse
)

// Version1 is the only encoding version so far of every message type.
const Version1 uint8 = 1

// maxFrameHeader is type + version + the longest uvarint.
const maxFrameHeader = 2 + binary.MaxVarintLen64

// Limits maps each message type a reader accepts to the largest payload it
// accepts for it. A type absent from Limits is rejected with ErrUnknownType.
type Limits map[Type]int

// Frame is one decoded frame.
type Frame struct {
	Type    Type
	Version uint8
	Payload []byte
}

// AppendFrame appends the frame (t, Version1, payload) to dst.
func AppendFrame(dst []byte, t Type, payload []byte) []byte {
	dst = append(dst, byte(t), Version1)
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// WriteFrame writes the frame (t, Version1, payload) to w in one Write call.
func WriteFrame(w io.Writer, t Type, payload []byte) error {
	buf := AppendFrame(make([]byte, 0, maxFrameHeader+len(payload)), t, payload)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("writing frame type %#x: %w", t, err)
	}
	return nil
}

// ReadFrame reads one frame from r. It returns io.EOF if r ends cleanly before
// the frame's first byte, ErrTruncated if it ends inside a frame, ErrUnknownType
// for types missing from limits, ErrUnknownVersion for versions other than
// Version1, ErrFrameLength for a bad length field and ErrFrameTooLarge when the
// declared length exceeds the type's limit; the payload buffer is allocated
// only after the length has passed that check.
func ReadFrame(r io.Reader, limits Limits) (Frame, error) {
	return ReadFrameInto(r, limits, nil)
}

// ReadFrameInto is ReadFrame reading the payload into buf when it fits in
// buf's capacity (the payload then aliases buf), so a reader can reuse its
// buffers.
func ReadFrameInto(r io.Reader, limits Limits, buf []byte) (Frame, error) {
	var hdr [2]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, readErr(err)
	}
	f := Frame{Type: Type(hdr[0]), Version: hdr[1]}
	limit, ok := limits[f.Type]
	if !ok {
		return Frame{}, fmt.Errorf("type %#x: %w", hdr[0], ErrUnknownType)
	}
	if f.Version != Version1 {
		return Frame{}, fmt.Errorf("type %#x version %d: %w", hdr[0], hdr[1], ErrUnknownVersion)
	}
	n, err := readUvarint(r)
	if err != nil {
		return Frame{}, err
	}
	if n > uint64(limit) {
		return Frame{}, fmt.Errorf("type %#x: %d bytes, limit %d: %w", hdr[0], n, limit, ErrFrameTooLarge)
	}
	if uint64(cap(buf)) >= n {
		f.Payload = buf[:n]
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			return Frame{}, readErr(err)
		}
		return f, nil
	}
	if f.Payload, err = readPayload(r, int(n)); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// eagerAlloc is the largest payload allocated in one go before its bytes
// arrive (a chunk response fits). Longer payloads grow as data arrives, so a
// peer that declares a large (but allowed) length and sends nothing costs us
// at most this much.
const eagerAlloc = MaxChunkSize + 4<<10

func readPayload(r io.Reader, n int) ([]byte, error) {
	if n <= eagerAlloc {
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, readErr(err)
		}
		return p, nil
	}
	p := make([]byte, 0, eagerAlloc)
	for len(p) < n {
		step := min(n-len(p), max(len(p), eagerAlloc))
		p = slices.Grow(p, step)
		if _, err := io.ReadFull(r, p[len(p):len(p)+step]); err != nil {
			return nil, readErr(err)
		}
		p = p[:len(p)+step]
	}
	return p, nil
}

// ReadFrameBytes decodes exactly one frame from b (a pubsub message body).
func ReadFrameBytes(b []byte, limits Limits) (Frame, error) {
	r := &sliceReader{b: b}
	f, err := ReadFrame(r, limits)
	if errors.Is(err, io.EOF) {
		return Frame{}, ErrTruncated
	}
	if err != nil {
		return Frame{}, err
	}
	if len(r.b) != 0 {
		return Frame{}, fmt.Errorf("%d bytes after the frame: %w", len(r.b), ErrMalformed)
	}
	return f, nil
}

// readUvarint reads a minimal uvarint of at most 64 bits one byte at a time.
func readUvarint(r io.Reader) (uint64, error) {
	var (
		b [1]byte
		x uint64
		s uint
	)
	for i := range binary.MaxVarintLen64 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, readErr(err)
		}
		if b[0] < 0x80 {
			if i == binary.MaxVarintLen64-1 && b[0] > 1 {
				return 0, fmt.Errorf("length overflows 64 bits: %w", ErrFrameLength)
			}
			if i > 0 && b[0] == 0 {
				return 0, fmt.Errorf("non-minimal length: %w", ErrFrameLength)
			}
			return x | uint64(b[0])<<s, nil
		}
		x |= uint64(b[0]&0x7f) << s
		s += 7
	}
	return 0, fmt.Errorf("length overflows 64 bits: %w", ErrFrameLength)
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return fmt.Errorf("reading frame: %w", err)
}

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
