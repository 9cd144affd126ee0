package wire

import (
	"encoding/binary"
	"fmt"
	"io"
)

// ErrorMsg is the payload of a TypeError frame: a server's answer when it
// cannot serve a request at all. Message is for logs only.
type ErrorMsg struct {
	Code    Code
	Message string
}

// MaxErrorFrame bounds an Error frame's payload.
const MaxErrorFrame = 1 + binary.MaxVarintLen16 + MaxErrorMessage

// Marshal encodes e.
func (e ErrorMsg) Marshal() []byte {
	var enc Encoder
	enc.Byte(byte(e.Code))
	msg := e.Message
	if len(msg) > MaxErrorMessage {
		msg = msg[:MaxErrorMessage]
	}
	enc.String(msg)
	return enc.Out()
}

// UnmarshalErrorMsg decodes an Error payload.
func UnmarshalErrorMsg(b []byte) (ErrorMsg, error) {
	d := NewDecoder(b)
	e := ErrorMsg{Code: Code(d.Byte()), Message: d.String(MaxErrorMessage, "error message")}
	if err := d.Finish(); err != nil {
		return ErrorMsg{}, err
	}
	if e.Code == CodeOK {
		return ErrorMsg{}, malformed("error frame with code OK")
	}
	return e, nil
}

// Err turns a received ErrorMsg into an error wrapping its sentinel.
func (e ErrorMsg) Err() error {
	return fmt.Errorf("peer reported %q: %w", e.Message, e.Code.Err())
}

// WriteError sends err as an Error frame: its code and, for sentinels the
// peer knows, its text (internal errors are sent without detail).
func WriteError(w io.Writer, err error) error {
	c := CodeOf(err)
	msg := c.Err().Error()
	if c != CodeInternal {
		msg = err.Error()
	}
	return WriteFrame(w, TypeError, ErrorMsg{Code: c, Message: msg}.Marshal())
}
