package index

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/golden"
	"github.com/meshfold/meshfold/protocol/internal/testkeys"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors in testdata/")

const testFolder = "bafyreigenesisfolder"

// version makes a signed file version by key's device.
func version(t testing.TB, key crypto.PrivKey, path string, seq uint64, data ...string) store.FileInfo {
	t.Helper()
	id, _ := peer.IDFromPrivateKey(key)
	fi := store.FileInfo{
		Path: path, Kind: store.KindFile, Mode: 0o644, ModTime: 1_700_000_000_000_000_000 + int64(seq),
		Inode: 99, Dev: 7,
		Version:  store.VersionVector{}.Update(store.DeviceID(id), seq),
		Author:   store.DeviceID(id),
		Seq:      seq,
		LogHeads: wire.SortCIDs([]cid.Cid{store.ChunkCID([]byte("op-a")), store.ChunkCID([]byte("op-b"))}),
	}
	for _, d := range data {
		fi.Chunks = append(fi.Chunks, store.ChunkRef{CID: store.ChunkCID([]byte(d)), Size: uint32(len(d))})
		fi.Size += int64(len(d))
	}
	sig, err := SignVersion(testFolder, fi, key)
	if err != nil {
		t.Fatal(err)
	}
	fi.Signature = sig
	return fi
}

func sampleEntries(t testing.TB) []store.FileInfo {
	key, id := testkeys.Key(t, 1)
	file := version(t, key, "docs/report.txt", 3, "hello ", "world")
	link := store.FileInfo{Path: "docs/latest", Kind: store.KindSymlink, SymlinkTarget: "report.txt", Mode: 0o777,
		Version: store.VersionVector{}.Update(store.DeviceID(id), 4), Author: store.DeviceID(id), Seq: 4, Deleted: true}
	sig, err := SignVersion(testFolder, link, key)
	if err != nil {
		t.Fatal(err)
	}
	link.Signature = sig
	return []store.FileInfo{file, link}
}

