package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/zeebo/blake3"
)

// splitMix64 is the generator of the gear table, written out again here so
// that the test checks makeGear against an independent copy.
type splitMix64 uint64

func (s *splitMix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func TestGearTable(t *testing.T) {
	// SplitMix64 reference outputs for seed 0 (Vigna's splitmix64.c).
	g0 := makeGear(0)
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if g0[i] != want {
			t.Fatalf("makeGear(0)[%d] = %#x, want %#x (SplitMix64 reference)", i, g0[i], want)
		}
	}
	// The production table, pinned: its first and last entries (computed by
	// an independent Python implementation) and a digest of all of it.
	if gear[0] != 0x4c519bd04aba5a27 || gear[255] != 0xd77cd160c9034c36 {
		t.Fatalf("gear[0], gear[255] = %#x, %#x; the gear table changed", gear[0], gear[255])
	}
	s := splitMix64(gearSeed)
	var b []byte
	for i := range gear {
		if v := s.next(); gear[i] != v {
			t.Fatalf("gear[%d] = %#x, want %#x", i, gear[i], v)
		}
		b = binary.LittleEndian.AppendUint64(b, gear[i])
	}
	if got := blake3.Sum256(b); hexString(got[:]) != gearTableBLAKE3 {
		t.Fatalf("BLAKE3 of gear table = %s, want %s", hexString(got[:]), gearTableBLAKE3)
	}
}

// gearTableBLAKE3 is BLAKE3-256 of the 256 gear values, little-endian.
const gearTableBLAKE3 = "7104c3944e61e4aa26163094ba9501bb01e29259cec56dc1399f63dba64dd32b"

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestGearScanMatchesPlainLoop checks the unrolled gearScan against the
// one-byte-at-a-time definition, for masks that match often.
func TestGearScanMatchesPlainLoop(t *testing.T) {
	plain := func(buf []byte, h, mask uint64) (int, uint64) {
		for i, b := range buf {
			h = h<<1 + gear[b]
			if h&mask == 0 {
				return i, h
			}
		}
		return -1, h
	}
	data := genBytes(t, 11, 1<<20)
	for _, bits := range []int{1, 3, 8, 12} {
		mask := topBits(bits)
		for _, start := range []uint64{0, 1, 0xfeedface} {
			for rest, h := data, start; len(rest) > 0; {
				i1, h1 := plain(rest, h, mask)
				i2, h2 := gearScan(rest, h, mask)
				if i1 != i2 || h1 != h2 {
					t.Fatalf("bits %d: plain (%d, %#x), gearScan (%d, %#x)", bits, i1, h1, i2, h2)
				}
				if i1 < 0 {
					break
				}
				rest, h = rest[i1+1:], h1
			}
		}
	}
}

// genReader yields n deterministic pseudo-random bytes (SplitMix64 words,
// little-endian) without holding them, so a stream can be far larger than
// memory the test wants to use.
type genReader struct {
	s    splitMix64
	left int64
	word [8]byte
	used int // bytes of word already returned; 8 = empty
}

func newGenReader(seed uint64, n int64) *genReader {
	return &genReader{s: splitMix64(seed), left: n, used: 8}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n := 0
	for n < len(p) && g.used < 8 {
		p[n] = g.word[g.used]
		n++
		g.used++
	}
	for ; n+8 <= len(p); n += 8 {
		binary.LittleEndian.PutUint64(p[n:], g.s.next())
	}
	if n < len(p) {
		binary.LittleEndian.PutUint64(g.word[:], g.s.next())
		g.used = copy(p[n:], g.word[:])
		n += g.used
	}
	g.left -= int64(n)
	return n, nil
}

