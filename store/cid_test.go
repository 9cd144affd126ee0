package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	mhcore "github.com/multiformats/go-multihash/core"
	"github.com/zeebo/blake3"
	lukeblake3 "lukechampine.com/blake3"
)

// blake3Vectors are BLAKE3-256 known answers. The official test vectors
// (BLAKE3 repository, test_vectors/test_vectors.json) use the input
// 0, 1, ..., 250, 0, 1, ... of the given length; "abc" is the usual extra.
var blake3Vectors = []struct {
	name  string
	input []byte
	hex   string
}{
	{"empty", nil, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{"official len 1", officialInput(1), "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	{"abc", []byte("abc"), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"},
}

func officialInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func TestChunkCIDKnownAnswers(t *testing.T) {
	for _, v := range blake3Vectors {
		t.Run(v.name, func(t *testing.T) {
			want, err := hex.DecodeString(v.hex)
			if err != nil {
				t.Fatal(err)
			}
			// Both implementations must give the published digest.
			if got := blake3.Sum256(v.input); !bytes.Equal(got[:], want) {
				t.Fatalf("zeebo BLAKE3 = %x, want %x", got, want)
			}
			if got := lukeblake3.Sum256(v.input); !bytes.Equal(got[:], want) {
				t.Fatalf("lukechampine BLAKE3 = %x, want %x", got, want)
			}
			// The CID is 0x01 (v1) 0x55 (raw) 0x1e (blake3) 0x20 (32 bytes) digest.
			wantCID := append([]byte{0x01, 0x55, 0x1e, 0x20}, want...)
			c := ChunkCID(v.input)
			if !bytes.Equal(c.Bytes(), wantCID) {
				t.Fatalf("ChunkCID = %x, want %x", c.Bytes(), wantCID)
			}
			if err := CheckChunkCID(c); err != nil {
				t.Fatal(err)
			}
			parsed, err := cid.Decode(c.String())
			if err != nil || !parsed.Equals(c) {
				t.Fatalf("CID %s does not round-trip: %v", c, err)
			}
		})
	}
}

// TestMultihashBLAKE3Registration: after this package's init, go-multihash
// hashes BLAKE3 with zeebo and gives lukechampine's digests for every size
// it accepted before.
func TestMultihashBLAKE3Registration(t *testing.T) {
	h, err := mhcore.GetVariableHasher(mh.BLAKE3, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*blake3.Hasher); !ok {
		t.Fatalf("go-multihash BLAKE3 hasher is %T, want *blake3.Hasher (zeebo)", h)
	}
	inputs := [][]byte{nil, {0}, officialInput(1023), officialInput(1024), officialInput(1025), genBytes(t, 12, 1<<20+7)}
	for _, size := range []int{-1, 1, 16, 20, 32, 33, 64, 128} {
		for _, in := range inputs {
			got, err := mh.Sum(in, mh.BLAKE3, size)
			if err != nil {
				t.Fatalf("mh.Sum(%d bytes, size %d): %v", len(in), size, err)
			}
			n := size
			if n == -1 {
				n = ChunkDigestSize
			}
			ref := lukeblake3.New(n, nil)
			ref.Write(in)
			want, err := mh.Encode(ref.Sum(nil), mh.BLAKE3)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("mh.Sum(%d bytes, size %d) = %x, lukechampine gives %x", len(in), size, got, want)
			}
		}
	}
	for _, size := range []int{0, 129} {
		if _, err := mh.Sum([]byte("x"), mh.BLAKE3, size); err == nil {
			t.Fatalf("mh.Sum with size %d succeeded; the default registration refuses it", size)
		}
	}
	// ChunkCID agrees with the generic go-cid/go-multihash path.
	for _, in := range inputs {
		sum, err := mh.Sum(in, mh.BLAKE3, -1)
		if err != nil {
			t.Fatal(err)
		}
		if want := cid.NewCidV1(cid.Raw, sum); !ChunkCID(in).Equals(want) {
			t.Fatalf("ChunkCID(%d bytes) = %s, go-cid gives %s", len(in), ChunkCID(in), want)
		}
	}
}