func TestGolden(t *testing.T) {
	_, id := testkeys.Key(t, 1)
	fis := sampleEntries(t)
	batch := Batch{Entries: []Entry{ToWire(fis[0]), ToWire(fis[1])}}
	vectors := map[string][]byte{
		"request_v1": wire.AppendFrame(nil, wire.TypeIndexRequest, Request{Folder: testFolder, Device: store.DeviceID(id), FromSeq: 2, Limit: 500}.Marshal()),
		"batch_v1":   wire.AppendFrame(nil, wire.TypeIndexBatch, batch.Marshal()),
		"end_v1":     wire.AppendFrame(nil, wire.TypeIndexEnd, End{Through: 4, More: true}.Marshal()),
	}
	for name, b := range vectors {
		golden.Check(t, name, b, *update)
	}
	// Old vectors keep decoding, to the same values, and verify.
	f, err := wire.ReadFrameBytes(golden.Read(t, "batch_v1"), clientLimits)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalBatch(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := AuthorKey(store.DeviceID(id))
	for i, e := range got.Entries {
		fi := FromWire(e)
		if err := VerifyVersion(testFolder, fi, pub); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want := fis[i]
		want.Inode, want.Dev = 0, 0
		if fmt.Sprint(fi) != fmt.Sprint(want) {
			t.Fatalf("entry %d:\n got %+v\nwant %+v", i, fi, want)
		}
	}
	f, _ = wire.ReadFrameBytes(golden.Read(t, "request_v1"), serverLimits)
	if r, err := UnmarshalRequest(f.Payload); err != nil || r.FromSeq != 2 || r.Limit != 500 || r.Device != store.DeviceID(id) {
		t.Fatalf("request %+v %v", r, err)
	}
}

func TestSignatureCoversSharedFieldsOnly(t *testing.T) {
	key, _ := testkeys.Key(t, 1)
	_, other := testkeys.Key(t, 2)
	pub := key.GetPublic()
	tamper := map[string]func(fi *store.FileInfo){
		"path":     func(fi *store.FileInfo) { fi.Path = "docs/other.txt" },
		"kind":     func(fi *store.FileInfo) { fi.Kind = store.KindDir },
		"size":     func(fi *store.FileInfo) { fi.Size++ },
		"mode":     func(fi *store.FileInfo) { fi.Mode = 0o600 },
		"modtime":  func(fi *store.FileInfo) { fi.ModTime++ },
		"target":   func(fi *store.FileInfo) { fi.SymlinkTarget = "x" },
		"chunks":   func(fi *store.FileInfo) { fi.Chunks = fi.Chunks[:1] },
		"chunk sz": func(fi *store.FileInfo) { fi.Chunks = []store.ChunkRef{fi.Chunks[0], {CID: fi.Chunks[1].CID, Size: 1}} },
		"deleted":  func(fi *store.FileInfo) { fi.Deleted = true },
		"version":  func(fi *store.FileInfo) { fi.Version = fi.Version.Update(store.DeviceID(other), 1) },
		"seq":      func(fi *store.FileInfo) { fi.Seq++ },
		"heads":    func(fi *store.FileInfo) { fi.LogHeads = fi.LogHeads[1:] },
		"sig":      func(fi *store.FileInfo) { fi.Signature[5] ^= 0x10 },
	}
	for name, f := range tamper {
		fi := version(t, key, "docs/report.txt", 3, "hello ", "world")
		fi.Chunks = append([]store.ChunkRef(nil), fi.Chunks...)
		f(&fi)
		if err := VerifyVersion(testFolder, fi, pub); !errors.Is(err, wire.ErrBadSignature) {
			t.Errorf("%s changed, still verifies: %v", name, err)
		}
	}
	fi := version(t, key, "docs/report.txt", 3, "hello ", "world")
	if err := VerifyVersion("another-folder", fi, pub); !errors.Is(err, wire.ErrBadSignature) {
		t.Errorf("verifies in another folder: %v", err)
	}
	otherKey, _ := testkeys.Key(t, 2)
	if err := VerifyVersion(testFolder, fi, otherKey.GetPublic()); !errors.Is(err, wire.ErrBadSignature) {
		t.Errorf("verifies with a non-author key: %v", err)
	}
	fi.Inode, fi.Dev = 12345, 6789 // local only: not signed
	if err := VerifyVersion(testFolder, fi, pub); err != nil {
		t.Errorf("local-only fields are signed: %v", err)
	}
	if _, err := SignVersion(testFolder, fi, otherKey); err == nil {
		t.Error("signed with a key that is not the author's")
	}
}

func TestValidate(t *testing.T) {
	key, _ := testkeys.Key(t, 1)
	good := version(t, key, "a/b.txt", 1, "xy")
	tests := map[string]func(fi *store.FileInfo){
		"empty path":    func(fi *store.FileInfo) { fi.Path = "" },
		"absolute":      func(fi *store.FileInfo) { fi.Path = "/etc/passwd" },
		"dotdot":        func(fi *store.FileInfo) { fi.Path = "a/../../x" },
		"dot":           func(fi *store.FileInfo) { fi.Path = "./x" },
		"trailing /":    func(fi *store.FileInfo) { fi.Path = "a/" },
		"backslash":     func(fi *store.FileInfo) { fi.Path = `a\..\x` },
		"nul":           func(fi *store.FileInfo) { fi.Path = "a\x00b" },
		"long":          func(fi *store.FileInfo) { fi.Path = strings.Repeat("a", MaxPathLength+1) },
		"kind":          func(fi *store.FileInfo) { fi.Kind = 9 },
		"size mismatch": func(fi *store.FileInfo) { fi.Size = 5 },
		"negative":      func(fi *store.FileInfo) { fi.Size = -1 },
		"dir chunks":    func(fi *store.FileInfo) { fi.Kind = store.KindDir },
		"no version":    func(fi *store.FileInfo) { fi.Version = store.VersionVector{} },
		"no author":     func(fi *store.FileInfo) { fi.Author = "" },
		"seq 0":         func(fi *store.FileInfo) { fi.Seq = 0 },
		"file target":   func(fi *store.FileInfo) { fi.SymlinkTarget = "x" },
	}
	if err := Validate(good); err != nil {
		t.Fatal(err)
	}
	for name, f := range tests {
		fi := good
		f(&fi)
		if Validate(fi) == nil {
			t.Errorf("%s: accepted", name)
		}
		// The decoder refuses it too.
		var e wire.Encoder
		e.Uvarint(1)
		appendEntry(&e, fi)
		if _, err := UnmarshalBatch(e.Out()); !errors.Is(err, wire.ErrMalformed) && name != "long" {
			t.Errorf("%s: decoder: %v", name, err)
		}
	}
}

// memSource is an in-memory index for unit tests of the protocol room.
type memSource map[store.DeviceID][]store.FileInfo

func (m memSource) Since(folder string, dev store.DeviceID, from uint64, fn func(store.FileInfo) error) error {
	if folder != testFolder {
		return wire.ErrNotFound
	}
	for _, fi := range m[dev] {
		if fi.Seq >= from {
			if err := fn(fi); err != nil {
				return err
			}
		}
	}
	return nil
}

type denyPrefix string

func (d denyPrefix) CanRead(_ string, _ peer.ID, path string) bool {
	return d == "" || !strings.HasPrefix(path, string(d))
}

// exchange runs Serve and Fetch over net.Pipe.
func exchange(t *testing.T, src Source, acc Access, req Request) ([]store.FileInfo, End, error, error) {
	t.Helper()
	c, s := net.Pipe()
	defer c.Close()
	srvErr := make(chan error, 1)
	go func() {
		defer s.Close()
		srvErr <- NewServer(src, acc).Serve(t.Context(), s, "client")
	}()
	var got []store.FileInfo
	end, err := Fetch(t.Context(), c, req, nil, func(fi store.FileInfo) error { got = append(got, fi); return nil })
	c.Close()
	return got, end, err, <-srvErr
}

func TestServeAndFetch(t *testing.T) {
	key, id := testkeys.Key(t, 1)
	dev := store.DeviceID(id)
	var vs []store.FileInfo
	for i := uint64(1); i <= 2500; i++ {
		p := fmt.Sprintf("f%04d", i)
		if i%10 == 0 {
			p = "secret/" + p
		}
		vs = append(vs, version(t, key, p, i*2, p))
	}
	src := memSource{dev: vs}

	got, end, err, serr := exchange(t, src, denyPrefix("secret/"), Request{Folder: testFolder, Device: dev, FromSeq: 10})
	if err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	// versions 6..2500 (seq > 10), minus every tenth (withheld).
	if want := 2495 - 250; len(got) != want {
		t.Fatalf("got %d entries, want %d", len(got), want)
	}
	if end.Through != 5000 || end.More {
		t.Fatalf("end %+v", end)
	}
	for _, fi := range got {
		if strings.HasPrefix(fi.Path, "secret/") || fi.Inode != 0 {
			t.Fatalf("leaked %+v", fi)
		}
	}

	got, end, err, _ = exchange(t, src, denyPrefix(""), Request{Folder: testFolder, Device: dev, FromSeq: 0, Limit: 100})
	if err != nil || len(got) != 100 || end.Through != 200 || !end.More {
		t.Fatalf("limited: %d entries, %+v, %v", len(got), end, err)
	}

	_, _, err, _ = exchange(t, src, denyPrefix(""), Request{Folder: "unknown", Device: dev})
	if !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("unknown folder: %v", err)
	}
}

