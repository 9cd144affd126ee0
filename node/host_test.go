package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshfold/meshfold/store"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

func TestIdentityIsCreatedOnceAndPrivate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	k1, created, err := LoadOrCreateIdentity(home)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	st, err := os.Stat(filepath.Join(home, IdentityFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v err %v, want 0600", st.Mode().Perm(), err)
	}
	k2, created, err := LoadOrCreateIdentity(home)
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	if DeviceIDOf(k1) != DeviceIDOf(k2) {
		t.Fatal("device ID changed across restarts")
	}
}

func TestIdentityRejectsBadFiles(t *testing.T) {
	home := t.TempDir()
	p := filepath.Join(home, IdentityFile)
	if err := os.WriteFile(p, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateIdentity(home); err == nil {
		t.Fatal("corrupt key accepted")
	}
	if _, _, err := LoadOrCreateIdentity(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	home2 := t.TempDir()
	if _, _, err := LoadOrCreateIdentity(home2); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(home2, IdentityFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateIdentity(home2); err == nil {
		t.Fatal("world-readable key accepted")
	}
}

// testHost starts a real host on loopback and closes it with the test.
func testHost(t testing.TB, addrs ...string) host.Host {
	t.Helper()
	key, _, err := LoadOrCreateIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 {
		addrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	h, err := NewHost(HostConfig{Key: key, ListenAddrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestHostsConnectOverTCPAndQUIC(t *testing.T) {
	for _, transport := range []string{"tcp", "quic-v1"} {
		t.Run(transport, func(t *testing.T) {
			a, b := testHost(t), testHost(t)
			var addrs []peer.AddrInfo
			for _, m := range b.Addrs() {
				if _, err := m.ValueForProtocol(codeOf(transport)); err == nil {
					addrs = append(addrs, peer.AddrInfo{ID: b.ID(), Addrs: []ma_Multiaddr{m}})
				}
			}
			if len(addrs) == 0 {
				t.Fatalf("b listens on no %s address: %v", transport, b.Addrs())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Connect(ctx, addrs[0]); err != nil {
				t.Fatal(err)
			}
			conns := a.Network().ConnsToPeer(b.ID())
			if len(conns) == 0 {
				t.Fatal("no connection after Connect")
			}
			if got := conns[0].ConnState().Transport; got != map[string]string{"tcp": "tcp", "quic-v1": "quic-v1"}[transport] {
				t.Fatalf("transport %q, want %q", got, transport)
			}
		})
	}
}

func TestHostFallsBackToEphemeralPort(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	h := testHost(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	if len(h.Addrs()) == 0 {
		t.Fatal("host listens nowhere")
	}
	for _, a := range h.Addrs() {
		if v, _ := a.ValueForProtocol(codeOf("tcp")); v == fmt.Sprint(port) {
			t.Fatalf("host claims the taken port %d", port)
		}
	}
}

func TestResourceManagerHasExplicitLimits(t *testing.T) {
	h := testHost(t)
	// The limiter is ours: opening more streams than MaxStreamsPerPeer to one
	// peer must fail rather than grow without bound.
	b := testHost(t)
	b.SetStreamHandler("/test/hold", func(s network.Stream) {})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var opened []network.Stream
	var lastErr error
	for range MaxStreamsPerPeer + 8 {
		s, err := h.NewStream(ctx, b.ID(), "/test/hold")
		if err != nil {
			lastErr = err
			break
		}
		opened = append(opened, s)
	}
	for _, s := range opened {
		s.Reset()
	}
	if lastErr == nil || len(opened) > MaxStreamsPerPeer {
		t.Fatalf("opened %d streams to one peer (limit %d), last error %v", len(opened), MaxStreamsPerPeer, lastErr)
	}
	var limitErr *rcmgr.ErrStreamOrConnLimitExceeded
	if !errors.As(lastErr, &limitErr) && !errors.Is(lastErr, network.ErrResourceLimitExceeded) {
		t.Fatalf("stream %d failed for another reason than the resource limit: %v", len(opened)+1, lastErr)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connected(a, b host.Host) bool {
	return a.Network().Connectedness(b.ID()) == network.Connected
}

func TestCachedAddressesReconnectAfterRestart(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "index"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var book AddrBook = db // the real goleveldb address book
	keyHome := t.TempDir()
	key, _, _ := LoadOrCreateIdentity(keyHome)
	b := testHost(t)
	a1, err := NewHost(HostConfig{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	d1 := NewDiscovery(a1, DiscoveryConfig{AddrBook: book, Bootstrap: []peer.AddrInfo{{ID: b.ID(), Addrs: b.Addrs()}}})
	if err := d1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bootstrap connection", 10*time.Second, func() bool { return connected(a1, b) })
	if err := d1.Remember(b.ID()); err != nil {
		t.Fatal(err)
	}
	d1.Close()
	a1.Close()

	// Restart with no bootstrap peers and no mDNS or DHT: only the cache can
	// bring b back.
	a2, err := NewHost(HostConfig{Key: key, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	d2 := NewDiscovery(a2, DiscoveryConfig{AddrBook: book})
	if err := d2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	waitFor(t, "reconnection from cached addresses", 10*time.Second, func() bool { return connected(a2, b) })
}

func TestDHTRendezvousFindsFolderPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot := testHost(t)
	db := NewDiscovery(boot, DiscoveryConfig{DHT: true, DHTServer: true})
	if err := db.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bootInfo := []peer.AddrInfo{{ID: boot.ID(), Addrs: boot.Addrs()}}
	var hosts []host.Host
	var discs []*Discovery
	for range 3 {
		h := testHost(t)
		d := NewDiscovery(h, DiscoveryConfig{DHT: true, DHTServer: true, Bootstrap: bootInfo})
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		hosts, discs = append(hosts, h), append(discs, d)
	}
	waitFor(t, "routing tables", 20*time.Second, func() bool {
		for _, d := range discs {
			if d.dht.RoutingTable().Size() == 0 {
				return false
			}
		}
		return true
	})
	const folder = "bafy-test-folder"
	// hosts[0] and hosts[1] share the folder; hosts[2] does not.
	for _, d := range discs[:2] {
		if err := d.AdvertiseFolder(folder); err != nil {
			t.Fatal(err)
		}
	}
	var found []peer.AddrInfo
	waitFor(t, "folder peer in the DHT", 20*time.Second, func() bool {
		var err error
		found, err = discs[1].FindFolderPeers(ctx, folder)
		return err == nil && len(found) == 1
	})
	if found[0].ID != hosts[0].ID() {
		t.Fatalf("found %v, want %v", found[0].ID, hosts[0].ID())
	}
	waitFor(t, "connection to the folder peer", 10*time.Second, func() bool { return connected(hosts[1], hosts[0]) })
	if RendezvousKey(folder) == RendezvousKey(folder+"x") || len(RendezvousKey(folder)) < 20 {
		t.Fatal("rendezvous keys do not separate folders")
	}
}

func TestMDNSFindsPeersOnTheLAN(t *testing.T) {
	requireMulticastLoopback(t)
	a, b := testHost(t), testHost(t)
	for _, h := range []host.Host{a, b} {
		d := NewDiscovery(h, DiscoveryConfig{MDNS: true})
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if d.mdns == nil {
			t.Fatal("mDNS did not start")
		}
	}
	waitFor(t, "mDNS discovery and connection", 15*time.Second, func() bool { return connected(a, b) })
}

// requireMulticastLoopback fails with a fix when the loopback interface cannot
// carry multicast: mDNS discovery has nothing to run on then. .ci/run enables it.
func requireMulticastLoopback(t *testing.T) {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagUp != 0 {
			return
		}
	}
	t.Fatal("the loopback interface has no MULTICAST flag; mDNS cannot be tested. Run (as root): ip link set lo multicast on")
}
