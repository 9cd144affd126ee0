package store

// Chunk addressing: every chunk is named by a CIDv1 with the raw codec (0x55)
// and a BLAKE3-256 multihash (code 0x1e, 32-byte digest). The 36 bytes of such
// a CID are 0x01 0x55 0x1e 0x20 followed by the digest.
//
// BLAKE3 is computed with github.com/zeebo/blake3 (SIMD, no allocation, about
// 2x the speed of lukechampine.com/blake3, which go-multihash registers by
// default; LIBP2P-NOTES.md §6). init below registers zeebo in go-multihash's
// registry too, so that mh.Sum(data, mh.BLAKE3, -1) anywhere in the process
// gives the same digests at the faster speed. cid_test.go checks that both
// implementations agree.

import (
	"errors"
	"fmt"
	"hash"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	mhcore "github.com/multiformats/go-multihash/core"
	"github.com/zeebo/blake3"
	lukeblake3 "lukechampine.com/blake3"
)

// ChunkDigestSize is the length in bytes of a chunk's BLAKE3 digest.
const ChunkDigestSize = 32

// chunkCIDLen is the length of a chunk CID in binary form: four one-byte
// varints (version, codec, hash code, digest length) and the digest.
const chunkCIDLen = 4 + ChunkDigestSize

// blake3MaxVariableSize is the largest digest go-multihash's default BLAKE3
// registration accepts; we keep accepting the same sizes.
const blake3MaxVariableSize = 128

// ErrChunkMismatch: data does not hash to the CID it was read or received for.
var ErrChunkMismatch = errors.New("chunk content does not match its CID")

// ErrNotChunkCID: a CID that cannot name a chunk (wrong version, codec, hash
// function or digest length).
var ErrNotChunkCID = errors.New("not a chunk CID (want CIDv1, raw, blake3-256)")

func init() {
	// The later registration wins: go-multihash's own (lukechampine) ran in
	// its package init, before this package's.
	mhcore.RegisterVariableSize(mh.BLAKE3, newBLAKE3Hasher)
}

// newBLAKE3Hasher is the go-multihash factory for BLAKE3. Digests up to 32
// bytes come from zeebo (go-multihash truncates; a shorter BLAKE3 output is a
// prefix of the longer one). Longer extended outputs, which zeebo's hash.Hash
// does not produce, stay with lukechampine exactly as before.
func newBLAKE3Hasher(size int) (hash.Hash, bool) {
	switch {
	case size == -1 || (size > 0 && size <= ChunkDigestSize):
		return blake3.New(), true
	case size > ChunkDigestSize && size <= blake3MaxVariableSize:
		return lukeblake3.New(size, nil), true
	}
	return nil, false
}

// ChunkCID is the address of a chunk: CIDv1, raw codec, BLAKE3-256 multihash.
func ChunkCID(data []byte) cid.Cid {
	sum := blake3.Sum256(data)
	return chunkCIDFromDigest(&sum)
}

// chunkCIDFromDigest builds the CID for a BLAKE3-256 digest: two small
// allocations (96 bytes, BenchmarkChunkCID), against four and ~11 KB for
// mh.Sum + cid.NewCidV1.
func chunkCIDFromDigest(sum *[ChunkDigestSize]byte) cid.Cid {
	b := chunkCIDBytes(sum)
	c, err := cid.Cast(b[:])
	if err != nil {
		// The bytes are built from constants and a digest; failure is a bug.
		panic(fmt.Sprintf("store: building chunk CID: %v", err))
	}
	return c
}

// chunkCIDBytes is the binary form of the chunk CID for a digest.
func chunkCIDBytes(sum *[ChunkDigestSize]byte) [chunkCIDLen]byte {
	var b [chunkCIDLen]byte
	// All four header values are below 0x80, so each varint is one byte.
	b[0] = 1               // CID version
	b[1] = cid.Raw         // codec 0x55
	b[2] = mh.BLAKE3       // multihash code 0x1e
	b[3] = ChunkDigestSize // digest length
	copy(b[4:], sum[:])
	return b
}

// CheckChunkCID returns ErrNotChunkCID unless c has the form ChunkCID
// produces. Use it on CIDs received from the network before asking for data.
func CheckChunkCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrNotChunkCID)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.BLAKE3 || p.MhLength != ChunkDigestSize {
		return fmt.Errorf("%w: got version %d codec %#x hash %#x length %d",
			ErrNotChunkCID, p.Version, p.Codec, p.MhType, p.MhLength)
	}
	return nil
}

// VerifyChunk returns ErrChunkMismatch unless data hashes to c. A c that is
// not a chunk CID (see CheckChunkCID) never matches.
func VerifyChunk(c cid.Cid, data []byte) error {
	if err := CheckChunkCID(c); err != nil {
		return fmt.Errorf("%w: %w", ErrChunkMismatch, err)
	}
	sum := blake3.Sum256(data)
	if want := chunkCIDBytes(&sum); c.KeyString() != string(want[:]) {
		return ErrChunkMismatch
	}
	return nil
}