// A relaying server that alters or forges entries is caught by the client.
func TestFetchRejectsForgedEntries(t *testing.T) {
	key, id := testkeys.Key(t, 1)
	otherKey, _ := testkeys.Key(t, 2)
	dev := store.DeviceID(id)
	good := version(t, key, "a", 1, "x")
	altered := version(t, key, "b", 2, "y")
	altered.Mode = 0o777
	foreign := version(t, otherKey, "c", 2, "z")
	tests := map[string][]store.FileInfo{
		"altered":          {good, altered},
		"foreign author":   {good, foreign},
		"replayed old seq": {good, good},
	}
	for name, vs := range tests {
		t.Run(name, func(t *testing.T) {
			var got []store.FileInfo
			conn := &fakeConn{r: bytes.NewReader(rawSource(vs).frames())}
			_, err := Fetch(t.Context(), conn, Request{Folder: testFolder, Device: dev}, nil, func(fi store.FileInfo) error {
				got = append(got, fi)
				return nil
			})
			if err == nil {
				t.Fatalf("accepted %d entries", len(got))
			}
			if len(got) != 1 {
				t.Fatalf("delivered %d entries before the bad one, want 1", len(got))
			}
		})
	}
}

// rawSource is what a hostile relay sends: its versions as they are, with
// none of the Server's checks.
type rawSource []store.FileInfo

