package node

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/protocol/chunks"
	"github.com/meshfold/meshfold/protocol/state"
	"github.com/meshfold/meshfold/protocol/wire"
)

// Limits of the circuit relay service `meshfold relay` runs. A relayed
// connection is reset when it reaches RelayCircuitDuration or has carried
// RelayCircuitData bytes in one direction; the devices then open a new one,
// and in the meantime hole punching usually gave them a direct connection.
const (
	RelayMaxReservations  = 128              // devices holding a slot at once
	RelayMaxCircuits      = 16               // relayed connections per device at once
	RelayReservationTTL   = time.Hour        // a slot lasts this long unless refreshed
	RelayCircuitDuration  = 10 * time.Minute // one relayed connection lives at most this long
	RelayCircuitData      = 64 << 20         // bytes per direction one relayed connection may carry
	RelayBufferSize       = 4096             // bytes buffered per direction per circuit
	RelayMaxReservationIP = 8                // slots from one IP address
)

// Bounds of the per-circuit limits an operator may set (RelayLimits): below
// them a relayed connection cannot carry a sync round.
const (
	MinRelayCircuitDuration = 10 * time.Second
	MinRelayCircuitData     = 1 << 20
)

// ErrRelayLimit: a relay limit below its minimum.
var ErrRelayLimit = errors.New("relay limit too small")

// RelayLimits are the per-circuit limits of a relay; zero fields take
// RelayCircuitDuration and RelayCircuitData.
type RelayLimits struct {
	Duration time.Duration // a relayed connection lives at most this long
	Data     int64         // bytes per direction a relayed connection may carry
}

func (l RelayLimits) withDefaults() (RelayLimits, error) {
	if l.Duration == 0 {
		l.Duration = RelayCircuitDuration
	}
	if l.Data == 0 {
		l.Data = RelayCircuitData
	}
	if l.Duration < MinRelayCircuitDuration {
		return l, fmt.Errorf("circuit duration %v is under %v: %w", l.Duration, MinRelayCircuitDuration, ErrRelayLimit)
	}
	if l.Data < MinRelayCircuitData {
		return l, fmt.Errorf("circuit data %d bytes is under %d: %w", l.Data, MinRelayCircuitData, ErrRelayLimit)
	}
	return l, nil
}

// Limits of a device's use of relays.
const (
	// MaxRelays bounds the relays a device remembers (config plus those learned
	// from invitation keys).
	MaxRelays = 8
	// DesiredRelays is how many relays a device holds a slot on at once.
	DesiredRelays = 2
	// relayQueryInterval is how often autorelay asks for relay candidates
	// while it has fewer slots than DesiredRelays.
	relayQueryInterval = 5 * time.Second
	// relayBackoff is how long autorelay waits after a relay refused a slot.
	relayBackoff = 30 * time.Second
)

// RelaysFile, in the node home, lists relays learned from invitation keys, so
// a restart uses them again.
const RelaysFile = "relays.json"

// limitedReason names why meshfold's streams may use limited (relayed)
// connections: the relay's limits bound what they carry.
const limitedReason = "meshfold sync over a relay within its limits"

// ErrNoAnnounce: the relay service needs a public address to announce.
var ErrNoAnnounce = errors.New("a relay needs at least one --announce address")

// RelayServiceOptions are the libp2p options of a node that relays for
// others: the circuit relay v2 service with meshfold's named limits, the
// AutoNAT service, and public reachability (a relay runs on a server whose
// announced addresses are reachable; the relay service only starts when the
// host believes it is public).
func RelayServiceOptions(limits RelayLimits) ([]libp2p.Option, error) {
	limits, err := limits.withDefaults()
	if err != nil {
		return nil, err
	}
	res := relayv2.DefaultResources()
	res.Limit = &relayv2.RelayLimit{Duration: limits.Duration, Data: limits.Data}
	res.MaxReservations = RelayMaxReservations
	res.MaxCircuits = RelayMaxCircuits
	res.ReservationTTL = RelayReservationTTL
	res.BufferSize = RelayBufferSize
	res.MaxReservationsPerIP = RelayMaxReservationIP
	return []libp2p.Option{
		libp2p.EnableRelayService(relayv2.WithResources(res)),
		libp2p.EnableNATService(),
		libp2p.ForceReachabilityPublic(),
	}, nil
}

