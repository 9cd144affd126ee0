package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/chunks"
	"github.com/meshfold/meshfold/protocol/index"
	"github.com/meshfold/meshfold/protocol/join"
	"github.com/meshfold/meshfold/protocol/links"
	"github.com/meshfold/meshfold/protocol/logsync"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// Defaults of a node.
const (
	// DefaultHeartbeat is how often a folder republishes its state even when
	// nothing changed, so peers that missed a message catch up.
	DefaultHeartbeat = 10 * time.Second
	// pubsubQueue sizes GossipSub's three queues: the defaults (32) drop
	// bursts silently (LIBP2P-NOTES.md §1).
	pubsubQueue = 1024
)

// Errors of a node.
var (
	// ErrHomeInUse: another meshfold process has this node home open.
	ErrHomeInUse = errors.New("the node home is in use by another meshfold process")
	// ErrUnknownFolder: this node syncs no folder with that ID.
	ErrUnknownFolder = errors.New("unknown folder")
)

// Config is how to run a node.
type Config struct {
	Home        string          // node home: keys, index, config
	ListenAddrs []string        // empty: DefaultListenAddrs(DefaultPort)
	Bootstrap   []peer.AddrInfo // peers to dial at start (and DHT bootstrap)
	MDNS        bool            // LAN discovery
	DHT         bool            // WAN discovery through meshfold's DHT
	DHTServer   bool            // answer DHT queries
	Relays      []peer.AddrInfo // circuit relays to reserve slots on when not publicly reachable
	MaxConns    int             // cap on all connections; 0: MaxConns
	RelayAlways bool            // reserve relay slots at once, without waiting for AutoNAT's verdict
	// RelayService makes the node a relay for others (`meshfold relay`);
	// it needs Announce, the public addresses to announce.
	RelayService bool
	Announce     []string      // multiaddrs announced instead of the listen addresses
	RelayLimits  RelayLimits   // per-circuit limits of the relay service; zero: the defaults
	Heartbeat    time.Duration // 0: DefaultHeartbeat
	Logger       *slog.Logger
	// MakeHost, if set, builds the node's libp2p host from the device key
	// instead of NewHost (TCP and QUIC): simulations put many nodes on one
	// in-memory network this way. ListenAddrs is then unused, and discovery
	// does only what MDNS, DHT and Bootstrap ask. The host should count its
	// bytes in bw (BytesOnWire reports them). The node owns the host and
	// closes it in Close.
	MakeHost func(key crypto.PrivKey, bw *metrics.BandwidthCounter) (host.Host, error)
}

// Node is a running device: host, index, discovery and the folders it syncs.
type Node struct {
	cfg     Config
	log     *slog.Logger
	key     crypto.PrivKey
	userKey crypto.PrivKey
	linked  atomic.Pointer[crdt.DeviceCert] // set on a linked device: it acts for that user (device.go)
	id      peer.ID
	db      *store.DB
	host    host.Host
	disc    *Discovery
	ps      *pubsub.PubSub

	ctx    context.Context
	cancel context.CancelFunc

	bw     *metrics.BandwidthCounter
	relays *relaySet

	punchMu    sync.Mutex
	punchTries map[peer.ID]int // hole-punch retries per peer (relay.go)

	linkGuardOnce sync.Once
	linkGuardV    *linkGuard // links.go

	mu        sync.Mutex
	folders   map[string]*Folder
	pausedAll bool // the global pause switch (daemon.go)
	wg        sync.WaitGroup

	metrics *nodeMetrics // metrics.go
	events  *eventHub    // events.go
}

// FoldersFile lists, in the node home, the folders the node syncs (ID and
// local directory), so a restart resumes them.
const FoldersFile = "folders.json"

// folderEntry is one line of FoldersFile.
type folderEntry struct {
	ID     string `json:"id"`
	Root   string `json:"root"`
	Paused bool   `json:"paused,omitempty"`
}