func (r rawSource) frames() []byte {
	var e wire.Encoder
	e.Uvarint(uint64(len(r)))
	for _, fi := range r {
		appendEntry(&e, fi)
	}
	out := wire.AppendFrame(nil, wire.TypeIndexBatch, e.Out())
	return wire.AppendFrame(out, wire.TypeIndexEnd, End{Through: 10}.Marshal())
}

func TestFetchRejectsEndBeforeEntries(t *testing.T) {
	key, id := testkeys.Key(t, 1)
	var e wire.Encoder
	e.Uvarint(1)
	appendEntry(&e, version(t, key, "a", 5, "x"))
	in := wire.AppendFrame(nil, wire.TypeIndexBatch, e.Out())
	in = wire.AppendFrame(in, wire.TypeIndexEnd, End{Through: 4}.Marshal())
	_, err := Fetch(context.Background(), &fakeConn{r: bytes.NewReader(in)}, Request{Folder: testFolder, Device: store.DeviceID(id)}, nil, func(store.FileInfo) error { return nil })
	if !errors.Is(err, wire.ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
}

type fakeConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error) { return f.w.Write(p) }

func FuzzUnmarshalBatch(f *testing.F) {
	for _, b := range golden.All(f) {
		if len(b) > 3 {
			f.Add(b[3:]) // payloads (headers are 3 bytes for these sizes)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := UnmarshalBatch(in)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Marshal(), in) {
			t.Fatalf("not canonical")
		}
	})
}

func FuzzUnmarshalRequest(f *testing.F) {
	_, id := testkeys.Key(f, 1)
	f.Add(Request{Folder: testFolder, Device: store.DeviceID(id), FromSeq: 2, Limit: 5}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := UnmarshalRequest(in)
		if err == nil && !bytes.Equal(r.Marshal(), in) {
			t.Fatalf("not canonical")
		}
	})
}

func FuzzUnmarshalEnd(f *testing.F) {
	f.Add(End{Through: 4, More: true}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := UnmarshalEnd(in)
		if err == nil && !bytes.Equal(e.Marshal(), in) {
			t.Fatalf("not canonical")
		}
	})
}

// FuzzFetch plays an arbitrary server: the client must return (no panic, no
// hang) and deliver only entries that verify.
func FuzzFetch(f *testing.F) {
	key, id := testkeys.Key(f, 1)
	f.Add(rawSource(sampleEntries(f)).frames())
	for _, b := range golden.All(f) {
		f.Add(b)
	}
	pub := key.GetPublic()
	f.Fuzz(func(t *testing.T, in []byte) {
		req := Request{Folder: testFolder, Device: store.DeviceID(id)}
		_, _ = Fetch(context.Background(), &fakeConn{r: bytes.NewReader(in)}, req, nil, func(fi store.FileInfo) error {
			if err := VerifyVersion(testFolder, fi, pub); err != nil {
				t.Fatalf("delivered an entry that does not verify: %v", err)
			}
			return nil
		})
	})
}

func TestValidateLogHeads(t *testing.T) {
	key, _ := testkeys.Key(t, 1)
	fi := version(t, key, "a", 1, "x")
	fi.LogHeads = []cid.Cid{fi.LogHeads[1], fi.LogHeads[0]}
	if Validate(fi) == nil {
		t.Fatal("unsorted heads accepted")
	}
	if _, err := SignVersion(testFolder, fi, key); err == nil {
		t.Fatal("signed a version with unsorted heads")
	}
}

// A version the server cannot vouch for (unsigned) is withheld rather than
// breaking the exchange for every other entry.
func TestServeWithholdsUnsigned(t *testing.T) {
	key, id := testkeys.Key(t, 1)
	unsigned := version(t, key, "b", 2, "y")
	unsigned.Signature = nil
	src := memSource{store.DeviceID(id): {version(t, key, "a", 1, "x"), unsigned, version(t, key, "c", 3, "z")}}
	got, end, err, serr := exchange(t, src, denyPrefix(""), Request{Folder: testFolder, Device: store.DeviceID(id)})
	if err != nil || serr != nil || len(got) != 2 || end.Through != 3 {
		t.Fatalf("got %d entries, end %+v, %v %v", len(got), end, err, serr)
	}
}
