package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/store"
)

func testPeer(t testing.TB, seed byte) peer.ID {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCodecRoundTrip(t *testing.T) {
	a, b := testPeer(t, 1), testPeer(t, 2)
	vv := store.VersionVector{}.Update(store.DeviceID(a), 3).Update(store.DeviceID(b), 9)
	c := store.ChunkCID([]byte("x"))
	var e Encoder
	e.Uvarint(300)
	e.Varint(-5)
	e.Bool(true)
	e.String("héllo")
	e.CID(c)
	e.Vector(vv)
	e.Bytes([]byte(a))
	d := NewDecoder(e.Out())
	if d.Uvarint() != 300 || d.Varint() != -5 || !d.Bool() || d.String(10, "s") != "héllo" || !d.CID().Equals(c) {
		t.Fatalf("scalar round trip failed: %v", d.Err())
	}
	if got := d.Vector("vv"); got.Compare(vv) != store.Equal {
		t.Fatalf("vector %v", got)
	}
	if d.Device("dev") != a {
		t.Fatal("device")
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestDecoderRejects(t *testing.T) {
	a, b := testPeer(t, 1), testPeer(t, 2)
	if a > b {
		a, b = b, a
	}
	unsorted := func() []byte {
		var e Encoder
		e.Uvarint(2)
		e.String(string(b))
		e.Uvarint(1)
		e.String(string(a))
		e.Uvarint(1)
		return e.Out()
	}()
	zero := func() []byte {
		var e Encoder
		e.Uvarint(1)
		e.String(string(a))
		e.Uvarint(0)
		return e.Out()
	}()
	notPeer := func() []byte {
		var e Encoder
		e.Uvarint(1)
		e.String("not a peer id")
		e.Uvarint(1)
		return e.Out()
	}()
	c := store.ChunkCID([]byte("x"))
	var cidEnc Encoder
	cidEnc.CID(c)
	tests := []struct {
		name string
		in   []byte
		read func(d *Decoder)
	}{
		{"non-minimal uvarint", []byte{0x81, 0x00}, func(d *Decoder) { d.Uvarint() }},
		{"empty uvarint", nil, func(d *Decoder) { d.Uvarint() }},
		{"bool 2", []byte{2}, func(d *Decoder) { d.Bool() }},
		{"string over limit", []byte{3, 'a', 'b', 'c'}, func(d *Decoder) { d.String(2, "s") }},
		{"string truncated", []byte{3, 'a'}, func(d *Decoder) { d.String(5, "s") }},
		{"string not utf8", []byte{1, 0xff}, func(d *Decoder) { d.String(5, "s") }},
		{"count over remaining", []byte{5, 1}, func(d *Decoder) { d.Count(10, "n") }},
		{"count over limit", []byte{3, 1, 1, 1}, func(d *Decoder) { d.Count(2, "n") }},
		{"cid garbage", []byte{3, 1, 2, 3}, func(d *Decoder) { d.CID() }},
		{"cid with trailing", append(append([]byte{byte(len(c.Bytes()) + 1)}, c.Bytes()...), 0), func(d *Decoder) { d.CID() }},
		{"sorted cids duplicated", append(append([]byte{2}, cidEnc.Out()...), cidEnc.Out()...), func(d *Decoder) { d.SortedCIDs(5, "c") }},
		{"vector unsorted", unsorted, func(d *Decoder) { d.Vector("v") }},
		{"vector zero", zero, func(d *Decoder) { d.Vector("v") }},
		{"vector bad device", notPeer, func(d *Decoder) { d.Vector("v") }},
		{"trailing bytes", []byte{1, 2}, func(d *Decoder) { d.Uvarint() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(tt.in)
			tt.read(d)
			if err := d.Finish(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestSortCIDs(t *testing.T) {
	x, y := store.ChunkCID([]byte("x")), store.ChunkCID([]byte("y"))
	got := SortCIDs([]cid.Cid{y, x, y})
	if len(got) != 2 || got[0].KeyString() >= got[1].KeyString() {
		t.Fatalf("%v", got)
	}
}

func FuzzDecoder(f *testing.F) {
	a := testPeer(f, 1)
	var e Encoder
	e.Vector(store.VersionVector{}.Update(store.DeviceID(a), 3))
	e.CIDs([]cid.Cid{store.ChunkCID([]byte("x"))})
	f.Add(e.Out())
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		v := d.Vector("v")
		cs := d.SortedCIDs(MaxLogHeads, "c")
		if d.Finish() != nil {
			return
		}
		var e Encoder
		e.Vector(v)
		e.CIDs(cs)
		if !bytes.Equal(e.Out(), in) {
			t.Fatalf("not canonical: %x -> %x", in, e.Out())
		}
	})
}
