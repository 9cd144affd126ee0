package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// codecSamples are the FileInfos the codec tables and fuzz seeds use.
func codecSamples() []FileInfo {
	return []FileInfo{
		fullFileInfo("dir/file.bin", 3),
		fullFileInfo("many", 200),
		{Path: "d", Kind: KindDir, Mode: 0o755, Author: "me", Seq: 1, Version: vv("me", 1)},
		{Path: "l", Kind: KindSymlink, SymlinkTarget: "/abs/target", Author: "me", Seq: 2},
		{Path: "t", Kind: KindFile, Deleted: true, Size: 0, ModTime: math.MinInt64, Author: "me", Seq: math.MaxUint64},
		{Path: "big", Kind: KindFile, Size: math.MaxInt64, Mode: math.MaxUint32, ModTime: math.MaxInt64, Inode: math.MaxUint64, Dev: math.MaxUint64, Author: "x", Seq: 3},
	}
}

// TestFileInfoEncodingBytes pins the version-1 format: these bytes must keep
// decoding to the same value for as long as version 1 is readable.
func TestFileInfoEncodingBytes(t *testing.T) {
	fi := FileInfo{Path: "a", Kind: KindDir, Mode: 0o755, ModTime: -1, Version: vv("d", 1), Author: "d", Seq: 1}
	want := []byte{
		0x01,      // format version 1
		0x01, 'a', // path
		0x02,       // kind: dir
		0x00,       // flags: not deleted
		0x00,       // size 0
		0xed, 0x03, // mode 0o755 = 493, uvarint
		0x01,                  // mtime -1, zig-zag
		0x00,                  // inode
		0x00,                  // dev
		0x00,                  // symlink target ""
		0x00,                  // no chunks
		0x01, 0x01, 'd', 0x01, // vector: 1 counter, device "d" = 1
		0x01, 'd', // author "d"
		0x01, // seq 1
		0x00, // no log heads
		0x00, // no signature
	}
	got, err := encodeFileInfo(&fi)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got % x\nwant % x", got, want)
	}
	back, err := decodeFileInfo(want)
	if err != nil || !reflect.DeepEqual(back, fi) {
		t.Fatalf("decoding = %+v, %v", back, err)
	}
}

func TestDecodeFileInfoRejectsCorruptRecords(t *testing.T) {
	good, err := encodeFileInfo(&FileInfo{Path: "a", Kind: KindFile, Size: 4, Author: "d", Seq: 1,
		Chunks: []ChunkRef{{ChunkCID([]byte("x")), 4}}, Version: vv("d", 1)})
	if err != nil {
		t.Fatal(err)
	}
	patch := func(i int, b byte) []byte { c := bytes.Clone(good); c[i] = b; return c }
	hugeCount := append([]byte{1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 0}, binary.AppendUvarint(nil, 1<<40)...)
	manyChunks := append([]byte{1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 0}, binary.AppendUvarint(nil, MaxChunksPerFile)...)
	cases := map[string][]byte{
		"empty":              nil,
		"unknown version":    patch(0, 2),
		"zero path length":   patch(1, 0),
		"unknown kind":       patch(3, 7),
		"kind zero":          patch(3, 0),
		"unknown flag":       patch(4, 0x80),
		"trailing byte":      append(bytes.Clone(good), 0),
		"truncated":          good[:len(good)-1],
		"huge chunk count":   hugeCount,
		"count beyond bytes": manyChunks,
		"absolute path":      patch(2, '/'),
	}
	// A bad CID: the chunk's CID bytes start after the 11 fixed bytes and
	// the count; corrupt its version varint.
	cases["bad CID"] = patch(13, 0x05)
	sizeTooBig := []byte{1, 1, 'a', 1, 0}
	sizeTooBig = binary.AppendUvarint(sizeTooBig, math.MaxInt64+1)
	cases["size beyond int64"] = sizeTooBig
	unsorted, _ := encodeFileInfo(&FileInfo{Path: "a", Kind: KindFile, Author: "d", Seq: 1, Version: vv("a", 1, "b", 1)})
	// The vector's devices "a" and "b" appear in order; swap them.
	i := bytes.Index(unsorted, []byte{1, 'a', 1, 1, 'b'})
	unsorted[i+1], unsorted[i+4] = 'b', 'a'
	cases["unsorted vector"] = unsorted
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := decodeFileInfo(b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode = %v, want ErrCorrupt", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("decoding a corrupt record took %v", d)
			}
		})
	}
}

