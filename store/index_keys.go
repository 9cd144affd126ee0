package store

import (
	"encoding/binary"
	"math"
)

// Key spaces of the one goleveldb database of a node home. Every key starts
// with one of these bytes; the numbers are part of the on-disk format. The
// layout is documented in index.go.
const (
	ksFile   byte = 0x01 // folder, path -> FileInfo
	ksSeq    byte = 0x02 // folder, author, seq -> path
	ksChunk  byte = 0x03 // folder, CID, path -> offset, length
	ksMeta   byte = 0x04 // folder, author -> highest seq
	ksLogOp  byte = 0x05 // folder, op id -> raw op
	ksPeer   byte = 0x06 // peer id -> addresses
	seqBytes      = 8    // big-endian sequence in ksSeq keys, so keys sort by seq
)

// MaxFolderIDLength bounds a folder ID (a CID string is about 60 bytes).
const MaxFolderIDLength = 1024

// appendLP appends a uvarint length and s.
func appendLP(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// folderPrefix is ks | lp(folder): the start of every key of that folder in
// that key space.
func folderPrefix(ks byte, folder string) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(folder)+64)
	b = append(b, ks)
	return appendLP(b, folder)
}

func fileKey(folderPfx []byte, path string) []byte {
	b := make([]byte, 0, len(folderPfx)+len(path))
	b = append(b, folderPfx...)
	return append(b, path...)
}

// seqPrefix is the start of every author-index key of one author.
func seqPrefix(folderPfx []byte, author DeviceID) []byte {
	b := make([]byte, 0, len(folderPfx)+binary.MaxVarintLen64+len(author)+seqBytes)
	b = append(b, folderPfx...)
	return appendLP(b, string(author))
}

func seqKey(folderPfx []byte, author DeviceID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(seqPrefix(folderPfx, author), seq)
}

// chunkPrefix is the start of every chunk-map key of one CID (given as its
// binary form, cid.KeyString()).
func chunkPrefix(folderPfx []byte, cidBytes string) []byte {
	b := make([]byte, 0, len(folderPfx)+1+len(cidBytes)+64)
	b = append(b, folderPfx...)
	return appendLP(b, cidBytes)
}

func chunkKey(folderPfx []byte, cidBytes, path string) []byte {
	return append(chunkPrefix(folderPfx, cidBytes), path...)
}

func metaKey(folderPfx []byte, author DeviceID) []byte {
	b := make([]byte, 0, len(folderPfx)+len(author))
	b = append(b, folderPfx...)
	return append(b, author...)
}

// splitFolderKey checks that key starts with key space ks and a well-formed
// folder ID and returns the folder ID and the rest of the key.
func splitFolderKey(ks byte, key []byte) (folder string, rest []byte, err error) {
	if len(key) == 0 || key[0] != ks {
		return "", nil, corruptf("key: wrong key space")
	}
	n, w := binary.Uvarint(key[1:])
	if w <= 0 || n == 0 || n > MaxFolderIDLength || n > uint64(len(key)-1-w) {
		return "", nil, corruptf("key: bad folder ID length")
	}
	start := 1 + w
	return string(key[start : start+int(n)]), key[start+int(n):], nil
}

func checkKeyPath(p []byte) error {
	if len(p) == 0 || len(p) > MaxIndexPathLength || p[0] == '/' {
		return corruptf("key: path length %d not in 1..%d or absolute", len(p), MaxIndexPathLength)
	}
	return nil
}

// parseFileKey returns the folder and path of a ksFile key.
func parseFileKey(key []byte) (folder, path string, err error) {
	folder, rest, err := splitFolderKey(ksFile, key)
	if err != nil {
		return "", "", err
	}
	if err := checkKeyPath(rest); err != nil {
		return "", "", err
	}
	return folder, string(rest), nil
}

// parseSeqKey returns the folder, author and sequence of a ksSeq key.
func parseSeqKey(key []byte) (folder string, author DeviceID, seq uint64, err error) {
	folder, rest, err := splitFolderKey(ksSeq, key)
	if err != nil {
		return "", "", 0, err
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n == 0 || n > MaxDeviceIDLength || uint64(len(rest)-w) != n+seqBytes {
		return "", "", 0, corruptf("key: bad author index key")
	}
	author = DeviceID(rest[w : w+int(n)])
	seq = binary.BigEndian.Uint64(rest[w+int(n):])
	if seq == 0 {
		return "", "", 0, corruptf("key: sequence 0 in author index")
	}
	return folder, author, seq, nil
}

// parseChunkKey returns the folder, binary CID and path of a ksChunk key.
func parseChunkKey(key []byte) (folder, cidBytes, path string, err error) {
	folder, rest, err := splitFolderKey(ksChunk, key)
	if err != nil {
		return "", "", "", err
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n == 0 || n > MaxCIDLength || n > uint64(len(rest)-w) {
		return "", "", "", corruptf("key: bad chunk map key")
	}
	cidBytes = string(rest[w : w+int(n)])
	p := rest[w+int(n):]
	if err := checkKeyPath(p); err != nil {
		return "", "", "", err
	}
	return folder, cidBytes, string(p), nil
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (nil if there is none: p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < math.MaxUint8 {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