// Open prepares a node from its home: keys (created on first start), the
// index and the libp2p host. Start makes it go.
func Open(cfg Config) (*Node, error) {
	if cfg.Home == "" {
		return nil, errors.New("node: no home directory")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("node home: %w", err)
	}
	key, _, err := LoadOrCreateIdentity(cfg.Home)
	if err != nil {
		return nil, err
	}
	userKey, _, err := LoadOrCreateUserKey(cfg.Home)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(filepath.Join(cfg.Home, "index"))
	if err != nil {
		if strings.Contains(err.Error(), "resource temporarily unavailable") {
			return nil, fmt.Errorf("%s: %w", cfg.Home, ErrHomeInUse)
		}
		return nil, err
	}
	bw := metrics.NewBandwidthCounter()
	rs := &relaySet{}
	hostOpts, err := hostOptions(cfg, rs)
	if err == nil {
		err = loadRelays(cfg, log, rs)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	var h host.Host
	if cfg.MakeHost != nil {
		h, err = cfg.MakeHost(key, bw)
	} else {
		h, err = NewHost(HostConfig{Key: key, ListenAddrs: cfg.ListenAddrs, Bandwidth: bw, MaxConns: cfg.MaxConns, Options: hostOpts})
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, key: key, userKey: userKey, id: h.ID(), db: db, host: h, bw: bw, relays: rs, folders: map[string]*Folder{}, punchTries: map[peer.ID]int{}}
	linked, err := loadLinkedCert(cfg.Home, n.id)
	if err != nil {
		h.Close()
		db.Close()
		return nil, err
	}
	n.linked.Store(linked)
	n.log = log.With("device", ShortID(n.id))
	if err := n.openDaemonState(); err != nil {
		h.Close()
		db.Close()
		return nil, err
	}
	return n, nil
}

// Start starts pubsub, the protocol servers and discovery.
func (n *Node) Start(ctx context.Context) error {
	n.ctx, n.cancel = context.WithCancel(context.Background())
	// Folder state gossip may use relayed connections: its messages are small
	// and the relay's limits bound them (pubsub opens its streams with this
	// context).
	ps, err := pubsub.NewGossipSub(allowLimited(n.ctx), n.host,
		pubsub.WithPeerOutboundQueueSize(pubsubQueue),
		pubsub.WithValidateQueueSize(pubsubQueue),
	)
	if err != nil {
		return fmt.Errorf("starting pubsub: %w", err)
	}
	n.ps = ps
	index.NewServer(n, n).Register(n.host)
	chunks.NewServer(n, n).Register(n.host)
	chunks.NewDeltaServer(n, n).Register(n.host)
	logsync.NewServer(n, n).Register(n.host)
	join.NewServer(n).Register(n.host)
	links.NewServer(n).Register(n.host)
	n.registerRelayedState()
	n.watchUpgrades()
	n.disc = NewDiscovery(n.host, DiscoveryConfig{
		MDNS: n.cfg.MDNS, DHT: n.cfg.DHT, DHTServer: n.cfg.DHTServer,
		Bootstrap: append(slices.Clone(n.cfg.Bootstrap), n.relays.list()...), AddrBook: n.db, Logger: n.log,
	})
	if err := n.disc.Start(ctx); err != nil {
		return err
	}
	n.startEvents()
	return n.resumeFolders()
}

// resumeFolders restarts every folder listed in the home. A folder that fails
// to load is logged and skipped: the others still sync.
func (n *Node) resumeFolders() error {
	entries, err := n.readFolders()
	if err != nil {
		return err
	}
	for _, e := range entries {
		log, err := crdt.Load(n.db.LogStore(e.ID))
		if err == nil {
			_, err = n.runFolder(log, e.Root, e.Paused)
		}
		if err != nil {
			n.log.Error("cannot resume folder", "folder", e.ID, "root", e.Root, "err", err)
		}
	}
	return nil
}

func (n *Node) readFolders() ([]folderEntry, error) {
	raw, err := os.ReadFile(filepath.Join(n.cfg.Home, FoldersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []folderEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", FoldersFile, err)
	}
	return entries, nil
}

// saveFolders writes the folder list atomically.
func (n *Node) saveFolders() error {
	n.mu.Lock()
	entries := make([]folderEntry, 0, len(n.folders))
	for id, f := range n.folders {
		entries = append(entries, folderEntry{ID: id, Root: f.root, Paused: f.run.paused})
	}
	n.mu.Unlock()
	slices.SortFunc(entries, func(a, b folderEntry) int { return strings.Compare(a.ID, b.ID) })
	raw, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(n.cfg.Home, FoldersFile), raw, 0o600)
}

// BytesOnWire is what the host has sent and received in total.
func (n *Node) BytesOnWire() (in, out int64) {
	t := n.bw.GetBandwidthTotals()
	return t.TotalIn, t.TotalOut
}

// Close stops every folder, discovery, the host and the index, in that order.
func (n *Node) Close() error {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	var errs []error
	if n.disc != nil {
		errs = append(errs, n.disc.Close())
	}
	errs = append(errs, n.host.Close(), n.db.Close())
	return errors.Join(errs...)
}

// ID is this device's ID.
func (n *Node) ID() peer.ID { return n.id }

// User is the ID of the user this device acts for.
func (n *Node) User() crdt.UserID {
	if c := n.linked.Load(); c != nil {
		return c.User
	}
	return DeviceIDOf(n.userKey)
}

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// AddrInfo is how other nodes reach this one.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.id, Addrs: n.host.Addrs()} }

// DeviceCert is the user's certificate for this device.
func (n *Node) DeviceCert() (crdt.DeviceCert, error) {
	if c := n.linked.Load(); c != nil {
		return *c, nil
	}
	return crdt.CertifyDevice(n.userKey, n.id)
}

// Folder returns a running folder by ID.
func (n *Node) Folder(id string) (*Folder, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.folders[id]
	return f, ok
}

// FolderAt returns the ID of the folder syncing directory root, if any.
func (n *Node) FolderAt(root string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, f := range n.folders {
		if f.root == root {
			return id, true
		}
	}
	return "", false
}

// CreateFolder makes a new shared folder of root, with this node's user as
// founder, and starts syncing it.
func (n *Node) CreateFolder(root, name string) (*Folder, error) {
	cert, err := n.DeviceCert()
	if err != nil {
		return nil, err
	}
	log, err := crdt.NewFolder(n.key, crdt.Genesis{Name: name, Founders: []crdt.DeviceCert{cert}}, time.Now().UnixMilli(), crdt.NewMemStore())
	if err != nil {
		return nil, err
	}
	return n.startFolder(log, root)
}

// JoinFolder starts syncing a folder whose log this node already holds ops of
// (genesis first): the invitation flow delivers them; tests hand them over.
func (n *Node) JoinFolder(root string, ops [][]byte) (*Folder, error) {
	if len(ops) == 0 {
		return nil, errors.New("node: joining needs the folder's genesis op")
	}
	log, err := crdt.New(ops[0], crdt.NewMemStore())
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	if _, err := log.Merge(ops[1:]); err != nil {
		return nil, err
	}
	return n.startFolder(log, root)
}

// startFolder persists the ops of mem (a log built in memory: its ID is only
// known once its genesis is) in the node's store, reopens the log over that
// store, and starts the folder's runner.
func (n *Node) startFolder(mem *crdt.Log, root string) (*Folder, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if id, ok := n.FolderAt(abs); ok {
		return nil, fmt.Errorf("%s is already synced as folder %s", abs, id)
	}
	if st, err := os.Stat(abs); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", abs)
	}
	if err := os.MkdirAll(filepath.Join(abs, store.MarkerName), 0o755); err != nil {
		return nil, fmt.Errorf("creating the folder marker: %w", err)
	}
	ls := n.db.LogStore(mem.Folder().String())
	for _, raw := range mem.OpsSince(nil) {
		op, err := crdt.DecodeOp(raw)
		if err != nil {
			return nil, err
		}
		if err := ls.Put(op.ID.Bytes(), raw); err != nil {
			return nil, err
		}
	}
	log, err := crdt.Load(ls)
	if err != nil {
		return nil, fmt.Errorf("loading the folder log: %w", err)
	}
	f, err := n.runFolder(log, abs, false)
	if err != nil {
		return nil, err
	}
	return f, n.saveFolders()
}

