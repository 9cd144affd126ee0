package wire

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// Encoder appends fields in the canonical encoding (see the package doc).
// The zero value is ready to use.
type Encoder struct{ b []byte }

// Out returns the encoded bytes.
func (e *Encoder) Out() []byte { return e.b }

// Uvarint appends an unsigned integer.
func (e *Encoder) Uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

// Varint appends a signed integer (zig-zag).
func (e *Encoder) Varint(v int64) { e.b = binary.AppendVarint(e.b, v) }

// Byte appends one byte.
func (e *Encoder) Byte(v byte) { e.b = append(e.b, v) }

// Bool appends 0 or 1.
func (e *Encoder) Bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// Raw appends already-encoded bytes.
func (e *Encoder) Raw(b []byte) { e.b = append(e.b, b...) }

// Bytes appends a length-prefixed byte string.
func (e *Encoder) Bytes(v []byte) {
	e.Uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}

// String appends a length-prefixed string.
func (e *Encoder) String(v string) {
	e.Uvarint(uint64(len(v)))
	e.b = append(e.b, v...)
}

// CID appends a CID's binary form as a byte string.
func (e *Encoder) CID(c cid.Cid) { e.Bytes(c.Bytes()) }

// CIDs appends a counted list of CIDs.
func (e *Encoder) CIDs(cs []cid.Cid) {
	e.Uvarint(uint64(len(cs)))
	for _, c := range cs {
		e.CID(c)
	}
}

// Decoder reads fields in the canonical encoding. Errors are sticky: after
// the first one every read returns a zero value and Finish reports it, so
// decoders read all fields and check once.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder decodes b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err is the first error met, wrapping ErrMalformed.
func (d *Decoder) Err() error { return d.err }

// Fail records a malformed-input error about what, unless one is recorded.
func (d *Decoder) Fail(what string) {
	if d.err == nil {
		d.err = malformed(what)
	}
}

// Finish returns the first error, or ErrMalformed if bytes remain.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = malformed(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	return d.err
}

// Uvarint reads a minimal unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != uvarintLen(v) {
		d.Fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Varint reads a minimal zig-zag varint.
func (d *Decoder) Varint() int64 {
	u := d.Uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.Fail("missing byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// Bool reads a byte that must be 0 or 1.
func (d *Decoder) Bool() bool {
	switch d.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.Fail("bool not 0 or 1")
	return false
}

// Bytes reads a byte string of at most max bytes. The result aliases the
// input; copy it if the input buffer is reused.
func (d *Decoder) Bytes(max int, what string) []byte {
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.Fail(fmt.Sprintf("%s: %d bytes, limit %d", what, n, max))
		return nil
	}
	if n > uint64(len(d.b)) {
		d.Fail(what + ": truncated")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// String reads a valid UTF-8 string of at most max bytes.
func (d *Decoder) String(max int, what string) string {
	b := d.Bytes(max, what)
	if !utf8.Valid(b) {
		d.Fail(what + ": not UTF-8")
		return ""
	}
	return string(b)
}

// Count reads a list length of at most max elements. Every element takes at
// least one byte, so a count larger than the remaining input is rejected
// before the caller allocates for it.
func (d *Decoder) Count(max int, what string) int {
	n := d.Uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) {
		d.Fail(fmt.Sprintf("%s: %d items, limit %d", what, n, max))
		return 0
	}
	if n > uint64(len(d.b)) {
		d.Fail(what + ": truncated")
		return 0
	}
	return int(n)
}

// CID reads a CID in its canonical binary form.
func (d *Decoder) CID() cid.Cid {
	b := d.Bytes(MaxCIDLength, "cid")
	if d.err != nil {
		return cid.Undef
	}
	n, c, err := cid.CidFromBytes(b)
	if err != nil || n != len(b) || !slices.Equal(c.Bytes(), b) {
		d.Fail("bad cid")
		return cid.Undef
	}
	return c
}

// CIDs reads a counted list of at most max CIDs.
func (d *Decoder) CIDs(max int, what string) []cid.Cid {
	n := d.Count(max, what)
	if n == 0 {
		return nil
	}
	out := make([]cid.Cid, 0, n)
	for range n {
		c := d.CID()
		if d.err != nil {
			return nil
		}
		out = append(out, c)
	}
	return out
}

// SortedCIDs reads a list of CIDs that must be strictly increasing in their
// binary form (sorted, no duplicates): the canonical form of a set.
func (d *Decoder) SortedCIDs(max int, what string) []cid.Cid {
	cs := d.CIDs(max, what)
	for i := 1; i < len(cs); i++ {
		if cs[i-1].KeyString() >= cs[i].KeyString() {
			d.Fail(what + ": not sorted or duplicated")
			return nil
		}
	}
	return cs
}

// SortCIDs returns a sorted copy of cs without duplicates: the canonical form
// of a CID set, as SortedCIDs expects it.
func SortCIDs(cs []cid.Cid) []cid.Cid {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b cid.Cid) int {
		switch ka, kb := a.KeyString(), b.KeyString(); {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(out, cid.Cid.Equals)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
