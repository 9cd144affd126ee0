package store

// Content-defined chunking (FastCDC family).
//
// A file's content identity is its ordered list of chunk CIDs, so where the
// chunker cuts is wire-visible: every device must cut the same bytes at the
// same places forever. Changing the gear table, the masks, the sizes or the
// loop below changes every file's identity and needs a format version bump.
//
// Algorithm (Xia et al., "FastCDC", USENIX ATC 2016, with normalized
// chunking):
//   - gear rolling hash h = (h << 1) + gear[b] over each byte b; after 64
//     bytes h depends only on the last 64 bytes, so no window is kept;
//   - the first MinChunkSize bytes of a chunk are skipped (never hashed; a
//     cut can not fall there);
//   - from MinChunkSize to AvgChunkSize a cut is made where h&maskS == 0,
//     maskS having log2(AvgChunkSize)+2 bits set (harder to match), then up to
//     MaxChunkSize where h&maskL == 0, maskL having log2(AvgChunkSize)-2 bits
//     (easier): "normalization level 2", which pulls chunk sizes towards the
//     average; at MaxChunkSize the chunk is cut unconditionally;
//   - the cut is made after the byte whose hash matched.
//
// The mask bits are the top bits of h: with the left-shifting gear hash, bit
// k of h depends on the last k+1 bytes only, so the top bits see the widest
// window (the lowest mask bit, 63-19=44 for maskS, still sees 45 bytes).
//
// Gear table: gear[i] is the i-th output (i = 0..255) of SplitMix64 (Steele,
// Lea, Flood 2014; the generator of java.util.SplittableRandom) seeded with
// gearSeed = 0x6d657368666f6c64 ("meshfold" in ASCII):
//
//	state += 0x9e3779b97f4a7c15
//	z := state
//	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
//	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
//	gear[i] = z ^ (z >> 31)
//
// chunker_test.go pins gear[0], gear[255] and a digest of the whole table,
// and the cut points of a fixed input, so an accidental change fails tests.
//
// Sizes: MinChunkSize 64 KiB, AvgChunkSize 256 KiB, MaxChunkSize 1 MiB,
// chosen by measurement (BenchmarkChunkParams in chunker_bench_test.go, 2-core
// AMD EPYC; figures also in BENCHMARKS.md, "Chunking"). A 64 MiB random buffer
// gets N edits (insert or delete 1..16 bytes at random offsets); "shared" is
// the fraction of the edited file's bytes that lie in chunks already present
// in the original; metadata is chunk count x 40 bytes (one ChunkRef) per GiB:
//
//	min/avg/max (KiB)  mean chunk  meta/GiB  shared 1 edit  10 edits  100 edits  gear MB/s
//	FIGURES_PLACEHOLDER
//
// Smaller chunks dedup a little better after scattered edits but cost
// proportionally more index and transfer metadata (and more per-chunk work:
// CID allocation, index keys, requests); larger ones lose whole megabytes per
// edit. 64/256/1024 keeps metadata around 160 KiB per GiB (a 10 GiB file
// lists ~40k chunks) while one edit loses on average about one chunk.

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/zeebo/blake3"
)

// Chunk size bounds. Every chunk but a stream's last is at least MinChunkSize
// and at most MaxChunkSize bytes; the mean is close to AvgChunkSize (must be
// a power of two). Part of the wire-visible file identity; see above.
const (
	MinChunkSize = 64 << 10
	AvgChunkSize = 256 << 10
	MaxChunkSize = 1 << 20
)

// normalizationLevel is FastCDC's NC level: the masks have
// log2(AvgChunkSize)±normalizationLevel bits.
const normalizationLevel = 2

// gearSeed seeds the SplitMix64 generator of the gear table ("meshfold").
const gearSeed = 0x6d657368666f6c64

// ChunkerBufferSize is the memory a Chunker holds: the stream is read in
// pieces of up to this size and never held whole.
const ChunkerBufferSize = 4 * MaxChunkSize

// maxEmptyReads is how many consecutive (0, nil) reads HashChunks tolerates
// before failing with io.ErrNoProgress (as bufio does) instead of spinning.
const maxEmptyReads = 100

// Chunk is one content-defined piece of a stream.
type Chunk struct {
	Offset int64
	Length int
	CID    cid.Cid
}

var gear = makeGear(gearSeed)

func makeGear(seed uint64) (g [256]uint64) {
	state := seed
	for i := range g {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		g[i] = z ^ (z >> 31)
	}
	return g
}

// cdcParams are the sizes and masks of one chunker configuration. Production
// uses defaultParams only; other values exist for BenchmarkChunkParams.
type cdcParams struct {
	min, avg, max int
	maskS, maskL  uint64
}

// topBits returns a mask of the n most significant bits.
func topBits(n int) uint64 { return ^uint64(0) << (64 - n) }

func newCDCParams(min, avg, max, level int) cdcParams {
	b := bits.Len(uint(avg)) - 1 // log2(avg), avg a power of two
	return cdcParams{
		min: min, avg: avg, max: max,
		maskS: topBits(b + level),
		maskL: topBits(b - level),
	}
}

var defaultParams = newCDCParams(MinChunkSize, AvgChunkSize, MaxChunkSize, normalizationLevel)