// runFolder starts the runner of a folder whose log is in the node's store
// (unless it or the node is paused).
func (n *Node) runFolder(log *crdt.Log, abs string, paused bool) (*Folder, error) {
	id := log.Folder().String()
	f, err := newFolder(n, log, abs)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if _, dup := n.folders[id]; dup {
		n.mu.Unlock()
		return nil, fmt.Errorf("folder %s is already syncing", id)
	}
	n.folders[id] = f
	f.run.paused = paused
	running := !paused && !n.pausedAll
	n.mu.Unlock()
	if running {
		f.startRunner()
	}
	return f, nil
}

// chunkElsewhere reads chunk c from a file of another folder this device
// syncs, verified: identical bytes need not cross the network.
func (n *Node) chunkElsewhere(except *Folder, c cid.Cid) ([]byte, bool) {
	n.mu.Lock()
	others := make([]*Folder, 0, len(n.folders))
	for _, f := range n.folders {
		if f != except {
			others = append(others, f)
		}
	}
	n.mu.Unlock()
	for _, f := range others {
		if data, err := f.idx.ReadChunk(f.root, c); err == nil {
			return data, true
		}
	}
	return nil, false
}

// folder looks up a folder for a protocol server, as wire.ErrNotFound when
// unknown or paused (a paused folder neither sends nor receives).
func (n *Node) folder(id string) (*Folder, error) {
	if f, ok := n.Folder(id); ok && !f.Paused() {
		return f, nil
	}
	return nil, wire.ErrNotFound
}