func TestSmallRecordCodecs(t *testing.T) {
	if p, err := decodePathRecord(encodePathRecord("a/b")); err != nil || p != "a/b" {
		t.Fatalf("path record: %q, %v", p, err)
	}
	if off, n, err := decodeChunkLoc(encodeChunkLoc(1<<40, MaxChunkLength)); err != nil || off != 1<<40 || n != MaxChunkLength {
		t.Fatalf("chunk loc: %d, %d, %v", off, n, err)
	}
	if s, err := decodeSeqRecord(encodeSeqRecord(math.MaxUint64)); err != nil || s != math.MaxUint64 {
		t.Fatalf("seq record: %d, %v", s, err)
	}
	for name, c := range map[string]struct {
		b   []byte
		dec func([]byte) error
	}{
		"path empty":          {[]byte{1}, func(b []byte) error { _, err := decodePathRecord(b); return err }},
		"path bad version":    {[]byte{9, 'a'}, func(b []byte) error { _, err := decodePathRecord(b); return err }},
		"path absolute":       {[]byte{1, '/'}, func(b []byte) error { _, err := decodePathRecord(b); return err }},
		"loc zero length":     {[]byte{1, 0, 0}, func(b []byte) error { _, _, err := decodeChunkLoc(b); return err }},
		"loc huge length":     {binary.AppendUvarint([]byte{1, 0}, MaxChunkLength+1), func(b []byte) error { _, _, err := decodeChunkLoc(b); return err }},
		"loc trailing":        {[]byte{1, 0, 1, 0}, func(b []byte) error { _, _, err := decodeChunkLoc(b); return err }},
		"loc truncated":       {[]byte{1, 0x80}, func(b []byte) error { _, _, err := decodeChunkLoc(b); return err }},
		"seq empty":           {nil, func(b []byte) error { _, err := decodeSeqRecord(b); return err }},
		"seq overflow varint": {[]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, func(b []byte) error { _, err := decodeSeqRecord(b); return err }},
		"log op empty":        {[]byte{1}, func(b []byte) error { _, err := decodeLogOp(b); return err }},
		"log op bad version":  {[]byte{0, 1}, func(b []byte) error { _, err := decodeLogOp(b); return err }},
		"peers bad count":     {[]byte{1, 5, 1, 'a'}, func(b []byte) error { _, err := decodePeerAddrs(b); return err }},
		"peers empty addr":    {[]byte{1, 1, 0}, func(b []byte) error { _, err := decodePeerAddrs(b); return err }},
	} {
		if err := c.dec(c.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestKeyParsers(t *testing.T) {
	fp := folderPrefix(ksFile, "fold")
	if folder, path, err := parseFileKey(fileKey(fp, "a/b")); err != nil || folder != "fold" || path != "a/b" {
		t.Fatalf("file key: %q %q %v", folder, path, err)
	}
	sp := folderPrefix(ksSeq, "fold")
	if folder, a, s, err := parseSeqKey(seqKey(sp, "dev", 1<<50)); err != nil || folder != "fold" || a != "dev" || s != 1<<50 {
		t.Fatalf("seq key: %q %q %d %v", folder, a, s, err)
	}
	cp := folderPrefix(ksChunk, "fold")
	c := ChunkCID([]byte("x")).KeyString()
	if folder, cb, path, err := parseChunkKey(chunkKey(cp, c, "p")); err != nil || folder != "fold" || cb != c || path != "p" {
		t.Fatalf("chunk key: %q %q %v", folder, path, err)
	}
	bad := map[string]func() error{
		"file key without path":  func() error { _, _, err := parseFileKey(fp); return err },
		"file key wrong space":   func() error { _, _, err := parseFileKey(fileKey(sp, "a")); return err },
		"file key folder length": func() error { _, _, err := parseFileKey([]byte{ksFile, 50, 'a'}); return err },
		"file key empty folder":  func() error { _, _, err := parseFileKey([]byte{ksFile, 0, 'a'}); return err },
		"seq key short": func() error {
			_, _, _, err := parseSeqKey(seqKey(sp, "dev", 1)[:len(seqKey(sp, "dev", 1))-1])
			return err
		},
		"seq key zero":      func() error { _, _, _, err := parseSeqKey(seqKey(sp, "dev", 0)); return err },
		"seq key no author": func() error { _, _, _, err := parseSeqKey(seqKey(sp, "", 1)); return err },
		"chunk key no path": func() error { _, _, _, err := parseChunkKey(chunkPrefix(cp, c)); return err },
		"chunk key no cid":  func() error { _, _, _, err := parseChunkKey(chunkKey(cp, "", "p")); return err },
		"empty key":         func() error { _, _, err := parseFileKey(nil); return err },
	}
	for name, f := range bad {
		if err := f(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	if got := prefixEnd([]byte{1, 0xff, 0xff}); !bytes.Equal(got, []byte{2}) {
		t.Fatalf("prefixEnd = %x", got)
	}
	if got := prefixEnd([]byte{0xff}); got != nil {
		t.Fatalf("prefixEnd(ff) = %x", got)
	}
}

func FuzzDecodeFileInfo(f *testing.F) {
	for _, fi := range codecSamples() {
		b, err := encodeFileInfo(&fi)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr, hdrErr := decodeFileInfoHeader(b)
		if hdrErr != nil && !errors.Is(hdrErr, ErrCorrupt) {
			t.Fatalf("header error not wrapping ErrCorrupt: %v", hdrErr)
		}
		fi, err := decodeFileInfo(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		// A full record's header decodes to the same leading fields.
		if hdrErr != nil || !reflect.DeepEqual(hdr, headerOf(fi)) {
			t.Fatalf("header decode %+v (%v) disagrees with full decode %+v", hdr, hdrErr, headerOf(fi))
		}
		// Whatever decodes is storable and reads back the same.
		enc, err := encodeFileInfo(&fi)
		if err != nil {
			t.Fatalf("decoded value not encodable: %v", err)
		}
		back, err := decodeFileInfo(enc)
		if err != nil || !reflect.DeepEqual(back, fi) {
			t.Fatalf("re-encoding changed the value: %v", err)
		}
	})
}

func FuzzDecodePathRecord(f *testing.F) {
	f.Add(encodePathRecord("a/b"))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePathRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(encodePathRecord(p), b) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzDecodeChunkLoc(f *testing.F) {
	f.Add(encodeChunkLoc(0, 1))
	f.Add(encodeChunkLoc(math.MaxInt64, MaxChunkLength))
	f.Fuzz(func(t *testing.T, b []byte) {
		off, n, err := decodeChunkLoc(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if off < 0 || n == 0 || n > MaxChunkLength {
			t.Fatalf("accepted offset %d length %d", off, n)
		}
		if o2, n2, err := decodeChunkLoc(encodeChunkLoc(off, n)); err != nil || o2 != off || n2 != n {
			t.Fatal("round trip")
		}
	})
}

func FuzzDecodeSeqRecord(f *testing.F) {
	f.Add(encodeSeqRecord(0))
	f.Add(encodeSeqRecord(math.MaxUint64))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSeqRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if s2, err := decodeSeqRecord(encodeSeqRecord(s)); err != nil || s2 != s {
			t.Fatal("round trip")
		}
	})
}

func FuzzDecodeLogOp(f *testing.F) {
	f.Add(encodeLogOp([]byte("op")))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := decodeLogOp(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(encodeLogOp(raw), b) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzDecodePeerAddrs(f *testing.F) {
	v, _ := encodePeerAddrs([][]byte{[]byte("/ip4/1.2.3.4/tcp/1"), {1, 2, 3}})
	f.Add(v)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		addrs, err := decodePeerAddrs(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		if len(addrs) > MaxPeerAddrs {
			t.Fatalf("accepted %d addresses", len(addrs))
		}
		if len(addrs) == 0 {
			return
		}
		enc, err := encodePeerAddrs(addrs)
		if err != nil {
			t.Fatalf("decoded list not encodable: %v", err)
		}
		if back, err := decodePeerAddrs(enc); err != nil || !reflect.DeepEqual(back, addrs) {
			t.Fatal("round trip")
		}
	})
}

func FuzzParseFileKey(f *testing.F) {
	f.Add(fileKey(folderPrefix(ksFile, "folder"), "a/b"))
	f.Add([]byte{ksFile, 0})
	f.Fuzz(func(t *testing.T, k []byte) {
		folder, path, err := parseFileKey(k)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		f2, p2, err := parseFileKey(fileKey(folderPrefix(ksFile, folder), path))
		if err != nil || f2 != folder || p2 != path {
			t.Fatal("round trip")
		}
	})
}

func FuzzParseSeqKey(f *testing.F) {
	f.Add(seqKey(folderPrefix(ksSeq, "folder"), "dev", 7))
	f.Add(seqKey(folderPrefix(ksSeq, "f"), "d", math.MaxUint64))
	f.Fuzz(func(t *testing.T, k []byte) {
		folder, a, s, err := parseSeqKey(k)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		f2, a2, s2, err := parseSeqKey(seqKey(folderPrefix(ksSeq, folder), a, s))
		if err != nil || f2 != folder || a2 != a || s2 != s {
			t.Fatal("round trip")
		}
	})
}

func FuzzParseChunkKey(f *testing.F) {
	f.Add(chunkKey(folderPrefix(ksChunk, "folder"), ChunkCID([]byte("x")).KeyString(), "a/b"))
	f.Add([]byte{ksChunk, 1, 'f', 0})
	f.Fuzz(func(t *testing.T, k []byte) {
		folder, c, path, err := parseChunkKey(k)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatal(err)
			}
			return
		}
		f2, c2, p2, err := parseChunkKey(chunkKey(folderPrefix(ksChunk, folder), c, path))
		if err != nil || f2 != folder || c2 != c || p2 != path {
			t.Fatal("round trip")
		}
	})
}

// headerOf keeps the fields decodeFileInfoHeader fills.
func headerOf(fi FileInfo) FileInfo {
	return FileInfo{Path: fi.Path, Kind: fi.Kind, Deleted: fi.Deleted, Size: fi.Size, Mode: fi.Mode,
		ModTime: fi.ModTime, Inode: fi.Inode, Dev: fi.Dev, SymlinkTarget: fi.SymlinkTarget}
}

func TestWalkHeadersMatchesWalk(t *testing.T) {
	idx := openTestIndex(t, "f")
	b := idx.Batch()
	for _, fi := range codecSamples() {
		b.Put(fi)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var full, hdrs []FileInfo
	if err := idx.Walk("", func(fi FileInfo) error { full = append(full, headerOf(fi)); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := idx.WalkHeaders("", func(fi FileInfo) error { hdrs = append(hdrs, fi); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(full) == 0 || !reflect.DeepEqual(full, hdrs) {
		t.Fatalf("WalkHeaders = %+v\nWalk headers = %+v", hdrs, full)
	}
}