// AnnounceOption makes the host announce exactly addrs (multiaddrs) instead
// of its listen addresses: a server behind a port forward or in a container
// knows its public address better than its interfaces do.
func AnnounceOption(addrs []string) (libp2p.Option, error) {
	var out []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("announce address %q: %w", s, err)
		}
		out = append(out, a)
	}
	return libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return slices.Clone(out) }), nil
}

// relaySet is the device's list of relays: those configured and those learned
// from invitation keys. autorelay asks it for candidates.
type relaySet struct {
	mu     sync.Mutex
	relays []peer.AddrInfo
}

// add merges ai into the set; it reports whether the set changed.
func (s *relaySet) add(ai peer.AddrInfo) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.relays {
		if r.ID == ai.ID {
			before := len(r.Addrs)
			s.relays[i].Addrs = mergeAddrs(r.Addrs, ai.Addrs)
			return len(s.relays[i].Addrs) != before
		}
	}
	if len(s.relays) >= MaxRelays {
		return false
	}
	s.relays = append(s.relays, peer.AddrInfo{ID: ai.ID, Addrs: slices.Clone(ai.Addrs)})
	return true
}

func (s *relaySet) list() []peer.AddrInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]peer.AddrInfo, len(s.relays))
	for i, r := range s.relays {
		out[i] = peer.AddrInfo{ID: r.ID, Addrs: slices.Clone(r.Addrs)}
	}
	return out
}

// source is autorelay's PeerSource: the known relays, up to num.
func (s *relaySet) source(_ context.Context, num int) <-chan peer.AddrInfo {
	rs := s.list()
	ch := make(chan peer.AddrInfo, len(rs))
	for i, r := range rs {
		if i >= num {
			break
		}
		ch <- r
	}
	close(ch)
	return ch
}

func mergeAddrs(a, b []ma.Multiaddr) []ma.Multiaddr {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.ContainsFunc(out, x.Equal) {
			out = append(out, x)
		}
	}
	return out
}

// hostOptions are the extra libp2p options cfg asks for: the relay service
// and announced addresses of a relay, or the relay client of a device.
func hostOptions(cfg Config, rs *relaySet) ([]libp2p.Option, error) {
	var opts []libp2p.Option
	if len(cfg.Announce) > 0 {
		o, err := AnnounceOption(cfg.Announce)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if cfg.RelayService {
		if len(cfg.Announce) == 0 {
			return nil, ErrNoAnnounce
		}
		relay, err := RelayServiceOptions(cfg.RelayLimits)
		if err != nil {
			return nil, err
		}
		return append(opts, relay...), nil
	}
	return append(opts, deviceRelayOptions(rs, cfg.RelayAlways)...), nil
}

// deviceRelayOptions are the libp2p options of a device: relay client, hole
// punching (DCUtR), and autorelay fed by the relay set. With always, the
// device considers itself unreachable from the start and reserves slots at
// once instead of waiting for AutoNAT's verdict.
func deviceRelayOptions(rs *relaySet, always bool) []libp2p.Option {
	opts := []libp2p.Option{
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		libp2p.EnableAutoRelayWithPeerSource(rs.source,
			autorelay.WithMinCandidates(1),
			autorelay.WithMaxCandidates(MaxRelays),
			autorelay.WithNumRelays(DesiredRelays),
			autorelay.WithBootDelay(0),
			autorelay.WithMinInterval(relayQueryInterval),
			autorelay.WithBackoff(relayBackoff),
		),
	}
	if always {
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	return opts
}

// RelayOf returns the relay part of a circuit address
// (/ip4/.../p2p/RELAY/p2p-circuit[/p2p/TARGET]), and false for other addresses.
func RelayOf(a ma.Multiaddr) (peer.AddrInfo, bool) {
	relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
	if len(relay) == len(a) || len(relay) == 0 {
		return peer.AddrInfo{}, false
	}
	ai, err := peer.AddrInfoFromP2pAddr(relay)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	return *ai, true
}

// IsRelayed says whether a is a circuit (relayed) address.
func IsRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// LearnRelays adds the relays of the circuit addresses in infos to the node's
// relay set and saves the set, so autorelay reserves a slot on them and a
// restart keeps them. It returns how many relays were new.
func (n *Node) LearnRelays(infos []peer.AddrInfo) (int, error) {
	added := 0
	for _, ai := range infos {
		for _, a := range ai.Addrs {
			r, ok := RelayOf(a)
			if ok && r.ID != n.id && n.relays.add(r) {
				added++
				n.log.Info("learned a relay", "relay", ShortID(r.ID))
			}
		}
	}
	if added == 0 {
		return 0, nil
	}
	return added, n.saveRelays()
}

// Relays is the node's relay set.
func (n *Node) Relays() []peer.AddrInfo { return n.relays.list() }

func loadRelays(cfg Config, log *slog.Logger, rs *relaySet) error {
	for _, r := range cfg.Relays {
		rs.add(r)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Home, RelaysFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var addrs []string
	if err := json.Unmarshal(raw, &addrs); err != nil {
		return fmt.Errorf("%s is corrupt: %w", RelaysFile, err)
	}
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			log.Warn("skipping a bad relay address", "file", RelaysFile, "addr", s, "err", err)
			continue
		}
		rs.add(*ai)
	}
	return nil
}

func (n *Node) saveRelays() error {
	var addrs []string
	for _, r := range n.relays.list() {
		full, err := peer.AddrInfoToP2pAddrs(&r)
		if err != nil {
			continue
		}
		for _, a := range full {
			addrs = append(addrs, a.String())
		}
	}
	raw, err := json.MarshalIndent(addrs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(n.cfg.Home, RelaysFile), raw, 0o600)
}

// inviteAddrs are the addresses an invitation key carries: the host's own
// and, for every relay the device knows, a relayed address through it (so a
// joiner behind another NAT reaches the inviter, and learns the relay).
func (n *Node) inviteAddrs(limit int) []peer.AddrInfo {
	var circuits, direct []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		if IsRelayed(a) {
			circuits = append(circuits, a)
		} else {
			direct = append(direct, a)
		}
	}
	for _, r := range n.relays.list() {
		for _, ra := range r.Addrs {
			c := ra.Encapsulate(ma.StringCast("/p2p/" + r.ID.String() + "/p2p-circuit"))
			if !slices.ContainsFunc(circuits, c.Equal) {
				circuits = append(circuits, c)
			}
		}
	}
	circuits = circuits[:min(len(circuits), limit/2)]
	direct = direct[:min(len(direct), limit-len(circuits))]
	return []peer.AddrInfo{{ID: n.id, Addrs: append(direct, circuits...)}}
}

