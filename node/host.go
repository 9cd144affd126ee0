package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// DefaultPort is the TCP and UDP (QUIC) port a node listens on by default. When
// it is taken, the node falls back to an ephemeral port.
const DefaultPort = 22100

// Resource limits of a node's libp2p host. A sync node talks to a handful of
// peers with a few streams each; these bound what a misbehaving peer can take.
const (
	MaxConns          = 256      // all connections
	MaxConnsPerPeer   = 8        // connections from one peer
	MaxStreams        = 4096     // all streams
	MaxStreamsPerPeer = 256      // streams with one peer
	MaxHostMemory     = 1 << 30  // bytes the resource manager may grant in total
	MaxPeerMemory     = 64 << 20 // bytes for one peer
	ConnLowWater      = 64       // connection manager trims down to this...
	ConnHighWater     = 192      // ...when above this
	ConnGracePeriod   = time.Minute
)

// HostConfig says how to build a node's libp2p host.
type HostConfig struct {
	Key         crypto.PrivKey
	ListenAddrs []string // multiaddrs; empty means DefaultListenAddrs(DefaultPort)
	// Bandwidth, if set, counts every byte the host sends and receives.
	Bandwidth *metrics.BandwidthCounter
	// MaxConns caps all connections (the config file's max_connections);
	// 0 means MaxConns. The connection manager trims at 3/4 of it.
	MaxConns int
	// Options are added to the host's (relay service, relay client, announce).
	Options []libp2p.Option
}

// DefaultListenAddrs listens on every interface, TCP and QUIC, on port.
func DefaultListenAddrs(port int) []string {
	return []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port),
		fmt.Sprintf("/ip6/::/tcp/%d", port),
		fmt.Sprintf("/ip6/::/udp/%d/quic-v1", port),
	}
}

// NewHost builds the device's libp2p host: TCP and QUIC, Noise and TLS, yamux,
// the resource manager with the limits above and the connection manager. If a
// listen address's port is taken it retries that address on an ephemeral port.
func NewHost(cfg HostConfig) (host.Host, error) {
	if cfg.Key == nil {
		return nil, errors.New("node: host needs a device key")
	}
	addrs := cfg.ListenAddrs
	if len(addrs) == 0 {
		addrs = DefaultListenAddrs(DefaultPort)
	}
	h, err := newHost(cfg, addrs)
	if err != nil && isAddrInUse(err) {
		h, err = newHost(cfg, ephemeral(addrs))
	}
	return h, err
}

func newHost(cfg HostConfig, addrs []string) (host.Host, error) {
	maxConns, low, high := MaxConns, ConnLowWater, ConnHighWater
	if cfg.MaxConns > 0 {
		maxConns = cfg.MaxConns
		high = min(high, max(1, cfg.MaxConns*3/4))
		low = min(low, high/2)
	}
	rm, err := newResourceManager(maxConns)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(ConnGracePeriod))
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrStrings(addrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		// TLS first: its AES-GCM runs on the CPU's AES instructions and moved
		// 10% more bytes than Noise's ChaCha20 per stream here (785-870 vs
		// 675-770 MB/s, one 1 MiB-write stream on loopback). Noise stays
		// offered for peers that prefer it. Corked (host_cork.go): the
		// records of one write leave in one syscall.
		libp2p.Security(libp2ptls.ID, newCorkedTLS),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
	}
	if cfg.Bandwidth != nil {
		opts = append(opts, libp2p.BandwidthReporter(cfg.Bandwidth))
	}
	opts = append(opts, cfg.Options...)
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("starting libp2p host: %w", err)
	}
	return h, nil
}

func newResourceManager(maxConns int) (network.ResourceManager, error) {
	limits := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: rcmgr.LimitVal(maxConns), ConnsInbound: rcmgr.LimitVal(maxConns), ConnsOutbound: rcmgr.LimitVal(maxConns),
			Streams: MaxStreams, StreamsInbound: MaxStreams, StreamsOutbound: MaxStreams,
			Memory: MaxHostMemory,
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: MaxConnsPerPeer, ConnsInbound: MaxConnsPerPeer, ConnsOutbound: MaxConnsPerPeer,
			Streams: MaxStreamsPerPeer, StreamsInbound: MaxStreamsPerPeer, StreamsOutbound: MaxStreamsPerPeer,
			Memory: MaxPeerMemory,
		},
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.DefaultLimits.AutoScale())))
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// ephemeral rewrites the port of every TCP/UDP listen address to 0.
func ephemeral(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			out = append(out, s)
			continue
		}
		var parts []string
		ma.ForEach(a, func(c ma.Component) bool {
			v := c.Value()
			if c.Protocol().Code == ma.P_TCP || c.Protocol().Code == ma.P_UDP {
				v = "0"
			}
			parts = append(parts, "/"+c.Protocol().Name)
			if v != "" {
				parts = append(parts, "/"+v)
			}
			return true
		})
		out = append(out, strings.Join(parts, ""))
	}
	return out
}

// ConnectAll dials every peer in infos that is not this host, in parallel,
// and returns how many connections succeeded.
func ConnectAll(ctx context.Context, h host.Host, infos []peer.AddrInfo) int {
	type result struct{ ok bool }
	ch := make(chan result, len(infos))
	n := 0
	for _, ai := range infos {
		if ai.ID == h.ID() || ai.ID == "" {
			continue
		}
		n++
		go func(ai peer.AddrInfo) {
			ch <- result{h.Connect(ctx, ai) == nil}
		}(ai)
	}
	ok := 0
	for range n {
		if (<-ch).ok {
			ok++
		}
	}
	return ok
}
