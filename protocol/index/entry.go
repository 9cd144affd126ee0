package index

import (
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// Limits of one file version.
const (
	// MaxPathLength bounds a path in bytes: 4096, Linux's PATH_MAX and the
	// scanner's limit (store.MaxPathLength on the scanner branch; switch to
	// it once merged).
	MaxPathLength = 4096
	// MaxChunksPerFile bounds a file's chunk list: 2^20 chunks, 256 GiB at
	// the average chunk size; the same as store's index limit (index branch)
	// so that every stored version can travel.
	MaxChunksPerFile = 1 << 20
	// MaxEntrySize bounds one encoded entry: a full chunk list (CID with its
	// length byte, size varint of at most 3 bytes) plus path, vector, heads
	// and signature.
	MaxEntrySize = MaxChunksPerFile*(wire.MaxCIDLength+4) + 1<<20
)

// chunkPrealloc bounds the chunk-list capacity allocated before chunks are
// decoded.
const chunkPrealloc = 1024

// Chunk is the wire form of a store.ChunkRef.
type Chunk struct {
	CID  cid.Cid
	Size uint32
}

// Entry is the wire form of one signed file version: store.FileInfo without
// its local-only fields (Inode, Dev).
type Entry struct {
	Path          string
	Kind          uint8
	Size          int64
	Mode          uint32
	ModTime       int64
	SymlinkTarget string
	Chunks        []Chunk
	Deleted       bool
	Version       []wire.Counter
	Author        []byte
	Seq           uint64
	LogHeads      []cid.Cid
	Signature     []byte
}

// ToWire converts a version to its wire form, dropping local-only fields.
func ToWire(fi store.FileInfo) Entry {
	e := Entry{
		Path: fi.Path, Kind: uint8(fi.Kind), Size: fi.Size, Mode: fi.Mode, ModTime: fi.ModTime,
		SymlinkTarget: fi.SymlinkTarget, Deleted: fi.Deleted,
		Version: wire.VectorToWire(fi.Version), Author: []byte(fi.Author), Seq: fi.Seq,
		LogHeads: fi.LogHeads, Signature: fi.Signature,
	}
	if len(fi.Chunks) > 0 {
		e.Chunks = make([]Chunk, len(fi.Chunks))
		for i, c := range fi.Chunks {
			e.Chunks[i] = Chunk{CID: c.CID, Size: c.Size}
		}
	}
	return e
}

// FromWire converts back; Inode and Dev are zero.
func FromWire(e Entry) store.FileInfo {
	fi := store.FileInfo{
		Path: e.Path, Kind: store.Kind(e.Kind), Size: e.Size, Mode: e.Mode, ModTime: e.ModTime,
		SymlinkTarget: e.SymlinkTarget, Deleted: e.Deleted,
		Version: wire.VectorFromWire(e.Version), Author: store.DeviceID(e.Author), Seq: e.Seq,
		LogHeads: e.LogHeads, Signature: e.Signature,
	}
	if len(e.Chunks) > 0 {
		fi.Chunks = make([]store.ChunkRef, len(e.Chunks))
		for i, c := range e.Chunks {
			fi.Chunks[i] = store.ChunkRef{CID: c.CID, Size: c.Size}
		}
	}
	return fi
}

// appendShared encodes the fields a signature covers: everything but the
// signature, in a fixed order.
func appendShared(enc *wire.Encoder, fi store.FileInfo) {
	enc.String(fi.Path)
	enc.Byte(byte(fi.Kind))
	enc.Varint(fi.Size)
	enc.Uvarint(uint64(fi.Mode))
	enc.Varint(fi.ModTime)
	enc.String(fi.SymlinkTarget)
	enc.Uvarint(uint64(len(fi.Chunks)))
	for _, c := range fi.Chunks {
		enc.CID(c.CID)
		enc.Uvarint(uint64(c.Size))
	}
	enc.Bool(fi.Deleted)
	enc.Vector(fi.Version)
	enc.String(string(fi.Author))
	enc.Uvarint(fi.Seq)
	enc.CIDs(fi.LogHeads)
}

// appendEntry encodes a full entry: shared fields then signature.
func appendEntry(enc *wire.Encoder, fi store.FileInfo) {
	appendShared(enc, fi)
	enc.Bytes(fi.Signature)
}

// decodeEntry reads one entry and validates its fields.
func decodeEntry(d *wire.Decoder) store.FileInfo {
	var fi store.FileInfo
	fi.Path = d.String(MaxPathLength, "path")
	fi.Kind = store.Kind(d.Byte())
	fi.Size = d.Varint()
	mode := d.Uvarint()
	fi.ModTime = d.Varint()
	fi.SymlinkTarget = d.String(MaxPathLength, "symlink target")
	if n := d.Count(MaxChunksPerFile, "chunks"); n > 0 {
		// Grow as chunks decode rather than trusting the count: a count is
		// only checked against the bytes left, and a ChunkRef in memory is
		// larger than the smallest bytes that could claim to encode one.
		fi.Chunks = make([]store.ChunkRef, 0, min(n, chunkPrealloc))
		for range n {
			c := d.CID()
			size := d.Uvarint()
			if d.Err() != nil {
				return store.FileInfo{}
			}
			if size == 0 || size > wire.MaxChunkSize {
				d.Fail("chunk size out of range")
				return store.FileInfo{}
			}
			fi.Chunks = append(fi.Chunks, store.ChunkRef{CID: c, Size: uint32(size)})
		}
	}
	fi.Deleted = d.Bool()
	fi.Version = d.Vector("version")
	fi.Author = store.DeviceID(d.Device("author"))
	fi.Seq = d.Uvarint()
	fi.LogHeads = d.SortedCIDs(wire.MaxLogHeads, "log heads")
	fi.Signature = append([]byte(nil), d.Bytes(wire.MaxSignatureLength, "signature")...)
	if d.Err() != nil {
		return store.FileInfo{}
	}
	if mode > 0o777 {
		d.Fail("mode has bits beyond permissions")
		return store.FileInfo{}
	}
	fi.Mode = uint32(mode)
	if err := Validate(fi); err != nil {
		d.Fail(err.Error())
		return store.FileInfo{}
	}
	return fi
}

// Validate checks the fields of a version that a decoder can check without
// the rights log: a clean relative path, a known kind, a size that matches
// the chunk list, a valid version vector, an author, a sequence and sorted,
// unique log heads.
func Validate(fi store.FileInfo) error {
	if err := ValidPath(fi.Path); err != nil {
		return err
	}
	switch fi.Kind {
	case store.KindFile, store.KindDir, store.KindSymlink:
	default:
		return fmt.Errorf("kind %d", fi.Kind)
	}
	if fi.Size < 0 {
		return fmt.Errorf("negative size")
	}
	if fi.Kind != store.KindFile && len(fi.Chunks) > 0 {
		return fmt.Errorf("%s with chunks", fi.Kind)
	}
	if fi.Kind != store.KindSymlink && fi.SymlinkTarget != "" {
		return fmt.Errorf("%s with a symlink target", fi.Kind)
	}
	if fi.Kind == store.KindFile && !fi.Deleted {
		var sum int64
		for _, c := range fi.Chunks {
			sum += int64(c.Size)
		}
		if sum != fi.Size {
			return fmt.Errorf("size %d but chunks add up to %d", fi.Size, sum)
		}
	}
	if !fi.Version.Valid() || len(fi.Version.Counters) == 0 {
		return fmt.Errorf("invalid or empty version vector")
	}
	if _, err := peer.IDFromBytes([]byte(fi.Author)); err != nil {
		return fmt.Errorf("author is not a device ID")
	}
	if fi.Seq == 0 {
		return fmt.Errorf("sequence 0")
	}
	if len(fi.LogHeads) > wire.MaxLogHeads {
		return fmt.Errorf("%d log heads", len(fi.LogHeads))
	}
	for i := 1; i < len(fi.LogHeads); i++ {
		if fi.LogHeads[i-1].KeyString() >= fi.LogHeads[i].KeyString() {
			return fmt.Errorf("log heads not sorted and unique (use wire.SortCIDs)")
		}
	}
	return nil
}

// ValidPath accepts slash-separated relative paths without empty, "." or
// ".." elements, NUL bytes or backslashes, of at most MaxPathLength bytes.
func ValidPath(p string) error {
	if p == "" || len(p) > MaxPathLength {
		return fmt.Errorf("path length %d", len(p))
	}
	if strings.ContainsAny(p, "\x00\\") {
		return fmt.Errorf("path %q has NUL or backslash", p)
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("path %q is not clean and relative", p)
		}
	}
	return nil
}