// allowLimited lets a stream opened with ctx use a limited (relayed)
// connection when no direct one exists.
func allowLimited(ctx context.Context) context.Context {
	return network.WithAllowLimitedConn(ctx, limitedReason)
}

// ConnReport is one connection in the status report.
type ConnReport struct {
	Peer    string `json:"peer"`
	Relayed bool   `json:"relayed"` // through a relay: limited in time and bytes
	Addr    string `json:"addr"`    // the remote address
	Dir     string `json:"dir"`     // inbound or outbound
}

// Connections lists the node's connections, direct and relayed.
func (n *Node) Connections() []ConnReport {
	var out []ConnReport
	for _, c := range n.host.Network().Conns() {
		out = append(out, ConnReport{
			Peer:    c.RemotePeer().String(),
			Relayed: c.Stat().Limited || IsRelayed(c.RemoteMultiaddr()),
			Addr:    c.RemoteMultiaddr().String(),
			Dir:     c.Stat().Direction.String(),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Peer != out[j].Peer {
			return out[i].Peer < out[j].Peer
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}

// hasDirectConn says whether the node has a connection to p that is not relayed.
func (n *Node) hasDirectConn(p peer.ID) bool {
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if !c.Stat().Limited && !IsRelayed(c.RemoteMultiaddr()) {
			return true
		}
	}
	return false
}

// fetchPreferDirect fetches chunks from the peers with a direct connection
// first; only what they could not supply is fetched over relayed connections.
// A relay resets a circuit that reached its limits: the chunks delivered
// before stay delivered, and the rest is asked again (over a new circuit, or
// the hole-punched direct connection) for as long as each attempt makes
// progress, so a file larger than a circuit's limit still arrives.
func (f *Folder) fetchPreferDirect(ctx context.Context, want []cid.Cid, peers []peer.ID, deliver func(cid.Cid, []byte) error) error {
	var stalled time.Time // since when relayed attempts brought nothing
	for {
		var direct, relayed []peer.ID
		for _, p := range peers {
			if f.n.hasDirectConn(p) {
				direct = append(direct, p)
			} else {
				relayed = append(relayed, p)
			}
		}
		var st chunks.Stats
		var err error
		if len(direct) > 0 {
			st, err = f.fetchFrom(ctx, want, direct, deliver)
			if err == nil || !errors.Is(err, chunks.ErrUnavailable) || len(relayed) == 0 {
				return err
			}
			want = st.Missing
		}
		f.log.Info("fetching chunks over relayed connections", "chunks", len(want), "peers", len(relayed))
		st, err = f.fetchFrom(allowLimited(ctx), want, relayed, deliver)
		if err == nil || !errors.Is(err, chunks.ErrUnavailable) {
			return err
		}
		if len(st.Missing) >= len(want) {
			for p, ps := range st.Peers {
				if ps.Dropped != nil {
					f.log.Debug("relayed fetch from a peer failed", "peer", ShortID(p), "err", ps.Dropped)
				}
			}
			// No progress: the circuit the relay cut may still be the
			// connection streams go to. Drop it and dial a new one, pausing
			// between attempts, until relayedStallTimeout without progress.
			if stalled.IsZero() {
				stalled = time.Now()
			}
			if time.Since(stalled) > relayedStallTimeout {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(relayedRetryPause):
			}
			f.n.redialRelayed(ctx, relayed)
			continue
		}
		stalled = time.Time{}
		f.log.Info("relayed transfer cut short (relay limits?); asking again for the rest", "got", len(want)-len(st.Missing), "left", len(st.Missing))
		want = st.Missing
	}
}

// A fetch over relayed connections that brings nothing is retried every
// relayedRetryPause over a new circuit, and given up (until the next sync
// round) after relayedStallTimeout without progress.
const (
	relayedRetryPause   = 500 * time.Millisecond
	relayedStallTimeout = 15 * time.Second
)

// redialRelayed closes the relayed connections to peers and dials them again
// (through their relays).
func (n *Node) redialRelayed(ctx context.Context, peers []peer.ID) {
	for _, p := range peers {
		for _, c := range n.host.Network().ConnsToPeer(p) {
			if c.Stat().Limited || IsRelayed(c.RemoteMultiaddr()) {
				c.Close()
			}
		}
		// The dead circuit's failures put the peer's addresses in dial
		// backoff; a new circuit is a new attempt.
		if sw, ok := n.host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(p)
		}
		cctx, cancel := context.WithTimeout(allowLimited(ctx), dialTimeout)
		err := n.host.Connect(cctx, peer.AddrInfo{ID: p})
		cancel()
		if err != nil {
			n.log.Debug("dialing a peer again through its relay", "peer", ShortID(p), "err", err)
		}
	}
}

// Hole punching (DCUtR) is tried only when a circuit opens, and a failed
// attempt is not repeated: two devices behind NATs could then stay on the
// relay for good. The side that dialed the circuit waits holePunchRetryAfter
// and, if there is still no direct connection, opens a new circuit (a new
// attempt), at most holePunchRetries times per peer.
const (
	holePunchRetryAfter = 15 * time.Second
	holePunchRetries    = 3
)

// retryHolePunch watches an outbound relayed connection for an upgrade.
func (n *Node) retryHolePunch(c network.Conn) {
	p := c.RemotePeer()
	select {
	case <-time.After(holePunchRetryAfter):
	case <-n.ctx.Done():
		return
	}
	if c.IsClosed() {
		return
	}
	for _, o := range n.host.Network().ConnsToPeer(p) {
		if !o.Stat().Limited && !IsRelayed(o.RemoteMultiaddr()) {
			return // upgraded
		}
	}
	n.punchMu.Lock()
	tries := n.punchTries[p]
	if tries < holePunchRetries {
		n.punchTries[p] = tries + 1
	}
	n.punchMu.Unlock()
	if tries >= holePunchRetries {
		return
	}
	n.log.Info("no direct connection yet: a new circuit for another hole-punch attempt", "peer", ShortID(p), "attempt", tries+2)
	n.redialRelayed(n.ctx, []peer.ID{p})
}

// watchUpgrades logs when a peer reached over a relay gets a direct
// connection (hole punching or a dial), with the time since the relayed
// connection opened: the figure the network-namespace test reports.
func (n *Node) watchUpgrades() {
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(nw network.Network, c network.Conn) {
			if c.Stat().Limited || IsRelayed(c.RemoteMultiaddr()) {
				n.log.Info("relayed connection", "peer", ShortID(c.RemotePeer()), "addr", c.RemoteMultiaddr().String())
				// A new circuit supersedes older ones to the same peer: a relay
				// that cut a circuit at its limits half-closes it, and the side
				// that was sending may not notice for a long while. Left open,
				// such circuits use up the per-peer connection limit.
				opened := c.Stat().Opened
				for _, o := range nw.ConnsToPeer(c.RemotePeer()) {
					if o != c && (o.Stat().Limited || IsRelayed(o.RemoteMultiaddr())) && o.Stat().Opened.Before(opened) {
						go o.Close()
					}
				}
				if c.Stat().Direction == network.DirOutbound {
					go n.retryHolePunch(c)
				}
				return
			}
			for _, o := range nw.ConnsToPeer(c.RemotePeer()) {
				if o != c && (o.Stat().Limited || IsRelayed(o.RemoteMultiaddr())) {
					n.log.Info("direct connection to a peer reached over a relay", "peer", ShortID(c.RemotePeer()),
						"addr", c.RemoteMultiaddr().String(), "after_ms", time.Since(o.Stat().Opened).Milliseconds())
					n.punchMu.Lock()
					delete(n.punchTries, c.RemotePeer()) // retries start afresh if it falls back to the relay
					n.punchMu.Unlock()
					return
				}
			}
		},
	})
}