// Since serves index sync (index.Source): the versions by dev with Seq >=
// from, signed ones only.
func (n *Node) Since(folder string, dev store.DeviceID, from uint64, fn func(store.FileInfo) error) error {
	f, err := n.folder(folder)
	if err != nil {
		return err
	}
	return f.since(dev, from, fn)
}

// CanRead answers the index and chunk servers: may peer p read path?
func (n *Node) CanRead(folder string, p peer.ID, path string) bool {
	f, err := n.folder(folder)
	if err != nil {
		return false
	}
	return f.canRead(p, path)
}

// ReadChunk serves chunk exchange: a chunk of a file p may read, verified.
func (n *Node) ReadChunk(folder string, c cid.Cid, allowed func(path string) bool) ([]byte, error) {
	f, err := n.folder(folder)
	if err != nil {
		return nil, err
	}
	return f.readChunk(c, allowed, nil)
}

// ReadChunkInto is ReadChunk reading into buf when the chunk fits
// (chunks.BufferSource: the server reuses its buffers).
func (n *Node) ReadChunkInto(folder string, c cid.Cid, allowed func(path string) bool, buf []byte) ([]byte, error) {
	f, err := n.folder(folder)
	if err != nil {
		return nil, err
	}
	return f.readChunk(c, allowed, buf)
}

// Heads serves log sync.
func (n *Node) Heads(folder string) ([]cid.Cid, error) {
	f, err := n.folder(folder)
	if err != nil {
		return nil, err
	}
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.rlog.Heads(), nil
}

// Op serves log sync.
func (n *Node) Op(folder string, c cid.Cid) ([]byte, error) {
	f, err := n.folder(folder)
	if err != nil {
		return nil, err
	}
	f.logMu.Lock()
	defer f.logMu.Unlock()
	op, ok := f.rlog.Get(c)
	if !ok {
		return nil, wire.ErrNotFound
	}
	return op.Raw, nil
}

// IsMember answers log sync: only live member devices may read the log, and
// the devices whose access request is not approved (to learn the answer).
func (n *Node) IsMember(folder string, p peer.ID) bool {
	f, err := n.folder(folder)
	if err != nil {
		return false
	}
	f.logMu.Lock()
	defer f.logMu.Unlock()
	_, ok := f.rlog.DeviceUser(p)
	return ok || f.isRequester(p)
}

// ShortID is the short form of a device ID used in logs and conflict names.
func ShortID(p peer.ID) string {
	s := p.String()
	if len(s) > 7 {
		return s[len(s)-7:]
	}
	return s
}
