package logsync

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
)

// MaxPullOps bounds the ops one Pull collects before delivering them: the
// missing part of a log must fit in memory once (at MaxOpSize each, the
// worst case is large; real ops are a few hundred bytes).
const MaxPullOps = 100_000

// ErrTooManyOps: a Pull would collect more than MaxPullOps ops.
var ErrTooManyOps = errors.New("log sync: too many missing ops")

// Session is the client side of one log-sync stream.
type Session struct {
	rw     io.ReadWriter
	folder string
	Theirs []cid.Cid // the server's heads
}

// Start sends our heads for folder and reads the server's.
func Start(rw io.ReadWriter, folder string, mine []cid.Cid) (*Session, error) {
	if len(mine) > wire.MaxLogHeads {
		return nil, fmt.Errorf("%d heads: %w", len(mine), wire.ErrBadRequest)
	}
	if err := wire.WriteFrame(rw, wire.TypeLogHeads, Heads{Folder: folder, Heads: mine}.Marshal()); err != nil {
		return nil, err
	}
	payload, err := wire.ExpectFrame(rw, clientLimits, wire.TypeLogHeads)
	if err != nil {
		return nil, fmt.Errorf("log heads: %w", err)
	}
	h, err := UnmarshalHeads(payload)
	if err != nil {
		return nil, fmt.Errorf("log heads: %w", err)
	}
	if h.Folder != folder {
		return nil, fmt.Errorf("heads for folder %q, asked %q: %w", h.Folder, folder, wire.ErrProtocol)
	}
	return &Session{rw: rw, folder: folder, Theirs: h.Heads}, nil
}

// Want asks for up to MaxWant ops and returns those the server sent, keyed
// by CID (KeyString). Every op is checked to hash to one of the wanted CIDs
// (with that CID's prefix); any other op means a broken or hostile server
// (wire.ErrProtocol).
func (s *Session) Want(cids []cid.Cid) (map[string][]byte, error) {
	if len(cids) == 0 || len(cids) > MaxWant {
		return nil, fmt.Errorf("want of %d ops: %w", len(cids), wire.ErrBadRequest)
	}
	if err := wire.WriteFrame(s.rw, wire.TypeLogWant, Want{CIDs: cids}.Marshal()); err != nil {
		return nil, err
	}
	payload, err := wire.ExpectFrame(s.rw, clientLimits, wire.TypeLogOps)
	if err != nil {
		return nil, fmt.Errorf("log ops: %w", err)
	}
	ops, err := UnmarshalOps(payload)
	if err != nil {
		return nil, fmt.Errorf("log ops: %w", err)
	}
	wanted := make(map[string]bool, len(cids))
	var prefixes []cid.Prefix
	for _, c := range cids {
		wanted[c.KeyString()] = true
		if p := c.Prefix(); !containsPrefix(prefixes, p) {
			prefixes = append(prefixes, p)
		}
	}
	out := make(map[string][]byte, len(ops.Ops))
	for _, op := range ops.Ops {
		key, ok := match(op, prefixes, wanted)
		if !ok {
			return nil, fmt.Errorf("op that was not asked for: %w", wire.ErrProtocol)
		}
		out[key] = op
	}
	return out, nil
}

func containsPrefix(ps []cid.Prefix, p cid.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func match(op []byte, prefixes []cid.Prefix, wanted map[string]bool) (string, bool) {
	for _, p := range prefixes {
		c, err := p.Sum(op)
		if err == nil && wanted[c.KeyString()] {
			return c.KeyString(), true
		}
	}
	return "", false
}

// PullFuncs are what Pull needs from the caller's log.
type PullFuncs struct {
	// Have reports whether the local log already has op c.
	Have func(c cid.Cid) bool
	// Parents parses an op (already known to hash to its CID) and returns
	// its parents; an error rejects the op and ends the pull.
	Parents func(op []byte) ([]cid.Cid, error)
	// Deliver hands over one op, parents before children. An error ends the
	// pull.
	Deliver func(c cid.Cid, op []byte) error
}

// Pull fetches every op reachable from the server's heads that the local log
// lacks and delivers them parents first. It returns how many it delivered.
func Pull(ctx context.Context, rw io.ReadWriter, folder string, mine []cid.Cid, fn PullFuncs) (int, error) {
	defer wire.Bind(ctx, rw)()
	s, err := Start(rw, folder, mine)
	if err != nil {
		return 0, err
	}
	type node struct {
		c       cid.Cid
		op      []byte
		parents []cid.Cid
	}
	var (
		frontier []cid.Cid
		seen     = map[string]bool{}
		got      = map[string]*node{}
		order    []*node
	)
	push := func(c cid.Cid) {
		if !seen[c.KeyString()] && !fn.Have(c) {
			seen[c.KeyString()] = true
			frontier = append(frontier, c)
		}
	}
	for _, h := range s.Theirs {
		push(h)
	}
	for len(frontier) > 0 {
		batch := frontier[:min(len(frontier), MaxWant)]
		frontier = frontier[len(batch):]
		ops, err := s.Want(batch)
		if err != nil {
			return 0, err
		}
		if len(ops) == 0 {
			return 0, fmt.Errorf("server lacks op %s it referenced: %w", batch[0], wire.ErrNotFound)
		}
		for _, c := range batch {
			op, ok := ops[c.KeyString()]
			if !ok {
				frontier = append(frontier, c) // did not fit; ask again
				continue
			}
			parents, err := fn.Parents(op)
			if err != nil {
				return 0, fmt.Errorf("op %s: %w", c, err)
			}
			n := &node{c: c, op: op, parents: parents}
			got[c.KeyString()] = n
			order = append(order, n)
			if len(order) > MaxPullOps {
				return 0, ErrTooManyOps
			}
			for _, p := range parents {
				push(p)
			}
		}
	}
	// Parents first: depth-first post-order over the fetched sub-DAG.
	done := map[string]bool{}
	delivered := 0
	var visit func(n *node) error
	visit = func(n *node) error {
		stack := []*node{n}
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if done[top.c.KeyString()] {
				stack = stack[:len(stack)-1]
				continue
			}
			pushed := false
			for _, p := range top.parents {
				if pn, ok := got[p.KeyString()]; ok && !done[p.KeyString()] {
					stack = append(stack, pn)
					pushed = true
					break
				}
			}
			if pushed {
				continue
			}
			done[top.c.KeyString()] = true
			stack = stack[:len(stack)-1]
			if err := fn.Deliver(top.c, top.op); err != nil {
				return err
			}
			delivered++
		}
		return nil
	}
	for i := len(order) - 1; i >= 0; i-- {
		if err := visit(order[i]); err != nil {
			return delivered, err
		}
	}
	return delivered, nil
}

// Open runs Pull with peer p over a new libp2p stream.
func Open(ctx context.Context, h host.Host, p peer.ID, folder string, mine []cid.Cid, fn PullFuncs) (int, error) {
	st, err := h.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return 0, fmt.Errorf("opening log stream to %s: %w", p, err)
	}
	n, err := Pull(ctx, st, folder, mine, fn)
	if err != nil {
		_ = st.Reset()
		return n, err
	}
	_ = st.Close()
	return n, nil
}
