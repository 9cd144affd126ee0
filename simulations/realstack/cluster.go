package realstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/node"
)

// member is one device of the cluster: a real node.Node with its home and
// folder directory on disk, on the cluster's mocknet.
type member struct {
	i      int
	name   string
	home   string
	root   string
	addr   ma.Multiaddr
	viewer bool

	n  *node.Node // nil while down
	id peer.ID
	// bytes moved by earlier incarnations (a restart resets the counter)
	pastIn, pastOut int64
}

// cluster is N real nodes on one mocknet.
type cluster struct {
	mn        mocknet.Mocknet
	dir       string
	log       *slog.Logger
	heartbeat time.Duration
	link      mocknet.LinkOptions

	mu      sync.Mutex
	members []*member
	cut     map[[2]int]bool // pairs whose link is cut (partition)
	slow    map[int]bool    // members whose links are slow
	slowOpt mocknet.LinkOptions
	proto   *protoBytes // received bytes per protocol
}

func newCluster(dir string, n int, link, slow mocknet.LinkOptions, heartbeat time.Duration, log *slog.Logger) *cluster {
	mn := mocknet.New()
	mn.SetLinkDefaults(link)
	c := &cluster{mn: mn, dir: dir, log: log, heartbeat: heartbeat, link: link, slowOpt: slow, proto: &protoBytes{n: map[protocol.ID]int64{}}, cut: map[[2]int]bool{}, slow: map[int]bool{}}
	for i := range n {
		name := fmt.Sprintf("n%03d", i)
		addr := ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4242", i>>16&0xff, i>>8&0xff, i&0xff))
		c.members = append(c.members, &member{
			i: i, name: name, addr: addr,
			home: filepath.Join(dir, name, "home"),
			root: filepath.Join(dir, name, "folder"),
		})
	}
	return c
}

// start opens and starts member m's node from its home (first start or a
// restart) and links it to every other member, except across a cut.
func (c *cluster) start(m *member, bootstrap []peer.AddrInfo) error {
	n, err := node.Open(node.Config{
		Home:      m.home,
		Heartbeat: c.heartbeat,
		Bootstrap: bootstrap,
		Logger:    c.log.With("node", m.name),
		MakeHost: func(key crypto.PrivKey, bw *metrics.BandwidthCounter) (host.Host, error) {
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				return nil, err
			}
			// A restart brings a new host for the same peer: the links
			// of the old one go first.
			for _, o := range c.members {
				if o != m && o.id != "" {
					c.unlink(id, o.id)
				}
			}
			h, err := c.mn.AddPeer(key, m.addr)
			if err != nil {
				return nil, err
			}
			return &countingHost{Host: h, bw: bw, proto: c.proto}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	m.id = n.ID()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.members {
		if o == m || o.id == "" || c.cut[pairOf(m.i, o.i)] {
			continue
		}
		l, err := c.mn.LinkPeers(m.id, o.id)
		if err != nil {
			n.Close()
			return fmt.Errorf("linking %s and %s: %w", m.name, o.name, err)
		}
		if c.slow[m.i] || c.slow[o.i] {
			l.SetOptions(c.slowOpt)
		}
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		return fmt.Errorf("%s: %w", m.name, err)
	}
	m.n = n
	return nil
}

// stop closes member m's node (its home and folder stay on disk).
func (c *cluster) stop(m *member) error {
	if m.n == nil {
		return nil
	}
	in, out := m.n.BytesOnWire()
	m.pastIn += in
	m.pastOut += out
	err := m.n.Close()
	m.n = nil
	// A closed mocknet host still accepts connections over its links (a
	// real one that is gone does not), and a peer would keep such a stale
	// connection after the restart: cut the links and what came through.
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.members {
		if o != m && o.id != "" {
			c.unlink(m.id, o.id)
			err = errors.Join(err, c.mn.DisconnectPeers(m.id, o.id))
		}
	}
	return err
}

func (c *cluster) close() error {
	var errs []error
	for _, m := range c.members {
		errs = append(errs, c.stop(m))
	}
	errs = append(errs, c.mn.Close())
	return errors.Join(errs...)
}

// bytes is what every node sent and received, restarts included.
func (c *cluster) bytes() (in, out int64) {
	for _, m := range c.members {
		in += m.pastIn
		out += m.pastOut
		if m.n != nil {
			i, o := m.n.BytesOnWire()
			in += i
			out += o
		}
	}
	return in, out
}

// setSlow makes every link of member i slow (latency, bandwidth).
func (c *cluster) setSlow(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slow[i] = true
	m := c.members[i]
	for _, o := range c.members {
		if o == m || o.id == "" || m.id == "" {
			continue
		}
		for _, l := range c.mn.LinksBetweenPeers(m.id, o.id) {
			l.SetOptions(c.slowOpt)
		}
	}
}

// partition cuts every link between side a and the rest, and closes the
// connections across (unlinking alone leaves them open).
func (c *cluster) partition(side map[int]bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		for _, o := range c.members {
			if m.i >= o.i || side[m.i] == side[o.i] {
				continue
			}
			c.cut[pairOf(m.i, o.i)] = true
			if m.id == "" || o.id == "" {
				continue
			}
			c.unlink(m.id, o.id)
			if err := c.mn.DisconnectPeers(m.id, o.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// heal relinks every cut pair. Connections come back the way discovery would
// bring them: each running member dials a few members of the other side.
func (c *cluster) heal(pick func(n int) int, dials int) error {
	c.mu.Lock()
	cut := c.cut
	c.cut = map[[2]int]bool{}
	c.mu.Unlock()
	other := map[int][]int{}
	for p := range cut {
		a, b := c.members[p[0]], c.members[p[1]]
		other[p[0]] = append(other[p[0]], p[1])
		other[p[1]] = append(other[p[1]], p[0])
		if a.n == nil || b.n == nil {
			continue // relinked when it starts again
		}
		l, err := c.mn.LinkPeers(a.id, b.id)
		if err != nil {
			return err
		}
		if c.slow[a.i] || c.slow[b.i] {
			l.SetOptions(c.slowOpt)
		}
	}
	for i, os := range other {
		m := c.members[i]
		if m.n == nil || len(os) == 0 {
			continue
		}
		for range dials {
			o := c.members[os[pick(len(os))]]
			if o.n == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := m.n.Host().Connect(ctx, o.n.AddrInfo())
			cancel()
			if err != nil {
				c.log.Warn("heal: dial failed", "from", m.name, "to", o.name, "err", err)
			}
		}
	}
	return nil
}

func pairOf(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// unlink removes every link between a and b (mocknet's UnlinkPeers fails
// when there is none).
func (c *cluster) unlink(a, b peer.ID) {
	for _, l := range c.mn.LinksBetweenPeers(a, b) {
		c.mn.Unlink(l)
	}
}