// GossipSub talks only over connections that are not limited, so a peer
// reachable only through a relay never receives a folder's state on the
// topic. The folder pushes its signed state to such peers directly, on this
// protocol: one frame (state.FolderState.Marshal) per stream.
const (
	RelayedStateProtocol = protocol.ID("/meshfold/relayed-state/1.0.0")
	relayedStateTimeout  = 10 * time.Second
)

func (n *Node) registerRelayedState() {
	n.host.SetStreamHandler(RelayedStateProtocol, n.handleRelayedState)
}

// handleRelayedState takes a folder state pushed by a peer over a relayed
// connection, with the checks the topic's validator makes: well formed, signed
// by the sending device, a member device of a folder this node syncs.
func (n *Node) handleRelayedState(s network.Stream) {
	defer s.Close()
	s.SetReadDeadline(time.Now().Add(relayedStateTimeout))
	raw, err := io.ReadAll(io.LimitReader(s, state.MaxFolderStateSize+maxFrameOverhead))
	if err != nil {
		s.Reset()
		return
	}
	st, err := acceptRelayedState(raw, s.Conn().RemotePeer(), n.IsMember)
	if err != nil {
		n.log.Debug("refused a relayed folder state", "peer", ShortID(s.Conn().RemotePeer()), "err", err)
		s.Reset()
		return
	}
	f, ok := n.Folder(st.Folder)
	if !ok {
		return
	}
	f.mu.Lock()
	f.peers[st.Device] = st
	f.mu.Unlock()
	f.wake()
}