// NextCut returns the length of the chunk at the start of buf: the first cut
// point. buf must hold at least MaxChunkSize bytes unless it is the rest of
// the stream; otherwise the result is only a lower bound of where the stream
// would be cut. The result is in [1, len(buf)] for a non-empty buf and 0 for
// an empty one.
func NextCut(buf []byte) int { return defaultParams.nextCut(buf) }

func (p *cdcParams) nextCut(buf []byte) int {
	n := len(buf)
	if n <= p.min {
		return n
	}
	if n > p.max {
		n = p.max
	}
	normal := p.avg
	if normal > n {
		normal = n
	}
	var h uint64
	maskS, maskL := p.maskS, p.maskL
	i := p.min
	for _, b := range buf[i:normal] {
		h = h<<1 + gear[b]
		i++
		if h&maskS == 0 {
			return i
		}
	}
	for _, b := range buf[i:n] {
		h = h<<1 + gear[b]
		i++
		if h&maskL == 0 {
			return i
		}
	}
	return n
}

// Chunker cuts and hashes streams with a buffer of its own, reused from one
// stream to the next. A Chunker is not safe for concurrent use; use one per
// goroutine.
type Chunker struct {
	buf []byte
	p   *cdcParams
}

// NewChunker returns a Chunker with a ChunkerBufferSize buffer.
func NewChunker() *Chunker {
	return &Chunker{buf: make([]byte, ChunkerBufferSize), p: &defaultParams}
}

var chunkerPool = sync.Pool{New: func() any { return NewChunker() }}

// HashChunks reads r to its end, cuts it into chunks, hashes each and calls emit
// in order. The data slice passed to emit is only valid during the call.
// An error from emit stops the scan and is returned unchanged; a read error is
// returned wrapped. Memory use is bounded by ChunkerBufferSize.
func HashChunks(r io.Reader, emit func(c Chunk, data []byte) error) error {
	c := chunkerPool.Get().(*Chunker)
	defer chunkerPool.Put(c)
	return c.HashChunks(r, emit)
}

// HashChunks is the package-level HashChunks using c's buffer.
func (c *Chunker) HashChunks(r io.Reader, emit func(c Chunk, data []byte) error) error {
	return c.cut(r, func(off int64, data []byte) error {
		sum := blake3.Sum256(data)
		return emit(Chunk{Offset: off, Length: len(data), CID: chunkCIDFromDigest(&sum)}, data)
	})
}

// Cuts reads r to its end and calls emit with the offset and content of each
// chunk, without hashing. data is only valid during the call.
func (c *Chunker) Cuts(r io.Reader, emit func(off int64, data []byte) error) error {
	return c.cut(r, emit)
}

func (c *Chunker) cut(r io.Reader, emit func(off int64, data []byte) error) error {
	buf := c.buf
	start, end := 0, 0 // unconsumed data is buf[start:end]
	var off int64
	eof := false
	for {
		// Keep the remainder (shorter than max) and fill the rest.
		end = copy(buf, buf[start:end])
		start = 0
		empty := 0
		for end < len(buf) && !eof {
			n, err := r.Read(buf[end:])
			end += n
			switch {
			case err == io.EOF:
				eof = true
			case err != nil:
				return fmt.Errorf("reading chunk data at offset %d: %w", off+int64(end), err)
			case n == 0:
				empty++
				if empty >= maxEmptyReads {
					return fmt.Errorf("reading chunk data at offset %d: %w", off+int64(end), io.ErrNoProgress)
				}
			default:
				empty = 0
			}
		}
		// Cut only where the decision can not depend on bytes not yet read.
		for end-start >= c.p.max || (eof && end > start) {
			n := c.p.nextCut(buf[start:end])
			if err := emit(off, buf[start:start+n]); err != nil {
				return err
			}
			start += n
			off += int64(n)
		}
		if eof {
			return nil
		}
	}
}

// MeasureChunkThroughput measures, on the calling goroutine, HashChunks over
// buf (cut + BLAKE3 + CID per chunk) and zeebo BLAKE3 Sum256 of buf alone,
// alternating the two rounds times and keeping each one's fastest round. It
// returns both in MB/s (10^6 bytes per second); their ratio is the cost of
// chunking relative to hashing. For `meshfold bench scan`; use a buffer of
// tens of MiB of random data so the figures are not cache-resident.
func MeasureChunkThroughput(buf []byte, rounds int) (chunkHashMBps, blake3MBps float64) {
	if len(buf) == 0 {
		return 0, 0
	}
	if rounds < 1 {
		rounds = 1
	}
	c := NewChunker()
	var bestChunk, bestHash time.Duration
	var sink byte
	for range rounds {
		t0 := time.Now()
		err := c.HashChunks(bytes.NewReader(buf), func(ch Chunk, _ []byte) error {
			sink ^= ch.CID.KeyString()[4]
			return nil
		})
		d := time.Since(t0)
		if err != nil {
			panic(err) // neither a bytes.Reader nor the emit above fails
		}
		if bestChunk == 0 || d < bestChunk {
			bestChunk = d
		}
		t0 = time.Now()
		sum := blake3.Sum256(buf)
		d = time.Since(t0)
		sink ^= sum[0]
		if bestHash == 0 || d < bestHash {
			bestHash = d
		}
	}
	_ = sink
	mb := float64(len(buf)) / 1e6
	return mb / bestChunk.Seconds(), mb / bestHash.Seconds()
}