func genBytes(t testing.TB, seed uint64, n int) []byte {
	t.Helper()
	b, err := io.ReadAll(newGenReader(seed, int64(n)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// referenceCuts chunks a whole in-memory stream with NextCut.
func referenceCuts(buf []byte) []int {
	var lens []int
	for len(buf) > 0 {
		n := NextCut(buf)
		lens = append(lens, n)
		buf = buf[n:]
	}
	return lens
}

// collect runs HashChunks over r and checks what must hold for any input:
// offsets are contiguous, each CID matches its data, and the data put back
// together is the input.
func collect(t testing.TB, c *Chunker, r io.Reader, want []byte) []Chunk {
	t.Helper()
	var chunks []Chunk
	var got bytes.Buffer
	err := c.HashChunks(r, func(ch Chunk, data []byte) error {
		if ch.Length != len(data) {
			t.Fatalf("chunk %d: Length %d, data %d bytes", len(chunks), ch.Length, len(data))
		}
		if ch.Offset != int64(got.Len()) {
			t.Fatalf("chunk %d: Offset %d, want %d", len(chunks), ch.Offset, got.Len())
		}
		if err := VerifyChunk(ch.CID, data); err != nil {
			t.Fatalf("chunk %d: %v", len(chunks), err)
		}
		got.Write(data)
		chunks = append(chunks, ch)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("chunks put together (%d bytes) differ from the input (%d bytes)", got.Len(), len(want))
	}
	return chunks
}

func checkBounds(t testing.TB, chunks []Chunk) {
	t.Helper()
	for i, ch := range chunks {
		last := i == len(chunks)-1
		if ch.Length > MaxChunkSize || ch.Length < 1 || (!last && ch.Length < MinChunkSize) {
			t.Fatalf("chunk %d of %d: length %d outside [%d, %d]", i, len(chunks), ch.Length, MinChunkSize, MaxChunkSize)
		}
	}
}

func lengths(chunks []Chunk) []int {
	l := make([]int, len(chunks))
	for i, ch := range chunks {
		l[i] = ch.Length
	}
	return l
}

func TestChunkBounds(t *testing.T) {
	zeros := make([]byte, 5*MaxChunkSize+7)
	pattern := bytes.Repeat([]byte("meshfold "), 400_000)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"min", genBytes(t, 1, MinChunkSize)},
		{"min+1", genBytes(t, 2, MinChunkSize+1)},
		{"max", genBytes(t, 3, MaxChunkSize)},
		{"max+1", genBytes(t, 4, MaxChunkSize+1)},
		{"random 12MiB", genBytes(t, 5, 12<<20+3)},
		{"zeros", zeros},
		{"repeated text", pattern},
	}
	c := NewChunker()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := collect(t, c, bytes.NewReader(tt.data), tt.data)
			checkBounds(t, chunks)
			if len(tt.data) == 0 && len(chunks) != 0 {
				t.Fatalf("empty input gave %d chunks", len(chunks))
			}
			if len(tt.data) > 0 && len(tt.data) <= MinChunkSize && len(chunks) != 1 {
				t.Fatalf("%d bytes gave %d chunks, want 1", len(tt.data), len(chunks))
			}
			if ref := referenceCuts(tt.data); !equalInts(lengths(chunks), ref) {
				t.Fatalf("streamed cuts %v differ from whole-buffer cuts %v", lengths(chunks), ref)
			}
		})
	}
	// Data without content-defined cut points is cut at MaxChunkSize.
	for i, n := range referenceCuts(zeros) {
		if want := min(MaxChunkSize, len(zeros)-i*MaxChunkSize); n != want {
			t.Fatalf("zeros: chunk %d is %d bytes, want %d", i, n, want)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestChunkMeanSize checks the cut statistics on random data: the mean is
// near AvgChunkSize and, with normalized chunking, no chunk is forced.
func TestChunkMeanSize(t *testing.T) {
	data := genBytes(t, 6, 32<<20)
	lens := referenceCuts(data)
	mean := len(data) / len(lens)
	if mean < AvgChunkSize*3/4 || mean > AvgChunkSize*3/2 {
		t.Fatalf("mean chunk %d bytes over %d chunks, want within [0.75, 1.5] x %d", mean, len(lens), AvgChunkSize)
	}
}

// splitReader returns reads of random sizes in [max(1, minRead), maxRead]
// (seeded).
type splitReader struct {
	r                io.Reader
	rng              *rand.Rand
	minRead, maxRead int
}

func (s *splitReader) Read(p []byte) (int, error) {
	lo := max(1, s.minRead)
	n := lo + s.rng.IntN(max(1, s.maxRead-lo+1))
	if n < len(p) {
		p = p[:n]
	}
	return s.r.Read(p)
}

// TestChunkReaderIndependence: the cuts depend on the bytes only, not on how
// the reader splits them, and a reused Chunker carries nothing over.
func TestChunkReaderIndependence(t *testing.T) {
	data := genBytes(t, 7, 2*ChunkerBufferSize+12345) // several buffer refills
	want := referenceCuts(data)
	readers := []struct {
		name string
		r    func() io.Reader
	}{
		{"bytes.Reader", func() io.Reader { return bytes.NewReader(data) }},
		{"OneByteReader", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }},
		{"HalfReader", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }},
		{"DataErrReader", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }},
		{"random splits", func() io.Reader {
			return &splitReader{r: bytes.NewReader(data), rng: rand.New(rand.NewPCG(1, 2)), maxRead: 3 * MaxChunkSize}
		}},
		{"small random splits", func() io.Reader {
			return &splitReader{r: bytes.NewReader(data), rng: rand.New(rand.NewPCG(3, 4)), maxRead: 1000}
		}},
	}
	c := NewChunker()
	var first []Chunk
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			chunks := collect(t, c, rd.r(), data)
			if !equalInts(lengths(chunks), want) {
				t.Fatalf("cuts %v, want %v", lengths(chunks), want)
			}
			if first == nil {
				first = chunks
				return
			}
			for i := range chunks {
				if chunks[i] != first[i] {
					t.Fatalf("chunk %d: %+v, first reader gave %+v", i, chunks[i], first[i])
				}
			}
		})
	}
	// The package-level function (pooled Chunkers) gives the same chunks.
	var pooled []Chunk
	if err := HashChunks(bytes.NewReader(data), func(ch Chunk, _ []byte) error {
		pooled = append(pooled, ch)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(pooled) != len(first) {
		t.Fatalf("HashChunks gave %d chunks, Chunker %d", len(pooled), len(first))
	}
	for i := range pooled {
		if pooled[i] != first[i] {
			t.Fatalf("chunk %d: HashChunks %+v, Chunker %+v", i, pooled[i], first[i])
		}
	}
}

// TestChunkEditStability: a small edit changes only the chunks around it.
func TestChunkEditStability(t *testing.T) {
	const size = 64 << 20
	const maxNewChunks = 3
	orig := randomBytes(t, 42, size)
	c := NewChunker()
	known := make(map[string]bool)
	origChunks := 0
	if err := c.HashChunks(bytes.NewReader(orig), func(ch Chunk, _ []byte) error {
		known[ch.CID.KeyString()] = true
		origChunks++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	insert := func(off int, b byte) []byte {
		out := make([]byte, 0, len(orig)+1)
		out = append(out, orig[:off]...)
		out = append(out, b)
		return append(out, orig[off:]...)
	}
	remove := func(off, n int) []byte {
		out := make([]byte, 0, len(orig))
		out = append(out, orig[:off]...)
		return append(out, orig[off+n:]...)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"insert 1 byte at 0", insert(0, 0xa5)},
		{"insert 1 byte in the middle", insert(size/2+1234, 0x5a)},
		{"delete 1 byte in the middle", remove(size/3+777, 1)},
		{"delete 100 bytes in the middle", remove(2*size/3, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newChunks, total := 0, 0
			if err := c.HashChunks(bytes.NewReader(tt.data), func(ch Chunk, _ []byte) error {
				total++
				if !known[ch.CID.KeyString()] {
					newChunks++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if newChunks > maxNewChunks {
				t.Fatalf("%d of %d chunks are new (original had %d), want at most %d", newChunks, total, origChunks, maxNewChunks)
			}
			if newChunks == 0 {
				t.Fatalf("no chunk changed although the content did")
			}
		})
	}
}

// TestChunkStreamingMemory streams far more data than the Chunker's buffer
// and checks that the allocation does not grow with the stream.
func TestChunkStreamingMemory(t *testing.T) {
	const size = 16 * ChunkerBufferSize // 64 MiB
	// Per chunk HashChunks allocates the CID string (and go-cid's parse);
	// a generous bound per chunk, far below one buffer for the whole stream.
	const allowPerChunk = 512
	c := NewChunker()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var total int64
	chunks := 0
	if err := c.HashChunks(newGenReader(9, size), func(ch Chunk, data []byte) error {
		total += int64(len(data))
		chunks++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if total != size {
		t.Fatalf("chunked %d bytes, want %d", total, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(chunks*allowPerChunk) {
		t.Fatalf("streaming %d bytes in %d chunks allocated %d bytes, want <= %d", size, chunks, alloc, chunks*allowPerChunk)
	}
}

// TestChunkGolden pins where the chunker cuts a fixed input: the cut points
// are part of every file's identity and must never change by accident.
func TestChunkGolden(t *testing.T) {
	data := genBytes(t, 1, 8<<20)
	if got := referenceCuts(data); !equalInts(got, goldenCuts) {
		t.Fatalf("cuts of the golden input = %#v, want %#v", got, goldenCuts)
	}
}

// goldenCuts are the chunk lengths of 8 MiB of genReader(seed 1) output.
// They were cross-checked with an independent Python implementation of the
// algorithm as documented at the top of chunker.go (one byte at a time,
// 64/256/1024 KiB, normalization level 2); it printed the same list:
//
//	import struct
//	M=(1<<64)-1
//	def sm(seed):
//	  s=seed
//	  while True:
//	    s=(s+0x9e3779b97f4a7c15)&M; z=s
//	    z=((z^(z>>30))*0xbf58476d1ce4e5b9)&M
//	    z=((z^(z>>27))*0x94d049bb133111eb)&M
//	    yield z^(z>>31)
//	g=sm(0x6d657368666f6c64); gear=[next(g) for _ in range(256)]
//	g=sm(1); n=8<<20
//	data=b''.join(struct.pack('<Q',next(g)) for _ in range(n//8))
//	MIN,AVG,MAX,NC=64<<10,256<<10,1<<20,2
//	top=lambda k:(M<<(64-k))&M
//	b=AVG.bit_length()-1
//	mS,mL=top(b+NC),top(b-NC)
//	def cut(off):
//	  n=len(data)-off
//	  if n<=MIN: return n
//	  n=min(n,MAX); normal=min(AVG,n); h=0
//	  for i in range(MIN,n):
//	    h=((h<<1)+gear[data[off+i]])&M
//	    if h&(mS if i<normal else mL)==0: return i+1
//	  return n
//	off=0;out=[]
//	while off<len(data):
//	  c=cut(off); out.append(c); off+=c
//	print(out)

var goldenCuts = []int{
	293311, 347474, 422287, 382339, 322866, 477774, 283674, 314281, 297960, 360297,
	325387, 303954, 351573, 266295, 382792, 268910, 337989, 531761, 273745, 236502,
	136208, 338343, 332444, 293790, 394082, 112570,
}

var errTestEmit = errors.New("emit refused")

func TestChunkErrors(t *testing.T) {
	data := genBytes(t, 10, 3*MaxChunkSize)
	c := NewChunker()

	t.Run("emit error stops", func(t *testing.T) {
		calls := 0
		err := c.HashChunks(bytes.NewReader(data), func(Chunk, []byte) error {
			calls++
			return errTestEmit
		})
		if !errors.Is(err, errTestEmit) || calls != 1 {
			t.Fatalf("err %v after %d calls, want %v after 1", err, calls, errTestEmit)
		}
	})
	t.Run("read error", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(data[:MaxChunkSize]), iotest.ErrReader(iotest.ErrTimeout))
		err := c.HashChunks(r, func(Chunk, []byte) error { return nil })
		if !errors.Is(err, iotest.ErrTimeout) {
			t.Fatalf("err %v, want %v", err, iotest.ErrTimeout)
		}
	})
	t.Run("reader without progress", func(t *testing.T) {
		err := c.HashChunks(zeroReader{}, func(Chunk, []byte) error { return nil })
		if !errors.Is(err, io.ErrNoProgress) {
			t.Fatalf("err %v, want %v", err, io.ErrNoProgress)
		}
	})
	// The Chunker is still usable after errors.
	collect(t, c, bytes.NewReader(data), data)
}

// zeroReader returns (0, nil) forever.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// FuzzChunker: for any input and any way of splitting reads, the chunks
// cover the input, respect the bounds and equal the whole-buffer cuts.
func FuzzChunker(f *testing.F) {
	f.Add(uint64(1), uint32(0), uint16(1), []byte{})
	f.Add(uint64(2), uint32(MinChunkSize), uint16(7), []byte("x"))
	f.Add(uint64(3), uint32(MaxChunkSize+1), uint16(4096), []byte{0, 0, 0})
	f.Add(uint64(4), uint32(2*MaxChunkSize+MinChunkSize), uint16(65535), bytes.Repeat([]byte{0}, 1000))
	f.Fuzz(func(t *testing.T, seed uint64, size uint32, maxRead uint16, prefix []byte) {
		// Large enough for forced cuts and a buffer refill, small enough
		// for many executions per second.
		const maxFuzzSize = 2*MaxChunkSize + MinChunkSize + 1
		// The stream: prefix, then pseudo-random bytes; with a zero run
		// when seed is even so that forced cuts at MaxChunkSize happen.
		n := int(size % maxFuzzSize)
		data := append([]byte(nil), prefix...)
		if seed%2 == 0 {
			data = append(data, make([]byte, n/2)...)
			n -= n / 2
		}
		data = append(data, genBytes(t, seed, n)...)
		want := referenceCuts(data)
		// Reads of 1..64 bytes are left to TestChunkReaderIndependence
		// (OneByteReader): here they would make one execution take seconds.
		r := &splitReader{r: bytes.NewReader(data), rng: rand.New(rand.NewPCG(seed, 1)), minRead: 64, maxRead: 64 + 16*int(maxRead)}
		chunks := collect(t, NewChunker(), r, data)
		checkBounds(t, chunks)
		if !equalInts(lengths(chunks), want) {
			t.Fatalf("cuts %v, want %v", lengths(chunks), want)
		}
	})
}
