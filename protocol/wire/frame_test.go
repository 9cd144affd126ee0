package wire

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"runtime"
	"testing"

	"github.com/meshfold/meshfold/protocol/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors in testdata/")

var testLimits = Limits{TypeError: MaxErrorFrame, TypeLogWant: 16}

func TestReadFrame(t *testing.T) {
	good := AppendFrame(nil, TypeLogWant, []byte("hello"))
	tests := []struct {
		name    string
		in      []byte
		want    Frame
		wantErr error
	}{
		{"good", good, Frame{Type: TypeLogWant, Version: Version1, Payload: []byte("hello")}, nil},
		{"empty payload", []byte{0x21, 1, 0}, Frame{Type: TypeLogWant, Version: Version1, Payload: []byte{}}, nil},
		{"clean EOF", nil, Frame{}, io.EOF},
		{"EOF after type", []byte{0x21}, Frame{}, ErrTruncated},
		{"EOF in length", []byte{0x21, 1}, Frame{}, ErrTruncated},
		{"EOF in continued length", []byte{0x21, 1, 0x80}, Frame{}, ErrTruncated},
		{"EOF in payload", good[:len(good)-1], Frame{}, ErrTruncated},
		{"at limit", AppendFrame(nil, TypeLogWant, make([]byte, 16)), Frame{Type: TypeLogWant, Version: 1, Payload: make([]byte, 16)}, nil},
		{"over limit", AppendFrame(nil, TypeLogWant, make([]byte, 17)), Frame{}, ErrFrameTooLarge},
		// A "negative" length as a signed reader would see it: 2^63+..., all
		// continuation bits set: far over any limit.
		{"huge length", []byte{0x21, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, Frame{}, ErrFrameTooLarge},
		{"length over 64 bits", []byte{0x21, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, Frame{}, ErrFrameLength},
		{"length 10th byte too big", []byte{0x21, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, Frame{}, ErrFrameLength},
		{"non-minimal length", []byte{0x21, 1, 0x85, 0x00, 'h', 'e', 'l', 'l', 'o'}, Frame{}, ErrFrameLength},
		{"unknown type", []byte{0x7f, 1, 0}, Frame{}, ErrUnknownType},
		{"type not accepted here", AppendFrame(nil, TypeChunkResponse, nil), Frame{}, ErrUnknownType},
		{"unknown version", []byte{0x21, 2, 0}, Frame{}, ErrUnknownVersion},
		{"version zero", []byte{0x21, 0, 0}, Frame{}, ErrUnknownVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tt.in), testLimits)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got.Type != tt.want.Type || got.Version != tt.want.Version || !bytes.Equal(got.Payload, tt.want.Payload)) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadFrameSequence(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range []string{"a", "", "bcd"} {
		if err := WriteFrame(&buf, TypeLogWant, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"a", "", "bcd"} {
		f, err := ReadFrame(&buf, testLimits)
		if err != nil || string(f.Payload) != want {
			t.Fatalf("got %q, %v; want %q", f.Payload, err, want)
		}
	}
	if _, err := ReadFrame(&buf, testLimits); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

// A frame declaring a huge length must be refused before anything of that
// size is allocated, even when the type's limit is generous.
func TestReadFrameDoesNotAllocateDeclaredLength(t *testing.T) {
	in := []byte{0x21, 1}
	in = append(in, 0x80, 0x80, 0x80, 0x80, 0x04) // 1 GiB
	limits := Limits{TypeLogWant: 1 << 20}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bytes.NewReader(in), limits)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
		t.Fatalf("allocated %d bytes for a refused frame", d)
	}
}

// A large allowed length is not allocated up front: a peer that declares
// 64 MiB and sends 10 bytes costs about eagerAlloc, not 64 MiB.
func TestReadFrameGrowsLargePayloads(t *testing.T) {
	limits := Limits{TypeLogWant: 64 << 20}
	in := append([]byte{0x21, 1, 0x80, 0x80, 0x80, 0x20}, make([]byte, 10)...) // 64 MiB declared
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bytes.NewReader(in), limits)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 2*eagerAlloc {
		t.Fatalf("allocated %d bytes for 10 received", d)
	}
	// A complete large payload still arrives intact.
	big := make([]byte, 3*eagerAlloc+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	f, err := ReadFrame(bytes.NewReader(AppendFrame(nil, TypeLogWant, big)), limits)
	if err != nil || !bytes.Equal(f.Payload, big) {
		t.Fatalf("large payload: %v", err)
	}
}

func TestReadFrameBytes(t *testing.T) {
	good := AppendFrame(nil, TypeLogWant, []byte("x"))
	if _, err := ReadFrameBytes(good, testLimits); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFrameBytes(append(good, 0), testLimits); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := ReadFrameBytes(nil, testLimits); !errors.Is(err, ErrTruncated) {
		t.Fatalf("empty: %v", err)
	}
}

func TestErrorFrameGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteError(&buf, ErrNoAccess); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "error_noaccess", buf.Bytes(), *update)
	f, err := ReadFrame(bytes.NewReader(golden.Read(t, "error_noaccess")), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	e, err := UnmarshalErrorMsg(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(e.Err(), ErrNoAccess) {
		t.Fatalf("decoded %v", e.Err())
	}
}

func TestCodes(t *testing.T) {
	for c := CodeOK; c.Valid(); c++ {
		if got := CodeOf(c.Err()); got != c {
			t.Errorf("CodeOf(%v) = %d, want %d", c.Err(), got, c)
		}
	}
	if CodeOf(errors.New("disk on fire")) != CodeInternal {
		t.Error("foreign error not internal")
	}
	if !errors.Is(Code(200).Err(), ErrInternal) {
		t.Error("unknown code not internal")
	}
	if _, err := UnmarshalErrorMsg([]byte{0, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("OK code in error frame accepted: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, TypeLogWant, []byte("hello")))
	f.Add([]byte{0x21, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x21, 1, 0x85, 0x00})
	f.Add(AppendFrame(nil, TypeError, ErrorMsg{Code: CodeNotFound, Message: "x"}.Marshal()))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := ReadFrame(r, testLimits)
			if err != nil {
				return
			}
			if len(fr.Payload) > testLimits[fr.Type] {
				t.Fatalf("payload %d over limit", len(fr.Payload))
			}
			// Re-encoding a decoded frame gives the same bytes (canonical).
			again, err := ReadFrameBytes(AppendFrame(nil, fr.Type, fr.Payload), testLimits)
			if err != nil || !bytes.Equal(again.Payload, fr.Payload) {
				t.Fatalf("round trip: %v", err)
			}
			if fr.Type == TypeError {
				if e, err := UnmarshalErrorMsg(fr.Payload); err == nil && !bytes.Equal(e.Marshal(), fr.Payload) {
					t.Fatalf("error frame not canonical")
				}
			}
		}
	})
}
