// Package wire is the framing and encoding layer every meshfold protocol
// shares: length-prefixed frames with a message type and version, the
// canonical binary encoding of message fields, the wire form of store's
// version vectors, the sentinel errors and their wire codes, and the size
// limits.
//
// # Frames
//
// A frame is
//
//	type    1 byte   (Type: which message this is; unique across all protocols)
//	version 1 byte   (the message's encoding version; today always Version1)
//	length  uvarint  (payload length in bytes, minimal encoding)
//	payload length bytes
//
// ReadFrame checks the declared length against the limit for that message
// type before it allocates anything, so a peer cannot make us allocate more
// than the named limit (see CVE-2021-21404, a relay crashed by a negative
// length field: our lengths are unsigned, overflowing or non-minimal
// varints are rejected, and every length is bounded).
//
// # Encoding
//
// Payloads use a hand-written canonical binary encoding (Encoder/Decoder):
// unsigned integers as minimal uvarints, signed integers as minimal zig-zag
// varints, booleans as one byte 0 or 1, strings and byte strings as a uvarint
// length and the bytes, CIDs as a byte string holding the CID's binary form,
// lists as a uvarint count and the elements. Fields appear in a fixed order
// and there are no optional fields, so every value has exactly one encoding;
// decoders reject non-minimal varints, out-of-range booleans, trailing bytes
// and (where the message says so) unsorted or duplicate list elements. The
// same bytes are what signatures cover.
//
// # Errors
//
// errors.go holds every sentinel error of the protocol layer and the one
// table mapping the sentinels a server may report to their wire codes.
//
// Who may import it: the protocol sub-packages and their tests. It imports
// store (for VersionVector) and nothing else from meshfold.
package wire
