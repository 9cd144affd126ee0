package join

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/protocol/internal/golden"
	"github.com/meshfold/meshfold/protocol/internal/testkeys"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors in testdata/")

const testFolder = "bafyfolder"

func testRequest(t testing.TB) Request {
	_, user := testkeys.Key(t, 1)
	_, dev := testkeys.Key(t, 2)
	return Request{Folder: testFolder, Invite: []byte("invite-id"), CertUser: user, CertDevice: dev,
		CertSig: bytes.Repeat([]byte{7}, 64), Proof: bytes.Repeat([]byte{9}, 64)}
}

func testKey(t testing.TB) Key {
	secret, _ := testkeys.Key(t, 3)
	_, member := testkeys.Key(t, 4)
	return Key{
		Folder: store.ChunkCID([]byte("genesis")), Invite: []byte("invite-id"), Secret: secret,
		Addrs: []peer.AddrInfo{{ID: member, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/22100")}}},
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	req := testRequest(t)
	got, err := UnmarshalRequest(req.Marshal())
	if err != nil || fmt.Sprint(got) != fmt.Sprint(req) {
		t.Fatalf("request: %+v %v", got, err)
	}
	ops := Ops{Ops: [][]byte{[]byte("genesis"), []byte("grant")}, Last: true}
	if o, err := UnmarshalOps(ops.Marshal()); err != nil || len(o.Ops) != 2 || !o.Last || string(o.Ops[1]) != "grant" {
		t.Fatalf("ops: %+v %v", o, err)
	}
	if j, err := UnmarshalJoinOp(JoinOp{Op: []byte("join")}.Marshal()); err != nil || string(j.Op) != "join" {
		t.Fatalf("join op: %+v %v", j, err)
	}
}

func TestMessagesReject(t *testing.T) {
	empty := testRequest(t)
	empty.Proof = nil
	if _, err := UnmarshalRequest(empty.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("request without proof: %v", err)
	}
	if _, err := UnmarshalOps(Ops{Ops: [][]byte{{}}}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("empty op: %v", err)
	}
	if _, err := UnmarshalOps(Ops{Ops: [][]byte{make([]byte, MaxOpSize+1)}}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("oversize op: %v", err)
	}
	if _, err := UnmarshalJoinOp(JoinOp{}.Marshal()); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("empty join op: %v", err)
	}
}

func TestKeyRoundTripAndTampering(t *testing.T) {
	k := testKey(t)
	s := k.String()
	if !strings.HasPrefix(s, KeyPrefix) || strings.ContainsAny(s, " \n=") {
		t.Fatalf("key text %q", s)
	}
	got, err := ParseKey("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Folder.Equals(k.Folder) || !bytes.Equal(got.Invite, k.Invite) || !got.Secret.Equals(k.Secret) ||
		len(got.Addrs) != 1 || got.Addrs[0].ID != k.Addrs[0].ID || !got.Addrs[0].Addrs[0].Equal(k.Addrs[0].Addrs[0]) {
		t.Fatalf("round trip: %+v", got)
	}
	// Every single-character change is caught (checksum or structure).
	alphabet := "abcdefghijklmnopqrstuvwxyz234567"
	for i := len(KeyPrefix); i < len(s); i++ {
		for _, r := range alphabet[:3] {
			if byte(r) == s[i] {
				continue
			}
			bad := s[:i] + string(r) + s[i+1:]
			if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) {
				t.Fatalf("changed character %d accepted: %v", i, err)
			}
		}
	}
	for _, bad := range []string{"", "mfinv1-", "hello", s[:len(s)/2], "mfinv2-" + s[len(KeyPrefix):], s + "a"} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestGolden(t *testing.T) {
	vectors := map[string][]byte{
		"request_v1": wire.AppendFrame(nil, TypeRequest, testRequest(t).Marshal()),
		"ops_v1":     wire.AppendFrame(nil, TypeOps, Ops{Ops: [][]byte{[]byte("genesis"), []byte("grant")}, Last: true}.Marshal()),
		"joinop_v1":  wire.AppendFrame(nil, TypeJoinOp, JoinOp{Op: []byte("join")}.Marshal()),
		"key_v1":     []byte(testKey(t).String()),
	}
	for name, v := range vectors {
		golden.Check(t, name, v, *update)
	}
	f, _ := wire.ReadFrameBytes(golden.Read(t, "request_v1"), serverLimits)
	if r, err := UnmarshalRequest(f.Payload); err != nil || r.Folder != testFolder {
		t.Fatalf("%+v %v", r, err)
	}
	if k, err := ParseKey(string(golden.Read(t, "key_v1"))); err != nil || string(k.Invite) != "invite-id" {
		t.Fatalf("old key no longer parses: %v", err)
	}
}

// fakeInviter admits one invitation and records the Join op.
type fakeInviter struct {
	log      [][]byte
	joined   []byte
	refuse   error
	badJoins bool
}

func (f *fakeInviter) Admit(req Request, _ peer.ID) ([][]byte, error) {
	if f.refuse != nil {
		return nil, f.refuse
	}
	return f.log, nil
}

func (f *fakeInviter) Complete(_ Request, _ peer.ID, op []byte) error {
	if f.badJoins {
		return fmt.Errorf("not valid: %w", wire.ErrNoAccess)
	}
	f.joined = op
	return nil
}

func runHandshake(t *testing.T, inv *fakeInviter, req Request) ([][]byte, error) {
	t.Helper()
	c1, c2 := net.Pipe()
	defer c1.Close()
	done := make(chan error, 1)
	go func() {
		defer c2.Close()
		done <- NewServer(inv).Serve(context.Background(), c2, req.CertDevice)
	}()
	log, err := Join(context.Background(), c1, req, func(log [][]byte) ([]byte, error) {
		return []byte(fmt.Sprintf("join on top of %d ops", len(log))), nil
	})
	if serr := <-done; serr != nil && err == nil {
		t.Fatalf("server: %v", serr)
	}
	return log, err
}

func TestHandshake(t *testing.T) {
	var big [][]byte
	for i := range 700 { // more than one frame
		big = append(big, []byte(fmt.Sprintf("op %d", i)))
	}
	inv := &fakeInviter{log: big}
	log, err := runHandshake(t, inv, testRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 701 || string(inv.joined) != "join on top of 700 ops" || string(log[700]) != string(inv.joined) {
		t.Fatalf("log of %d, joined %q", len(log), inv.joined)
	}
	if _, err := runHandshake(t, &fakeInviter{refuse: fmt.Errorf("used up: %w", wire.ErrNoAccess)}, testRequest(t)); !errors.Is(err, wire.ErrNoAccess) {
		t.Fatalf("refused admission: %v", err)
	}
	if _, err := runHandshake(t, &fakeInviter{log: big[:1], badJoins: true}, testRequest(t)); !errors.Is(err, wire.ErrNoAccess) {
		t.Fatalf("refused join op: %v", err)
	}
}

func TestServerChecksTheCertificateNamesTheRemote(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	inv := &fakeInviter{log: [][]byte{[]byte("g")}}
	_, other := testkeys.Key(t, 9)
	go func() {
		defer c2.Close()
		NewServer(inv).Serve(context.Background(), c2, other)
	}()
	_, err := Join(context.Background(), c1, testRequest(t), func([][]byte) ([]byte, error) { return []byte("j"), nil })
	if !errors.Is(err, wire.ErrNoAccess) || inv.joined != nil {
		t.Fatalf("a stolen certificate was accepted: %v", err)
	}
}

func FuzzUnmarshalRequest(f *testing.F) {
	f.Add(testRequest(f).Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		if r, err := UnmarshalRequest(in); err == nil && !bytes.Equal(r.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalOps(f *testing.F) {
	f.Add(Ops{Ops: [][]byte{[]byte("a"), []byte("bc")}, Last: true}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		if o, err := UnmarshalOps(in); err == nil && !bytes.Equal(o.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzUnmarshalJoinOp(f *testing.F) {
	f.Add(JoinOp{Op: []byte("join")}.Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		if j, err := UnmarshalJoinOp(in); err == nil && !bytes.Equal(j.Marshal(), in) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add(testKey(f).String())
	f.Add("mfinv1-aaaa")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error not wrapping ErrBadKey: %v", err)
			}
			return
		}
		if _, err := ParseKey(k.String()); err != nil {
			t.Fatalf("a parsed key does not re-encode: %v", err)
		}
	})
}

// FuzzJoin plays an arbitrary member: Join returns without panicking or hanging.
func FuzzJoin(f *testing.F) {
	f.Add(wire.AppendFrame(wire.AppendFrame(nil, TypeOps, Ops{Ops: [][]byte{[]byte("g")}, Last: true}.Marshal()), TypeAck, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = Join(t.Context(), &rw{r: bytes.NewReader(in)}, testRequest(t), func(log [][]byte) ([]byte, error) {
			return []byte("j"), nil
		})
	})
}

type rw struct{ r io.Reader }

func (c *rw) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *rw) Write(p []byte) (int, error) { return len(p), nil }
