package store

// Sub-chunk pieces: a chunk cut again, finer, for delta transfer
// (protocol/chunks' delta exchange). When a device must fetch a chunk of a
// file it holds an older version of, the server describes the chunk as
// pieces (PieceCuts) with a hash each, the client cuts the old version's
// bytes the same way, and only the pieces it lacks travel. Pieces are not
// part of any file's identity (nothing is stored or signed by piece), but
// both sides must cut alike for the exchange to save anything, so the sizes
// and the cutter are pinned by TestPieceCutsGolden like the chunker's.
//
// The cutter is the chunker's (the same gear table and FastCDC loop,
// normalization level 2) with sizes MinPieceSize/AvgPieceSize/MaxPieceSize.
// Why 2/8/32 KiB: an overwrite or insertion re-sends the pieces it cuts into
// (two of them, size-biased) plus one manifest per changed chunk (~256 KiB /
// 8 KiB = 32 pieces x ~18 bytes, about 0.6 KB). Smaller pieces waste less at
// the edges and more in manifests, which every changed chunk pays even when
// nothing of it is found locally. BenchmarkPieceSizes (piece_bench_test.go):
// 1 MiB (1,048.6 KB) overwritten at 200 random offsets of 64 MiB of random
// data, bytes the delta exchange moves per edit (pieces not found locally,
// whole chunks where none was found, manifests, range request headers):
//
//	pieces min/avg/max KiB   mean      p90       max       of which manifests (mean)
//	1/4/16                   1,061 KB  1,065 KB  1,073 KB  6.9 KB
//	2/8/32                   1,062 KB  1,068 KB  1,074 KB  3.5 KB   <- chosen
//	4/16/64                  1,071 KB  1,086 KB  1,103 KB  2.0 KB
//	8/32/128                 1,090 KB  1,114 KB  1,155 KB  1.1 KB
//
// 1/4/16 saves ~1 KB per edit here and doubles the manifests (and the
// hashing on both sides) of every changed chunk; 2/8/32 keeps the manifest
// overhead of a rewritten chunk at ~0.25% of its bytes.

import "github.com/zeebo/blake3"

// Piece size bounds: every piece but a chunk's last is at least MinPieceSize
// and at most MaxPieceSize bytes; the mean is close to AvgPieceSize (a power
// of two).
const (
	MinPieceSize = 2 << 10
	AvgPieceSize = 8 << 10
	MaxPieceSize = 32 << 10
)

// PieceHashSize is the length of a piece hash: the first 16 bytes of the
// piece's BLAKE3 digest (BLAKE3's output is extendable, so a prefix is a
// hash of its own). Pieces are matched by hash only as a guess: the chunk
// they assemble is verified against its CID, and a mismatch falls back to
// the whole chunk, so 128 bits are plenty (an accidental match among a few
// thousand pieces has odds of ~2^-100).
const PieceHashSize = 16

// PieceHash is the hash of one piece.
type PieceHash [PieceHashSize]byte

var pieceParams = newCDCParams(MinPieceSize, AvgPieceSize, MaxPieceSize, normalizationLevel)

// PieceCuts calls fn with the offset and length of each piece of data, in
// order, cut as a stream starting at data[0]: data is a whole chunk (or any
// run of bytes to compare with chunks' pieces).
func PieceCuts(data []byte, fn func(off, n int)) {
	off := 0
	for off < len(data) {
		n := pieceParams.nextCut(data[off:])
		fn(off, n)
		off += n
	}
}

// HashPiece returns the PieceHash of p.
func HashPiece(p []byte) PieceHash {
	var h PieceHash
	sum := blake3.Sum256(p)
	copy(h[:], sum[:])
	return h
}
