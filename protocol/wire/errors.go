package wire

import (
	"errors"
	"fmt"
)

// Framing and decoding errors. A connection that hits one of these should be
// closed: the peer is broken or hostile.
var (
	// ErrFrameTooLarge: a frame declared a payload longer than the limit for
	// its message type.
	ErrFrameTooLarge = errors.New("frame larger than its limit")
	// ErrFrameLength: a frame's length field is not a valid minimal uvarint
	// (overflow, more than 64 bits, or a non-minimal encoding).
	ErrFrameLength = errors.New("invalid frame length")
	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("truncated frame")
	// ErrUnknownType: a frame carries a message type this reader does not accept.
	ErrUnknownType = errors.New("unknown message type")
	// ErrUnknownVersion: a frame carries a message version we cannot decode.
	ErrUnknownVersion = errors.New("unknown message version")
	// ErrMalformed: a payload does not decode as its message type (bad
	// varint, field over its limit, bad CID, trailing bytes, non-canonical).
	ErrMalformed = errors.New("malformed message")
	// ErrBadSignature: a signed message's signature does not verify.
	ErrBadSignature = errors.New("bad signature")
	// ErrProtocol: a well-formed message arrived where the protocol does not
	// allow it (wrong order, answer to nothing, wrong folder).
	ErrProtocol = errors.New("protocol violation")
)

// Errors a server reports to a client inside an Error frame or a per-item
// status code. They cross the wire as Code values; use errors.Is on the
// client side.
var (
	// ErrNotFound: the server does not have the requested item.
	ErrNotFound = errors.New("not found")
	// ErrNoAccess: the requester may not read the requested item, or is not
	// a member of the folder.
	ErrNoAccess = errors.New("no access")
	// ErrChanged: the item was there but changed on disk while being read
	// back (the chunk no longer hashes to its CID).
	ErrChanged = errors.New("changed on disk")
	// ErrBadRequest: the request is well-formed but not acceptable (over a
	// limit, unknown folder).
	ErrBadRequest = errors.New("bad request")
	// ErrInternal: the server failed for a reason of its own.
	ErrInternal = errors.New("internal server error")
)

// Code is the wire form of a server-reported error. Values are part of the
// wire format: never renumber, only append.
type Code uint8

// The wire codes.
const (
	CodeOK         Code = 0
	CodeNotFound   Code = 1
	CodeNoAccess   Code = 2
	CodeChanged    Code = 3
	CodeBadRequest Code = 4
	CodeInternal   Code = 5
)

var codeErrs = [...]error{
	CodeOK:         nil,
	CodeNotFound:   ErrNotFound,
	CodeNoAccess:   ErrNoAccess,
	CodeChanged:    ErrChanged,
	CodeBadRequest: ErrBadRequest,
	CodeInternal:   ErrInternal,
}

// Valid reports whether c is a code this version knows.
func (c Code) Valid() bool { return int(c) < len(codeErrs) }

// Err returns the sentinel for c: nil for CodeOK, ErrInternal for codes this
// version does not know (a newer peer's code is still an error).
func (c Code) Err() error {
	if !c.Valid() {
		return fmt.Errorf("unknown error code %d: %w", c, ErrInternal)
	}
	return codeErrs[c]
}

// CodeOf maps an error to the code a server sends for it: the sentinel it
// wraps, or CodeInternal for anything else (whose text is not sent).
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	for c, e := range codeErrs {
		if e != nil && errors.Is(err, e) {
			return Code(c)
		}
	}
	return CodeInternal
}

func malformed(what string) error { return fmt.Errorf("%s: %w", what, ErrMalformed) }
