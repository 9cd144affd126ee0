package wire

import (
	"bytes"
	"errors"
	"testing"
)

// ReadFrameInto reads into the caller's buffer when the payload fits (and
// then aliases it), allocates when it does not, and fails as ReadFrame does.
func TestReadFrameInto(t *testing.T) {
	payload := bytes.Repeat([]byte("ab"), 6)
	in := AppendFrame(nil, TypeLogWant, payload)
	buf := make([]byte, 0, 16)
	f, err := ReadFrameInto(bytes.NewReader(in), testLimits, buf)
	if err != nil || !bytes.Equal(f.Payload, payload) || &f.Payload[0] != &buf[:1][0] {
		t.Fatalf("fitting payload: %v, %q, aliases the buffer: %v", err, f.Payload, err == nil && &f.Payload[0] == &buf[:1][0])
	}
	small := make([]byte, 0, 4)
	f, err = ReadFrameInto(bytes.NewReader(in), testLimits, small)
	if err != nil || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("payload larger than the buffer: %v, %q", err, f.Payload)
	}
	if _, err := ReadFrameInto(bytes.NewReader(in[:len(in)-1]), testLimits, buf); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated frame: %v, want ErrTruncated", err)
	}
	if _, err := ReadFrameInto(bytes.NewReader(AppendFrame(nil, TypeLogWant, make([]byte, 17))), testLimits, make([]byte, 0, 64)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame over its limit read into a large buffer: %v, want ErrFrameTooLarge", err)
	}
}

// ReadFrameInto decodes exactly what ReadFrame does, whatever the buffer.
func FuzzReadFrameInto(f *testing.F) {
	f.Add(AppendFrame(nil, TypeLogWant, []byte("hello")), 8)
	f.Add([]byte{0x21, 1, 0x85, 0x00}, 0)
	f.Add(AppendFrame(nil, TypeError, ErrorMsg{Code: CodeNotFound, Message: "x"}.Marshal()), 64)
	f.Fuzz(func(t *testing.T, in []byte, size int) {
		buf := make([]byte, 0, min(max(size, 0), 1<<16))
		a, errA := ReadFrame(bytes.NewReader(in), testLimits)
		b, errB := ReadFrameInto(bytes.NewReader(in), testLimits, buf)
		if (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()) {
			t.Fatalf("errors differ: %v vs %v", errA, errB)
		}
		if a.Type != b.Type || a.Version != b.Version || !bytes.Equal(a.Payload, b.Payload) {
			t.Fatalf("frames differ")
		}
	})
}
