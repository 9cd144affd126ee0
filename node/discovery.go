package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	dutil "github.com/libp2p/go-libp2p/p2p/discovery/util"
	ma "github.com/multiformats/go-multiaddr"
)

// Discovery names. Both keep meshfold apart from other libp2p applications:
// its own mDNS service and its own DHT (not the public IPFS one).
const (
	MDNSServiceName   = "_meshfold._udp"
	DHTProtocolPrefix = "/meshfold"
	// MaxCachedAddrs bounds the addresses remembered per peer.
	MaxCachedAddrs = 16
	// dialTimeout bounds one discovery-triggered dial.
	dialTimeout = 15 * time.Second
)

// AddrBook persists known peer addresses so a restart reconnects without
// discovery. store's index implements it.
type AddrBook interface {
	PutPeerAddrs(peerID string, addrs [][]byte) error
	ForEachPeer(fn func(peerID string, addrs [][]byte) error) error
}

// DiscoveryConfig chooses how a node finds peers.
type DiscoveryConfig struct {
	MDNS      bool            // announce and listen on the LAN
	DHT       bool            // join meshfold's Kademlia DHT
	DHTServer bool            // answer DHT queries (relays, and tests on loopback)
	Bootstrap []peer.AddrInfo // DHT bootstrap peers and explicit peers to dial
	AddrBook  AddrBook        // optional cache of peer addresses
	Logger    *slog.Logger
}

// Discovery finds peers by mDNS, the DHT and cached addresses, and connects
// to them. Start starts it; Close stops everything it started.
type Discovery struct {
	h      host.Host
	cfg    DiscoveryConfig
	log    *slog.Logger
	dht    *dht.IpfsDHT
	rd     *drouting.RoutingDiscovery
	mdns   mdns.Service
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	found  map[peer.ID]bool   // peers mDNS already reported, to dedupe its repeats
	stored map[peer.ID]string // addresses last written to the address book
}

// NewDiscovery prepares discovery for h; it starts nothing.
func NewDiscovery(h host.Host, cfg DiscoveryConfig) *Discovery {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Discovery{h: h, cfg: cfg, log: log.With("component", "discovery"), found: make(map[peer.ID]bool), stored: make(map[peer.ID]string)}
}

// Start dials cached and bootstrap peers, then starts mDNS and the DHT.
func (d *Discovery) Start(ctx context.Context) error {
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if d.cfg.AddrBook != nil {
		cached, err := d.CachedPeers()
		if err != nil {
			d.log.Warn("reading cached peer addresses", "err", err)
		}
		d.dialBackground(cached)
	}
	d.dialBackground(d.cfg.Bootstrap)
	if d.cfg.DHT {
		mode := dht.ModeAuto
		if d.cfg.DHTServer {
			mode = dht.ModeServer
		}
		kad, err := dht.New(d.h, dht.Mode(mode), dht.ProtocolPrefix(DHTProtocolPrefix), dht.BootstrapPeers(d.cfg.Bootstrap...))
		if err != nil {
			return fmt.Errorf("starting DHT: %w", err)
		}
		if err := kad.Bootstrap(ctx); err != nil {
			kad.Close()
			return fmt.Errorf("bootstrapping DHT: %w", err)
		}
		d.dht = kad
		d.rd = drouting.NewRoutingDiscovery(kad)
	}
	if d.cfg.MDNS {
		d.mdns = mdns.NewMdnsService(d.h, MDNSServiceName, mdnsNotifee{d})
		if err := d.mdns.Start(); err != nil {
			// A host without a multicast interface still syncs through the
			// other mechanisms: report, don't fail.
			d.log.Warn("mDNS unavailable", "err", err)
			d.mdns = nil
		}
	}
	return nil
}

// Close stops mDNS, the DHT and every background loop, and waits for them.
func (d *Discovery) Close() error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	var errs []error
	if d.mdns != nil {
		errs = append(errs, d.mdns.Close())
	}
	d.wg.Wait()
	if d.dht != nil {
		errs = append(errs, d.dht.Close())
	}
	return errors.Join(errs...)
}

