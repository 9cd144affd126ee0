package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/join"
	"github.com/meshfold/meshfold/protocol/state"
	"github.com/meshfold/meshfold/protocol/wire"
)

// syncBuffer is a log sink tests read while nodes write to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort finds a TCP port on loopback that is free right now: a relay must
// know the address it announces before it starts.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func relayTestNode(t *testing.T, name string, cfg Config, logs *syncBuffer) *Node {
	t.Helper()
	cfg.Home = filepath.Join(t.TempDir(), name)
	cfg.Heartbeat = time.Second
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", name)
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestJoinAndSyncThroughARelay: a device reachable only at its relayed
// address is joined and synced through a real relay node; the joiner learns
// the relay from the key, and the status says the connection is relayed.
func TestJoinAndSyncThroughARelay(t *testing.T) {
	logs := &syncBuffer{}
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
	relay := relayTestNode(t, "relay", Config{ListenAddrs: []string{addr}, RelayService: true, Announce: []string{addr}}, logs)
	relayInfo := peer.AddrInfo{ID: relay.ID(), Addrs: []ma.Multiaddr{ma.StringCast(addr)}}

	a := relayTestNode(t, "a", Config{Relays: []peer.AddrInfo{relayInfo}, RelayAlways: true}, logs)
	b := relayTestNode(t, "b", Config{}, logs)

	dirA, dirB := t.TempDir(), filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(filepath.Join(dirA, "hello.txt"), []byte("through the relay"), 0o644); err != nil {
		t.Fatal(err)
	}
	fa, err := a.CreateFolder(dirA, "relayed")
	if err != nil {
		t.Fatal(err)
	}
	key, err := a.Invite(fa.ID(), InviteOptions{Role: crdt.RoleEditor})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := join.ParseKey(key.String())
	if err != nil {
		t.Fatal(err)
	}
	// Keep only the relayed addresses: b must reach a through the relay.
	var circuits []ma.Multiaddr
	for _, x := range parsed.Addrs[0].Addrs {
		if IsRelayed(x) {
			circuits = append(circuits, x)
		}
	}
	if len(circuits) == 0 {
		t.Fatalf("the key carries no relayed address: %v", parsed.Addrs)
	}
	parsed.Addrs = []peer.AddrInfo{{ID: a.ID(), Addrs: circuits}}
	// a announces no relayed address on loopback (libp2p only does for public
	// ones), so whether it holds its slot yet shows only by trying.
	eventually(t, "b to join through the relay", func() error {
		_, err := b.Join(context.Background(), parsed, dirB)
		return err
	})
	eventually(t, "hello.txt at b", fileIs(dirB, "hello.txt", []byte("through the relay")))

	var relayed bool
	for _, c := range b.Report().Connections {
		if c.Peer == a.ID().String() {
			relayed = relayed || c.Relayed
		}
	}
	if !relayed {
		t.Fatalf("status does not report b's connection to a as relayed: %+v", b.Report().Connections)
	}
	if b.hasDirectConn(a.ID()) {
		t.Fatal("b has a direct connection to a: the sync did not have to go through the relay")
	}
	if got := b.Relays(); len(got) != 1 || got[0].ID != relay.ID() {
		t.Fatalf("b learned relays %v, want the relay %s", got, relay.ID())
	}
	raw, err := os.ReadFile(filepath.Join(b.cfg.Home, RelaysFile))
	if err != nil || !strings.Contains(string(raw), relay.ID().String()) {
		t.Fatalf("%s does not keep the learned relay: %q %v", RelaysFile, raw, err)
	}
	if !strings.Contains(logs.String(), "msg=\"relayed connection\"") {
		t.Fatal("no node logged its relayed connection")
	}
}

func TestRelayOf(t *testing.T) {
	const rid = "12D3KooWEgxibPehaVAmaKkkDZKQXqKwWwrRPQFuBUZdDamPXzzk"
	const tid = "12D3KooWJW4KBxCMVYy3bFUD3AYn2ntE3z9HBxuwWeUBz8SYrdGs"
	for _, tc := range []struct {
		addr    string
		relayed bool
		relay   string
	}{
		{"/ip4/172.32.0.1/tcp/22100/p2p/" + rid + "/p2p-circuit/p2p/" + tid, true, "/ip4/172.32.0.1/tcp/22100"},
		{"/ip4/172.32.0.1/udp/22100/quic-v1/p2p/" + rid + "/p2p-circuit", true, "/ip4/172.32.0.1/udp/22100/quic-v1"},
		{"/ip4/10.0.0.2/tcp/22100", false, ""},
		{"/p2p-circuit", true, ""}, // relayed, but names no relay
	} {
		a := ma.StringCast(tc.addr)
		if IsRelayed(a) != tc.relayed {
			t.Errorf("IsRelayed(%s) = %v", tc.addr, !tc.relayed)
		}
		r, ok := RelayOf(a)
		if ok != (tc.relay != "") {
			t.Errorf("RelayOf(%s) ok = %v", tc.addr, ok)
			continue
		}
		if ok && (r.ID.String() != rid || len(r.Addrs) != 1 || r.Addrs[0].String() != tc.relay) {
			t.Errorf("RelayOf(%s) = %v", tc.addr, r)
		}
	}
}

func TestRelayServiceNeedsAnnounce(t *testing.T) {
	_, err := Open(Config{Home: t.TempDir(), RelayService: true})
	if err != ErrNoAnnounce {
		t.Fatalf("relay without --announce: %v, want ErrNoAnnounce", err)
	}
	if _, err := AnnounceOption([]string{"not an address"}); err == nil {
		t.Fatal("a bad announce address was accepted")
	}
}

func signedTestState(t testing.TB, folder string) (*state.FolderState, peer.ID, []byte) {
	t.Helper()
	key, _, err := LoadOrCreateIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := DeviceIDOf(key)
	st := &state.FolderState{Folder: folder, Device: id, Seq: 7, Time: 1}
	if err := st.Sign(key); err != nil {
		t.Fatal(err)
	}
	return st, id, st.Marshal()
}

func TestAcceptRelayedState(t *testing.T) {
	_, id, raw := signedTestState(t, "f1")
	_, other, _ := signedTestState(t, "f1")
	member := func(folder string, p peer.ID) bool { return folder == "f1" && p == id }
	if st, err := acceptRelayedState(raw, id, member); err != nil || st.Seq != 7 {
		t.Fatalf("a good state: %v %v", st, err)
	}
	tampered := bytes.Clone(raw)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name string
		raw  []byte
		from peer.ID
		want error
	}{
		{"another device's state", raw, other, errNotSender},
		{"bad signature", tampered, id, wire.ErrBadSignature},
		{"truncated", raw[:len(raw)/2], id, wire.ErrTruncated},
	} {
		if _, err := acceptRelayedState(tc.raw, tc.from, member); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := acceptRelayedState(raw, id, func(string, peer.ID) bool { return false }); !errors.Is(err, wire.ErrNoAccess) {
		t.Errorf("non-member: %v, want ErrNoAccess", err)
	}
}

func FuzzAcceptRelayedState(f *testing.F) {
	_, id, raw := signedTestState(f, "f1")
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{})
	member := func(string, peer.ID) bool { return true }
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := acceptRelayedState(b, id, member)
		if err == nil && (st.Device != id || st.Verify() != nil) {
			t.Fatalf("accepted a state that is not the sender's or not signed: %+v", st)
		}
	})
}
