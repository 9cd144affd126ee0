package links

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/protocol/internal/golden"
	"github.com/meshfold/meshfold/protocol/internal/testhosts"
	"github.com/meshfold/meshfold/protocol/internal/testkeys"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors in testdata/")

func testRequest() Request {
	return Request{Folder: "bafyfolder", Link: store.ChunkCID([]byte("link")).Bytes(), Secret: bytes.Repeat([]byte{5}, SecretLength), Password: "hunter2"}
}

func testMeta(parts ...string) Meta {
	m := Meta{Name: "report.pdf", ModTime: 1_700_000_000_000_000_000}
	for _, p := range parts {
		m.Chunks = append(m.Chunks, Chunk{CID: store.ChunkCID([]byte(p)), Size: uint32(len(p))})
		m.Size += int64(len(p))
	}
	return m
}

func testToken(t testing.TB) Token {
	_, dev := testkeys.Key(t, 4)
	return Token{Folder: store.ChunkCID([]byte("genesis")), Link: store.ChunkCID([]byte("link")).Bytes(),
		Secret: bytes.Repeat([]byte{5}, SecretLength), Password: true,
		Addrs: []peer.AddrInfo{{ID: dev, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/22100")}}}}
}

func TestMessagesRoundTrip(t *testing.T) {
	req := testRequest()
	if got, err := UnmarshalRequest(req.Marshal()); err != nil || fmt.Sprint(got) != fmt.Sprint(req) {
		t.Fatalf("request: %+v %v", got, err)
	}
	m := testMeta("one", "two")
	if got, err := UnmarshalMeta(m.Marshal()); err != nil || fmt.Sprint(got) != fmt.Sprint(m) {
		t.Fatalf("meta: %+v %v", got, err)
	}
	r := Refusal{Reason: ReasonUsedUp, Message: "3 of 3"}
	if got, err := UnmarshalRefusal(r.Marshal()); err != nil || got != r || !errors.Is(got.Err(), ErrUsedUp) {
		t.Fatalf("refusal: %+v %v", got, err)
	}
	d := Data{CID: store.ChunkCID([]byte("x")), Data: []byte("x")}
	if got, err := UnmarshalData(d.Marshal()); err != nil || !got.CID.Equals(d.CID) || string(got.Data) != "x" {
		t.Fatalf("data: %+v %v", got, err)
	}
}

func TestMessagesReject(t *testing.T) {
	short := testRequest()
	short.Secret = short.Secret[:8]
	noLink := testRequest()
	noLink.Link = nil
	long := testRequest()
	long.Password = strings.Repeat("p", MaxPasswordLength+1)
	for name, r := range map[string]Request{"short secret": short, "no link": noLink, "long password": long} {
		if _, err := UnmarshalRequest(r.Marshal()); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	lying := testMeta("one")
	lying.Size = 99
	slash := testMeta("one")
	slash.Name = "../etc/passwd"
	empty := testMeta("one")
	empty.Name = ""
	for name, m := range map[string]Meta{"sizes do not add up": lying, "a path as name": slash, "no name": empty} {
		if _, err := UnmarshalMeta(m.Marshal()); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := UnmarshalRefusal(Refusal{Reason: 0}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("reason 0: %v", err)
	}
	if _, err := UnmarshalRefusal(Refusal{Reason: maxReason + 1}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("unknown reason: %v", err)
	}
	if _, err := UnmarshalData(append(Data{CID: store.ChunkCID([]byte("x")), Data: []byte("x")}.Marshal(), 0)); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
}

func TestTokenRoundTripAndTampering(t *testing.T) {
	k := testToken(t)
	s := k.String()
	if !strings.HasPrefix(s, TokenPrefix) || strings.ContainsAny(s, " \n=") {
		t.Fatalf("token text %q", s)
	}
	got, err := ParseToken(" " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Folder.Equals(k.Folder) || !bytes.Equal(got.Link, k.Link) || !bytes.Equal(got.Secret, k.Secret) || !got.Password ||
		len(got.Addrs) != 1 || got.Addrs[0].ID != k.Addrs[0].ID {
		t.Fatalf("round trip: %+v", got)
	}
	// Devices keep the token's order (the creator first), however many.
	for seed := byte(10); seed < 20; seed++ {
		_, other := testkeys.Key(t, seed)
		k.Addrs = append(k.Addrs, peer.AddrInfo{ID: other, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4001")}})
	}
	many, err := ParseToken(k.String())
	if err != nil || len(many.Addrs) != len(k.Addrs) {
		t.Fatalf("%d devices: %v", len(many.Addrs), err)
	}
	for i := range k.Addrs {
		if many.Addrs[i].ID != k.Addrs[i].ID {
			t.Fatalf("device %d out of order", i)
		}
	}
	for i := len(TokenPrefix); i < len(s); i++ {
		c := byte('a')
		if s[i] == 'a' {
			c = 'b'
		}
		if _, err := ParseToken(s[:i] + string(c) + s[i+1:]); !errors.Is(err, ErrBadToken) {
			t.Fatalf("changed character %d accepted: %v", i, err)
		}
	}
	for _, bad := range []string{"", TokenPrefix, "mfinv1-abc", s[:len(s)/2], strings.Repeat("a", MaxTokenLength+1)} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrBadToken) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestGolden(t *testing.T) {
	vectors := map[string][]byte{
		"request_v1": wire.AppendFrame(nil, TypeRequest, testRequest().Marshal()),
		"meta_v1":    wire.AppendFrame(nil, TypeMeta, testMeta("one", "two").Marshal()),
		"refusal_v1": wire.AppendFrame(nil, TypeRefusal, Refusal{Reason: ReasonExpired}.Marshal()),
		"data_v1":    wire.AppendFrame(nil, TypeData, Data{CID: store.ChunkCID([]byte("one")), Data: []byte("one")}.Marshal()),
		"token_v1":   []byte(testToken(t).String()),
	}
	for name, v := range vectors {
		golden.Check(t, name, v, *update)
	}
	f, _ := wire.ReadFrameBytes(golden.Read(t, "request_v1"), serverLimits)
	if r, err := UnmarshalRequest(f.Payload); err != nil || r.Password != "hunter2" {
		t.Fatalf("%+v %v", r, err)
	}
	if k, err := ParseToken(string(golden.Read(t, "token_v1"))); err != nil || !k.Password {
		t.Fatalf("old token no longer parses: %v", err)
	}
}

// fakeProvider serves one file from memory (a unit test of the protocol; the
// node's provider is tested with real folders).
type fakeProvider struct {
	parts     []string
	password  string
	refuse    error
	corrupt   int // chunk index to corrupt, -1 none
	completed int
}

type fakeFile struct {
	p *fakeProvider
}

func (p *fakeProvider) OpenLink(_ context.Context, req Request, _ string) (File, error) {
	if p.refuse != nil {
		return nil, p.refuse
	}
	if req.Password != p.password {
		return nil, ErrPassword
	}
	return fakeFile{p}, nil
}

func (f fakeFile) Meta() Meta { return testMeta(f.p.parts...) }
func (f fakeFile) Chunk(i int) ([]byte, error) {
	if i == f.p.corrupt {
		return []byte(strings.ToUpper(f.p.parts[i])), nil
	}
	return []byte(f.p.parts[i]), nil
}
func (f fakeFile) Complete() error { f.p.completed++; return nil }
func (f fakeFile) Close() error    { return nil }

type bufSink struct {
	meta Meta
	bytes.Buffer
}

func (s *bufSink) Begin(m Meta) error { s.meta = m; return nil }

// TestGetOverLibp2p: real hosts; the file arrives verified; refusals arrive
// typed; a corrupt chunk is caught before it reaches the sink.
func TestGetOverLibp2p(t *testing.T) {
	server, client := testhosts.Pair(t)
	p := &fakeProvider{parts: []string{"hello ", "world"}, password: "pw", corrupt: -1}
	NewServer(p).Register(server)
	ctx := context.Background()
	req := testRequest()
	req.Password = "pw"
	var sink bufSink
	m, err := Get(ctx, client, server.ID(), req, &sink)
	if err != nil || sink.String() != "hello world" || m.Name != "report.pdf" || p.completed != 1 {
		t.Fatalf("got %q %+v %v completed %d", sink.String(), m, err, p.completed)
	}
	req.Password = "wrong"
	if _, err := Get(ctx, client, server.ID(), req, &bufSink{}); !errors.Is(err, ErrPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	p.refuse = fmt.Errorf("%w%w", ErrExpired, &Detail{Text: "on 2026-11-20"})
	if _, err := Get(ctx, client, server.ID(), req, &bufSink{}); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "2026-11-20") {
		t.Fatalf("expired: %v", err)
	}
	p.refuse = errors.New("disk on fire")
	if _, err := Get(ctx, client, server.ID(), req, &bufSink{}); !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "fire") {
		t.Fatalf("internal error: %v", err)
	}
	p.refuse, p.corrupt = nil, 1
	req.Password = "pw"
	var bad bufSink
	if _, err := Get(ctx, client, server.ID(), req, &bad); err == nil || bad.String() != "hello " {
		t.Fatalf("a corrupt chunk was accepted: %v, sink holds %q", err, bad.String())
	}
}