// RendezvousKey is the DHT namespace under which members of a folder announce
// themselves. It is a hash of the folder ID, so the DHT does not learn the ID.
func RendezvousKey(folderID string) string {
	sum := sha256.Sum256([]byte("meshfold/rendezvous/v1\x00" + folderID))
	return "meshfold-rv1-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20])
}

// AdvertiseFolder announces this device under the folder's rendezvous key, and
// keeps re-announcing until Close. It needs the DHT.
func (d *Discovery) AdvertiseFolder(folderID string) error {
	if d.rd == nil {
		return errors.New("discovery: DHT is off")
	}
	dutil.Advertise(d.ctx, d.rd, RendezvousKey(folderID))
	return nil
}

// FindFolderPeers asks the DHT for devices announced under the folder's key and
// connects to those not connected yet. It returns the peers it found.
func (d *Discovery) FindFolderPeers(ctx context.Context, folderID string) ([]peer.AddrInfo, error) {
	if d.rd == nil {
		return nil, errors.New("discovery: DHT is off")
	}
	infos, err := dutil.FindPeers(ctx, d.rd, RendezvousKey(folderID))
	if err != nil {
		return nil, fmt.Errorf("finding folder peers: %w", err)
	}
	var out []peer.AddrInfo
	for _, ai := range infos {
		if ai.ID != d.h.ID() {
			out = append(out, ai)
		}
	}
	ConnectAll(ctx, d.h, out)
	return out, nil
}

// Remember stores p's current addresses in the address book, so a restart
// reconnects to it without discovery.
func (d *Discovery) Remember(p peer.ID) error {
	if d.cfg.AddrBook == nil {
		return nil
	}
	addrs := d.h.Peerstore().Addrs(p)
	raw := make([][]byte, 0, min(len(addrs), MaxCachedAddrs))
	for _, a := range addrs[:min(len(addrs), MaxCachedAddrs)] {
		raw = append(raw, a.Bytes())
	}
	if len(raw) == 0 {
		return nil
	}
	// Folders remember every peer on every sync round: write only what
	// changed (a goleveldb write per peer per round was 7% of the CPU of
	// 30 devices in one process).
	key := string(bytes.Join(raw, nil))
	d.mu.Lock()
	same := d.stored[p] == key
	d.mu.Unlock()
	if same {
		return nil
	}
	if err := d.cfg.AddrBook.PutPeerAddrs(p.String(), raw); err != nil {
		return err
	}
	d.mu.Lock()
	d.stored[p] = key
	d.mu.Unlock()
	return nil
}

// CachedPeers returns the peers in the address book. Records that do not
// decode are skipped with a log line: a damaged cache costs a rediscovery, not
// a failed start.
func (d *Discovery) CachedPeers() ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	err := d.cfg.AddrBook.ForEachPeer(func(id string, raw [][]byte) error {
		p, err := peer.Decode(id)
		if err != nil {
			d.log.Warn("skipping cached peer with a bad ID", "peer", id, "err", err)
			return nil
		}
		ai := peer.AddrInfo{ID: p}
		for _, b := range raw {
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil {
				d.log.Warn("skipping a bad cached address", "peer", id, "err", err)
				continue
			}
			ai.Addrs = append(ai.Addrs, a)
		}
		if len(ai.Addrs) > 0 {
			out = append(out, ai)
		}
		return nil
	})
	return out, err
}

func (d *Discovery) dialBackground(infos []peer.AddrInfo) {
	if len(infos) == 0 {
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ctx, cancel := context.WithTimeout(d.ctx, dialTimeout)
		defer cancel()
		ConnectAll(ctx, d.h, infos)
	}()
}

type mdnsNotifee struct{ d *Discovery }

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	d := n.d
	if ai.ID == d.h.ID() {
		return
	}
	d.mu.Lock()
	seen := d.found[ai.ID]
	d.found[ai.ID] = true
	d.mu.Unlock()
	if seen && len(d.h.Network().ConnsToPeer(ai.ID)) > 0 {
		return
	}
	d.log.Debug("mDNS found peer", "peer", ai.ID)
	d.dialBackground([]peer.AddrInfo{ai})
}
