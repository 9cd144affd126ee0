package node

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/crdt"
)

// mockNode opens and starts a node whose host is a peer of mn.
func mockNode(t *testing.T, mn mocknet.Mocknet, name, addr string) *Node {
	t.Helper()
	n, err := Open(Config{
		Home:      filepath.Join(t.TempDir(), name),
		Heartbeat: time.Second,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name),
		MakeHost: func(key crypto.PrivKey, _ *metrics.BandwidthCounter) (host.Host, error) {
			return mn.AddPeer(key, ma.StringCast(addr))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestInjectedHostsSyncOverMocknet(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	a := mockNode(t, mn, "a", "/ip4/10.0.0.1/tcp/4242")
	b := mockNode(t, mn, "b", "/ip4/10.0.0.2/tcp/4242")
	if mn.Host(a.ID()) == nil || mn.Host(b.ID()) == nil {
		t.Fatal("the nodes do not use the injected mocknet hosts")
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dirA, "hello.txt"), []byte("over mocknet"), 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	share(t, a, fa, b, crdt.RoleEditor, dirB)
	eventually(t, "a's file on b", fileIs(dirB, "hello.txt", []byte("over mocknet")))
	os.WriteFile(filepath.Join(dirB, "back.txt"), []byte("from b"), 0o644)
	eventually(t, "b's file on a", fileIs(dirA, "back.txt", []byte("from b")))
}

func TestInjectedHostFailureReleasesTheHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "a")
	errNoHost := errors.New("no host today")
	_, err := Open(Config{Home: home, MakeHost: func(crypto.PrivKey, *metrics.BandwidthCounter) (host.Host, error) { return nil, errNoHost }})
	if !errors.Is(err, errNoHost) {
		t.Fatalf("Open = %v, want the MakeHost error", err)
	}
	mn := mocknet.New()
	defer mn.Close()
	n, err := Open(Config{Home: home, MakeHost: func(key crypto.PrivKey, _ *metrics.BandwidthCounter) (host.Host, error) {
		return mn.AddPeer(key, ma.StringCast("/ip4/10.0.0.3/tcp/4242"))
	}})
	if err != nil {
		t.Fatalf("reopening the home after a failed Open: %v", err)
	}
	n.Close()
}
