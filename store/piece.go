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
// (two of them, size-biased: ~2 x 10 KB at an 8 KiB average) plus one
// manifest per changed chunk (~256 KiB / 8 KiB = 32 pieces x PieceEntrySize,
// about 0.7 KB). Halving the pieces halves the first and doubles the second;
// BenchmarkPieceSizes (protocol/chunks) measures both for the 1 MiB
// overwrite of `meshfold bench sync` (d), see the table in
// protocol/chunks/delta.go.

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