// otherCIDs are well-formed CIDs that are not chunk CIDs.
func otherCIDs(t testing.TB, data []byte) map[string]cid.Cid {
	t.Helper()
	sha, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	b3, err := mh.Sum(data, mh.BLAKE3, -1)
	if err != nil {
		t.Fatal(err)
	}
	short, err := mh.Sum(data, mh.BLAKE3, 16)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]cid.Cid{
		"undefined":          cid.Undef,
		"CIDv0 sha256":       cid.NewCidV0(sha),
		"v1 raw sha256":      cid.NewCidV1(cid.Raw, sha),
		"v1 dag-pb blake3":   cid.NewCidV1(cid.DagProtobuf, b3),
		"v1 raw blake3 16 B": cid.NewCidV1(cid.Raw, short),
	}
}

func TestCheckChunkCID(t *testing.T) {
	data := []byte("some chunk")
	if err := CheckChunkCID(ChunkCID(data)); err != nil {
		t.Fatalf("ChunkCID rejected: %v", err)
	}
	for name, c := range otherCIDs(t, data) {
		t.Run(name, func(t *testing.T) {
			if err := CheckChunkCID(c); !errors.Is(err, ErrNotChunkCID) {
				t.Fatalf("CheckChunkCID(%s) = %v, want %v", c, err, ErrNotChunkCID)
			}
			err := VerifyChunk(c, data)
			if !errors.Is(err, ErrChunkMismatch) || !errors.Is(err, ErrNotChunkCID) {
				t.Fatalf("VerifyChunk(%s) = %v, want both %v and %v", c, err, ErrChunkMismatch, ErrNotChunkCID)
			}
		})
	}
}

func TestVerifyChunk(t *testing.T) {
	data := genBytes(t, 13, 100_000)
	c := ChunkCID(data)
	if err := VerifyChunk(c, data); err != nil {
		t.Fatalf("VerifyChunk of the right data: %v", err)
	}
	for _, bit := range []int{0, 7, 8 * 50_000, 8*len(data) - 1} {
		bad := append([]byte(nil), data...)
		bad[bit/8] ^= 1 << (bit % 8)
		if err := VerifyChunk(c, bad); !errors.Is(err, ErrChunkMismatch) {
			t.Fatalf("bit %d flipped: VerifyChunk = %v, want %v", bit, err, ErrChunkMismatch)
		}
	}
	if err := VerifyChunk(c, data[:len(data)-1]); !errors.Is(err, ErrChunkMismatch) {
		t.Fatalf("truncated data: VerifyChunk = %v, want %v", err, ErrChunkMismatch)
	}
	// A flipped bit in the CID's digest.
	b := c.Bytes()
	b[len(b)-1] ^= 0x80
	flipped, err := cid.Cast(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyChunk(flipped, data); !errors.Is(err, ErrChunkMismatch) {
		t.Fatalf("flipped CID: VerifyChunk = %v, want %v", err, ErrChunkMismatch)
	}
}

// FuzzVerifyChunk: any CID bytes from the network with any data never panic,
// and VerifyChunk accepts exactly the CID ChunkCID computes.
func FuzzVerifyChunk(f *testing.F) {
	for _, v := range blake3Vectors {
		f.Add(ChunkCID(v.input).Bytes(), v.input)
	}
	for _, c := range otherCIDs(f, []byte("abc")) {
		f.Add(c.Bytes(), []byte("abc"))
	}
	f.Add([]byte{0x01, 0x55, 0x1e, 0x20}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff}, []byte("x"))
	f.Fuzz(func(t *testing.T, cidBytes, data []byte) {
		c, err := cid.Cast(cidBytes)
		if err != nil {
			return
		}
		err = VerifyChunk(c, data)
		want := ChunkCID(data)
		if c.Equals(want) != (err == nil) {
			t.Fatalf("VerifyChunk(%x, %d bytes) = %v; ChunkCID is %x", cidBytes, len(data), err, want.Bytes())
		}
		if err != nil && !errors.Is(err, ErrChunkMismatch) {
			t.Fatalf("VerifyChunk error %v is not %v", err, ErrChunkMismatch)
		}
	})
}
