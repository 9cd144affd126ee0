package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
)

// benchFileInfo is a large file's version: 4,096 chunks, a few devices in
// its vector, a signature.
func benchFileInfo() FileInfo {
	fi := fullFileInfo("some/directory/a large file.bin", 4096)
	fi.Signature = make([]byte, 64)
	return fi
}

// The CBOR twin of FileInfo, for comparison only: an array per struct (the
// most compact CBOR layout), encoded in Core Deterministic mode, CIDs as
// byte strings that decoding must parse just as the binary decoder does.
type cborChunk struct {
	_    struct{} `cbor:",toarray"`
	CID  []byte
	Size uint32
}

type cborCounter struct {
	_      struct{} `cbor:",toarray"`
	Device string
	Value  uint64
}

type cborFileInfo struct {
	_             struct{} `cbor:",toarray"`
	Path          string
	Kind          uint8
	Size          int64
	Mode          uint32
	ModTime       int64
	Inode, Dev    uint64
	SymlinkTarget string
	Chunks        []cborChunk
	Deleted       bool
	Version       []cborCounter
	Author        string
	Seq           uint64
	LogHeads      [][]byte
	Signature     []byte
}

func toCBOR(fi *FileInfo) cborFileInfo {
	c := cborFileInfo{Path: fi.Path, Kind: uint8(fi.Kind), Size: fi.Size, Mode: fi.Mode, ModTime: fi.ModTime,
		Inode: fi.Inode, Dev: fi.Dev, SymlinkTarget: fi.SymlinkTarget, Deleted: fi.Deleted,
		Author: string(fi.Author), Seq: fi.Seq, Signature: fi.Signature}
	for _, ch := range fi.Chunks {
		c.Chunks = append(c.Chunks, cborChunk{CID: ch.CID.Bytes(), Size: ch.Size})
	}
	for _, v := range fi.Version.Counters {
		c.Version = append(c.Version, cborCounter{Device: string(v.Device), Value: v.Value})
	}
	for _, h := range fi.LogHeads {
		c.LogHeads = append(c.LogHeads, h.Bytes())
	}
	return c
}

func fromCBOR(c *cborFileInfo) (FileInfo, error) {
	fi := FileInfo{Path: c.Path, Kind: Kind(c.Kind), Size: c.Size, Mode: c.Mode, ModTime: c.ModTime,
		Inode: c.Inode, Dev: c.Dev, SymlinkTarget: c.SymlinkTarget, Deleted: c.Deleted,
		Author: DeviceID(c.Author), Seq: c.Seq, Signature: c.Signature}
	fi.Chunks = make([]ChunkRef, len(c.Chunks))
	for i, ch := range c.Chunks {
		id, err := cid.Cast(ch.CID)
		if err != nil {
			return FileInfo{}, err
		}
		fi.Chunks[i] = ChunkRef{CID: id, Size: ch.Size}
	}
	for _, v := range c.Version {
		fi.Version.Counters = append(fi.Version.Counters, Counter{Device: DeviceID(v.Device), Value: v.Value})
	}
	for _, h := range c.LogHeads {
		id, err := cid.Cast(h)
		if err != nil {
			return FileInfo{}, err
		}
		fi.LogHeads = append(fi.LogHeads, id)
	}
	return fi, checkFileInfo(&fi)
}

// BenchmarkFileInfoCodec encodes and decodes a FileInfo with 4,096 chunks
// with the index's binary codec and, as the baseline it was chosen over,
// CBOR in Core Deterministic mode. bytes/record is the stored size.
func BenchmarkFileInfoCodec(b *testing.B) {
	fi := benchFileInfo()
	enc, err := encodeFileInfo(&fi)
	if err != nil {
		b.Fatal(err)
	}
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		b.Fatal(err)
	}
	cb, err := em.Marshal(toCBOR(&fi))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("binary/encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeFileInfo(&fi); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(enc)), "bytes/record")
	})
	b.Run("binary/decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeFileInfo(enc); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(enc)), "bytes/record")
	})
	b.Run("cbor/encode", func(b *testing.B) {
		for b.Loop() {
			if err := checkFileInfo(&fi); err != nil {
				b.Fatal(err)
			}
			if _, err := em.Marshal(toCBOR(&fi)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(cb)), "bytes/record")
	})
	b.Run("cbor/decode", func(b *testing.B) {
		for b.Loop() {
			var c cborFileInfo
			if err := cbor.Unmarshal(cb, &c); err != nil {
				b.Fatal(err)
			}
			if _, err := fromCBOR(&c); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(cb)), "bytes/record")
	})
}

// smallFiles returns n small files' versions, one chunk each, as a scan
// of a tree of small files produces them.
func smallFiles(n int) []FileInfo {
	out := make([]FileInfo, n)
	for i := range out {
		out[i] = FileInfo{
			Path:    fmt.Sprintf("dir%03d/file%05d.txt", i%100, i),
			Kind:    KindFile,
			Size:    4096,
			Mode:    0o644,
			ModTime: 1_700_000_000_000_000_000 + int64(i),
			Inode:   uint64(1_000_000 + i),
			Dev:     2049,
			Chunks:  []ChunkRef{{CID: ChunkCID([]byte(fmt.Sprint(i))), Size: 4096}},
		}
	}
	return out
}

const benchSmallFiles = 10_000

// BenchmarkCommitSmallFiles commits one batch of 10,000 small-file records
// into a fresh database: the index's share of a cold scan.
func BenchmarkCommitSmallFiles(b *testing.B) {
	files := smallFiles(benchSmallFiles)
	for b.Loop() {
		b.StopTimer()
		db, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		f := db.Folder("bench")
		b.StartTimer()
		batch := f.Batch()
		for _, fi := range files {
			batch.PutLocal(fi, "local-device")
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(benchSmallFiles), "records/op")
}

// BenchmarkWarmVsColdSmallFiles measures, in the same run, the index work of
// a cold scan of 10,000 small files (one committed batch into an empty
// index) and of a warm rescan where nothing changed (reading every entry
// back, once by Walk and once by one Get per path), and reports each warm
// read as a ratio of the cold commit.
func BenchmarkWarmVsColdSmallFiles(b *testing.B) {
	files := smallFiles(benchSmallFiles)
	var cold, walk, gets time.Duration
	for b.Loop() {
		db, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		f := db.Folder("bench")
		start := time.Now()
		batch := f.Batch()
		for _, fi := range files {
			batch.PutLocal(fi, "local-device")
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		cold += time.Since(start)

		start = time.Now()
		n := 0
		if err := f.Walk("", func(FileInfo) error { n++; return nil }); err != nil || n != benchSmallFiles {
			b.Fatalf("walk: %d, %v", n, err)
		}
		walk += time.Since(start)

		start = time.Now()
		for _, fi := range files {
			if _, ok, err := f.Get(fi.Path); !ok || err != nil {
				b.Fatalf("get %q: %v %v", fi.Path, ok, err)
			}
		}
		gets += time.Since(start)
		db.Close()
	}
	n := float64(b.N)
	b.ReportMetric(float64(cold.Milliseconds())/n, "cold-commit-ms")
	b.ReportMetric(float64(walk.Milliseconds())/n, "warm-walk-ms")
	b.ReportMetric(float64(gets.Milliseconds())/n, "warm-gets-ms")
	b.ReportMetric(float64(walk)/float64(cold), "walk/cold")
	b.ReportMetric(float64(gets)/float64(cold), "gets/cold")
}
