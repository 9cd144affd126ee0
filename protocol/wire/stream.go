package wire

import (
	"context"
	"fmt"
	"io"
	"time"
)

// deadliner is what network.Stream and net.Conn offer.
type deadliner interface{ SetDeadline(time.Time) error }

// Bind ties rw to ctx: rw gets ctx's deadline (if it has one and rw supports
// deadlines), and when ctx ends rw's deadline is moved to the past and rw is
// reset (if it has Reset, as libp2p streams do) or closed (if it is an
// io.Closer), so blocked reads and writes return even on streams whose
// deadlines do nothing (mocknet). Call the returned stop when done with rw.
func Bind(ctx context.Context, rw any) (stop func()) {
	d, hasDeadline := rw.(deadliner)
	if dl, ok := ctx.Deadline(); ok && hasDeadline {
		_ = d.SetDeadline(dl)
	}
	unblock := context.AfterFunc(ctx, func() {
		if hasDeadline {
			_ = d.SetDeadline(time.Unix(1, 0))
		}
		if r, ok := rw.(interface{ Reset() error }); ok {
			_ = r.Reset()
		} else if c, ok := rw.(io.Closer); ok {
			_ = c.Close()
		}
	})
	return func() { unblock() }
}

// ExpectFrame reads one frame and returns its payload if it has type want.
// An Error frame is returned as the error it carries; any other type is
// ErrProtocol. limits must accept TypeError and want.
func ExpectFrame(r io.Reader, limits Limits, want Type) ([]byte, error) {
	f, err := ReadFrame(r, limits)
	if err != nil {
		return nil, err
	}
	return f.Payload, f.expect(want)
}

func (f Frame) expect(want Type) error {
	switch f.Type {
	case want:
		return nil
	case TypeError:
		e, err := UnmarshalErrorMsg(f.Payload)
		if err != nil {
			return err
		}
		return e.Err()
	}
	return errProtocolType(f.Type, want)
}

func errProtocolType(got, want Type) error {
	return fmt.Errorf("got message type %#x, want %#x: %w", got, want, ErrProtocol)
}