// maxFrameOverhead is a frame's type, version and length bytes at most.
const maxFrameOverhead = 2 + binary.MaxVarintLen64

// errNotSender: a pushed state is not the pushing device's own.
var errNotSender = errors.New("the state is not the sending device's")

// acceptRelayedState decodes and checks a pushed state.
func acceptRelayedState(raw []byte, from peer.ID, isMember func(folder string, p peer.ID) bool) (*state.FolderState, error) {
	st, err := state.Unmarshal(raw)
	if err != nil {
		return nil, err
	}
	if st.Device != from {
		return nil, errNotSender
	}
	if err := st.Verify(); err != nil {
		return nil, err
	}
	if !isMember(st.Folder, from) {
		return nil, fmt.Errorf("device %s: %w", ShortID(from), wire.ErrNoAccess)
	}
	return st, nil
}

// pushRelayed sends the folder's signed state raw to every member device this
// node reaches only through a relay, in the background.
func (f *Folder) pushRelayed(raw []byte) {
	for _, p := range f.n.host.Network().Peers() {
		if p == f.n.id || f.n.hasDirectConn(p) || !f.n.IsMember(f.id, p) {
			continue
		}
		go f.pushState(p, raw)
	}
}

// pushState sends the folder's signed state raw to peer p on
// RelayedStateProtocol (over whatever connection reaches it) and waits for
// the receiver to close.
func (f *Folder) pushState(p peer.ID, raw []byte) {
	ctx, cancel := context.WithTimeout(allowLimited(f.n.ctx), relayedStateTimeout)
	defer cancel()
	s, err := f.n.host.NewStream(ctx, p, RelayedStateProtocol)
	if err != nil {
		f.log.Debug("pushing the folder state", "peer", ShortID(p), "err", err)
		return
	}
	s.SetWriteDeadline(time.Now().Add(relayedStateTimeout))
	if _, err := s.Write(raw); err != nil {
		s.Reset()
		return
	}
	s.CloseWrite()
	io.Copy(io.Discard, s) // wait for the receiver to close
	s.Close()
}
