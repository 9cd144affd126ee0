package store

import (
	"github.com/ipfs/go-cid"
)

// DeviceID identifies a device. It is opaque to store: the node fills it with
// the bytes of the device's libp2p peer ID. The empty DeviceID is "no device".
type DeviceID string

// Kind is what a path is on disk.
type Kind uint8

// The kinds of entry the index records. Values are part of the on-disk format.
const (
	KindFile    Kind = 1
	KindDir     Kind = 2
	KindSymlink Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	}
	return "unknown"
}

// ChunkRef is one chunk of a file: its content address and length. A chunk's
// offset in the file is the sum of the lengths before it.
type ChunkRef struct {
	CID  cid.Cid
	Size uint32
}

// FileInfo is one version of one path in a folder: what the index stores under
// (folder, path). A file's content identity is its ordered chunk list plus Size.
type FileInfo struct {
	Path    string // slash-separated, relative to the folder root, never "" or absolute
	Kind    Kind
	Size    int64
	Mode    uint32 // permission bits only (fs.FileMode & fs.ModePerm)
	ModTime int64  // Unix nanoseconds
	Inode   uint64 // local only: used to skip unchanged files, never compared across devices
	Dev     uint64 // local only

	SymlinkTarget string     // for KindSymlink: the link's target, recorded, never followed
	Chunks        []ChunkRef // for KindFile

	Deleted bool          // a tombstone
	Version VersionVector // causal history of this path

	Author DeviceID // the device that made this version
	Seq    uint64   // Author's change sequence number for this version

	// Filled in by the sync layer: the rights-log heads this version was made
	// under and the author's signature. store keeps them; it does not check them.
	LogHeads  []cid.Cid
	Signature []byte
}
