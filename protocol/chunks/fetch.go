package chunks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// Fetcher defaults.
const (
	// DefaultMaxInFlight is the most chunks requested and not yet received
	// from one peer.
	DefaultMaxInFlight = 32
	// InitialWindow is a peer's window before its rate is measured.
	InitialWindow = 4
	// DefaultResponseTimeout is how long a peer with requests in flight may
	// go without answering before it is dropped from the transfer.
	DefaultResponseTimeout = 30 * time.Second
	// DefaultTargetQueue is how much work, in time at its measured rate, a
	// peer is given ahead: its window is rate x TargetQueue bytes.
	DefaultTargetQueue = 200 * time.Millisecond
	// DeliverQueue is how many verified chunks of one peer may wait for
	// deliver while the next responses are read.
	DeliverQueue = 4
)

// ErrUnavailable: no usable peer could supply some of the wanted chunks.
var ErrUnavailable = errors.New("chunks unavailable from every peer")

// ErrTimeout: a peer with requests in flight stopped answering.
var ErrTimeout = errors.New("peer stopped answering")

// abort ends a stream at once: Reset if it has one (libp2p streams), Close
// otherwise.
func abort(c io.Closer) {
	if r, ok := c.(interface{ Reset() error }); ok {
		_ = r.Reset()
		return
	}
	_ = c.Close()
}

// ErrBadPeer is what Penalize receives as the reason for peers that sent
// data that does not match its CID or broke the protocol.
var ErrBadPeer = errors.New("peer sent bad data")

// FetchOptions configures one transfer.
type FetchOptions struct {
	Folder string
	// Open opens a chunk stream to a peer (OpenWith gives one for a host).
	Open func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error)
	// Has says whether peer p has chunk c; nil means every peer has every
	// chunk.
	Has func(p peer.ID, c cid.Cid) bool
	// Penalize is told about a peer dropped for bad data (the error wraps
	// ErrBadPeer). May be nil.
	Penalize func(p peer.ID, reason error)
	// MaxInFlight bounds each peer's window in chunks; 0 means
	// DefaultMaxInFlight.
	MaxInFlight int
	// TargetQueue sizes windows from measured rates; 0 means
	// DefaultTargetQueue.
	TargetQueue time.Duration
	// ResponseTimeout: see DefaultResponseTimeout (used when 0). It needs
	// streams with SetReadDeadline (libp2p streams, net.Conn).
	ResponseTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Buffers, if set, supplies the buffers large responses are read into
	// and takes each back once its chunk was delivered (or dropped): with
	// it, deliver must not keep data after it returns (fetch_buffers.go).
	Buffers Buffers
}

// OpenWith returns a FetchOptions.Open that opens ProtocolID streams on h.
func OpenWith(h host.Host) func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
	return func(ctx context.Context, p peer.ID) (io.ReadWriteCloser, error) {
		return h.NewStream(ctx, p, ProtocolID)
	}
}

// PeerStats is what one peer did in a transfer.
type PeerStats struct {
	Requests int     // Request messages sent
	Asked    int     // chunks requested
	Chunks   int     // verified chunks delivered from it
	Bytes    int64   // their bytes
	Rate     float64 // last EWMA estimate, bytes per second
	Dropped  error   // why it was dropped, nil if it was not
}

// Stats is the outcome of a transfer.
type Stats struct {
	Peers   map[peer.ID]*PeerStats
	Missing []cid.Cid // chunks no peer could supply
}

type item struct {
	c      cid.Cid
	done   bool             // delivered or given up
	failed map[peer.ID]bool // peers that answered with an error for it
	asked  int              // peers it is in flight at
	at     map[peer.ID]bool // which ones
}

// maxCopies is how many peers one chunk may be in flight at: 2 in the
// endgame, when a peer with room and nothing pending re-requests a chunk
// still waiting at another (slower) peer; the first answer wins.
const maxCopies = 2

type peerState struct {
	id       peer.ID
	window   int
	inflight int
	queue    []sent // in-flight chunks, in request order
	lastRecv time.Time
	rate     ewma
	avgChunk float64
	dropped  bool
	stats    *PeerStats
	conn     io.Closer
	timer    *time.Timer // response timeout, see armTimeout
	deadline time.Time
}

// armTimeout gives a peer with requests in flight ResponseTimeout to answer
// the next one; an idle peer has no deadline. A timer rather than stream
// deadlines, because not every stream honours them (mocknet's do nothing).
// mu held.
func (f *fetch) armTimeout(ps *peerState) {
	if ps.inflight == 0 || ps.dropped {
		if ps.timer != nil {
			ps.timer.Stop()
		}
		return
	}
	ps.deadline = time.Now().Add(f.opts.ResponseTimeout)
	if ps.timer == nil {
		ps.timer = time.AfterFunc(f.opts.ResponseTimeout, func() { f.expire(ps) })
		return
	}
	ps.timer.Reset(f.opts.ResponseTimeout)
}

// expire drops a peer whose deadline passed with requests in flight.
func (f *fetch) expire(ps *peerState) {
	f.mu.Lock()
	late := ps.inflight > 0 && !ps.dropped && !time.Now().Before(ps.deadline)
	f.mu.Unlock()
	if late {
		f.drop(ps, fmt.Errorf("no answer in %v: %w", f.opts.ResponseTimeout, ErrTimeout), false)
	}
}

type sent struct {
	it *item
	at time.Time
}

type fetch struct {
	opts    FetchOptions
	deliver func(cid.Cid, []byte) error

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every state change
	pending   []*item       // not done, not in flight anywhere
	items     map[string]*item
	remaining int
	peers     map[peer.ID]*peerState
	finished  bool
	fatal     error
	missing   []cid.Cid

	deliverMu sync.Mutex
	ctx       context.Context // the transfer's; streams fail once it ends
}

// Fetch gets every chunk in want from peers and passes each, verified, to
// deliver (called from one goroutine at a time; the data is not reused). A
// chunk a peer lacks is retried at the others; a peer that sends bad data is
// dropped for the rest of the transfer, penalised, and its chunks go to the
// others. When nothing is left to ask for, a peer with room re-requests
// chunks still waiting at another peer (endgame), so one slow or stalled peer
// does not hold up the end of the transfer; the first verified answer wins.
// It returns when every chunk is delivered or known unavailable
// (ErrUnavailable, with Stats.Missing), ctx ends, or deliver fails.
func Fetch(ctx context.Context, opts FetchOptions, want []cid.Cid, peers []peer.ID, deliver func(cid.Cid, []byte) error) (Stats, error) {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.TargetQueue <= 0 {
		opts.TargetQueue = DefaultTargetQueue
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = DefaultResponseTimeout
	}
	if opts.Has == nil {
		opts.Has = func(peer.ID, cid.Cid) bool { return true }
	}
	f := &fetch{opts: opts, deliver: deliver, changed: make(chan struct{}),
		items: make(map[string]*item), peers: make(map[peer.ID]*peerState)}
	stats := Stats{Peers: make(map[peer.ID]*PeerStats)}
	for _, p := range peers {
		if _, dup := f.peers[p]; dup {
			continue
		}
		ps := &peerState{id: p, window: min(InitialWindow, opts.MaxInFlight), stats: &PeerStats{}}
		f.peers[p] = ps
		stats.Peers[p] = ps.stats
	}
	for _, c := range want {
		if _, dup := f.items[c.KeyString()]; dup {
			continue
		}
		it := &item{c: c, failed: make(map[peer.ID]bool), at: make(map[peer.ID]bool)}
		f.items[c.KeyString()] = it
		f.remaining++
		if f.servable(it) {
			f.pending = append(f.pending, it)
		} else {
			f.giveUp(it)
		}
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f.ctx = ctx
	var wg sync.WaitGroup
	for _, ps := range f.peers {
		wg.Go(func() { f.runPeer(ctx, ps) })
	}
	f.mu.Lock()
	for f.remaining > 0 && f.fatal == nil && ctx.Err() == nil {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		f.mu.Lock()
	}
	f.finished = true
	f.broadcast()
	err := f.fatal
	f.mu.Unlock()
	cancel()
	wg.Wait()

	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ps := range f.peers {
		ps.stats.Rate = ps.rate.bps()
	}
	stats.Missing = f.missing
	switch {
	case err != nil:
		return stats, err
	case f.remaining > 0 || (len(f.missing) > 0 && parent.Err() != nil):
		return stats, fmt.Errorf("fetching chunks: %w", context.Cause(parent))
	case len(f.missing) > 0:
		return stats, fmt.Errorf("%d of %d chunks: %w", len(f.missing), len(f.items), ErrUnavailable)
	}
	return stats, nil
}

// broadcast wakes every waiter. Call with mu held.
func (f *fetch) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// servable: some peer not dropped and not failed for it has it. mu held.
func (f *fetch) servable(it *item) bool {
	for id, ps := range f.peers {
		if !ps.dropped && !it.failed[id] && f.opts.Has(id, it.c) {
			return true
		}
	}
	return false
}

// giveUp marks it unavailable. mu held.
func (f *fetch) giveUp(it *item) {
	it.done = true
	f.remaining--
	f.missing = append(f.missing, it.c)
}

// requeue puts an item whose request failed back in front, or gives up on
// it if no one is left to ask (and no one else has it in flight). mu held.
func (f *fetch) requeue(it *item) {
	if it.done || it.asked > 0 {
		return
	}
	if f.servable(it) {
		f.pending = append([]*item{it}, f.pending...)
	} else {
		f.giveUp(it)
	}
}

// mayServe: p may be asked for it. mu held.
func (f *fetch) mayServe(ps *peerState, it *item) bool {
	return !it.done && !it.failed[ps.id] && !it.at[ps.id] && f.opts.Has(ps.id, it.c)
}

// take picks up to n pending items p may serve; if there are none, up to n
// endgame copies of items in flight at other peers. mu held.
func (f *fetch) take(ps *peerState, n int) []*item {
	var out []*item
	kept := f.pending[:0]
	for _, it := range f.pending {
		if len(out) < n && f.mayServe(ps, it) {
			out = append(out, it)
			continue
		}
		kept = append(kept, it)
	}
	clear(f.pending[len(kept):])
	f.pending = kept
	if len(out) > 0 || len(f.pending) > 0 {
		return out
	}
	f.endgame(ps, func(it *item) bool {
		out = append(out, it)
		it.at[ps.id] = true // reserved now so it is not picked twice
		return len(out) < n
	})
	for _, it := range out {
		delete(it.at, ps.id)
	}
	return out
}

// endgame calls fn with each item in flight at another peer that p could
// also be asked for, oldest first per peer, until fn returns false. mu held.
func (f *fetch) endgame(ps *peerState, fn func(*item) bool) {
	for _, other := range f.peers {
		if other == ps || other.dropped {
			continue
		}
		for _, s := range other.queue {
			if s.it.asked < maxCopies && f.mayServe(ps, s.it) && !fn(s.it) {
				return
			}
		}
	}
}

// canTake: p has window room and a pending item (or, with nothing pending,
// an endgame copy) it may serve. mu held.
func (f *fetch) canTake(ps *peerState) bool {
	if ps.inflight >= ps.window {
		return false
	}
	for _, it := range f.pending {
		if f.mayServe(ps, it) {
			return true
		}
	}
	if len(f.pending) > 0 {
		return false
	}
	found := false
	f.endgame(ps, func(*item) bool { found = true; return false })
	return found
}

func (f *fetch) runPeer(ctx context.Context, ps *peerState) {
	conn, err := f.opts.Open(ctx, ps.id)
	if err != nil {
		f.drop(ps, fmt.Errorf("opening stream: %w", err), false)
		return
	}
	stop := wire.Bind(ctx, conn)
	defer stop()
	f.mu.Lock()
	ps.conn = conn
	f.mu.Unlock()
	cl := NewClient(conn, f.opts.Folder)
	var readers sync.WaitGroup
	readers.Go(func() { f.readPeer(ps, cl) })
	defer func() {
		abort(conn)
		readers.Wait()
		f.mu.Lock()
		if ps.timer != nil {
			ps.timer.Stop()
		}
		f.mu.Unlock()
	}()

	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		for !f.finished && !ps.dropped && !f.canTake(ps) {
			ch := f.changed
			f.mu.Unlock()
			<-ch
			f.mu.Lock()
		}
		if f.finished || ps.dropped {
			return
		}
		batch := f.take(ps, min(ps.window-ps.inflight, MaxChunksPerRequest))
		cids := make([]cid.Cid, len(batch))
		now := f.opts.Now()
		for i, it := range batch {
			cids[i] = it.c
			it.asked++
			it.at[ps.id] = true
			ps.inflight++
			ps.queue = append(ps.queue, sent{it: it, at: now})
		}
		ps.stats.Requests++
		ps.stats.Asked += len(batch)
		f.mu.Unlock()
		err := cl.Send(cids)
		f.mu.Lock()
		if err == nil && !ps.dropped {
			f.armTimeout(ps)
		}
		if err != nil {
			f.mu.Unlock()
			f.drop(ps, fmt.Errorf("sending request: %w", err), false)
			f.mu.Lock()
			return
		}
	}
}

// readPeer receives and verifies a peer's responses, and hands the chunks
// to a delivering goroutine: the next response is read while the previous
// chunk is being written (the receiver's two halves overlap, which matters
// most with a single peer).
func (f *fetch) readPeer(ps *peerState, cl *Client) {
	ready := make(chan received, DeliverQueue)
	var deliverer sync.WaitGroup
	deliverer.Go(func() { f.deliverPeer(ps, ready) })
	defer func() {
		close(ready)
		deliverer.Wait()
	}()
	var rb recvBuffers
	for {
		buf := rb.get(f.opts.Buffers)
		res, err := cl.RecvInto(buf)
		if err != nil {
			bad := errors.Is(err, store.ErrChunkMismatch) || errors.Is(err, wire.ErrProtocol) || errors.Is(err, wire.ErrMalformed)
			f.drop(ps, err, bad)
			return
		}
		f.mu.Lock()
		if ps.dropped || f.finished || f.fatal != nil {
			f.mu.Unlock()
			return
		}
		// The client checked res answers the oldest request.
		it, start := ps.queue[0].it, ps.queue[0].at
		now := f.opts.Now()
		if ps.lastRecv.After(start) {
			start = ps.lastRecv
		}
		ps.queue = ps.queue[1:]
		ps.lastRecv = now
		ps.inflight--
		f.armTimeout(ps)
		it.asked--
		delete(it.at, ps.id)
		if res.Err != nil {
			it.failed[ps.id] = true
			f.requeue(it)
			f.broadcast()
			f.mu.Unlock()
			rb.put(f.opts.Buffers, buf)
			continue
		}
		rb.sized(len(res.Data))
		ps.rate.add(len(res.Data), now.Sub(start))
		ps.avgChunk = ps.avgChunk*0.7 + float64(len(res.Data))*0.3
		if ps.rate.samples == 1 {
			ps.avgChunk = float64(len(res.Data))
		}
		ps.window = f.windowFor(ps)
		dup := it.done
		// Done now, so no other copy is delivered too; counted off
		// remaining only once delivered, so Fetch returns after the last
		// deliver (and sees its error).
		it.done = true
		f.broadcast()
		f.mu.Unlock()
		if dup {
			rb.put(f.opts.Buffers, buf)
			continue
		}
		ready <- received{res, buf}
	}
}

// deliverPeer passes the chunks readPeer verified to deliver, in order.
func (f *fetch) deliverPeer(ps *peerState, ready <-chan received) {
	for r := range ready {
		res := r.Result
		f.mu.Lock()
		skip := f.fatal != nil || f.ctx.Err() != nil
		f.mu.Unlock()
		var err error
		if !skip {
			f.deliverMu.Lock()
			err = f.deliver(res.CID, res.Data)
			f.deliverMu.Unlock()
		}
		if f.opts.Buffers != nil && r.buf != nil {
			f.opts.Buffers.Put(r.buf)
		}
		f.mu.Lock()
		switch {
		case skip:
		case err != nil:
			if f.fatal == nil {
				f.fatal = fmt.Errorf("delivering chunk %s: %w", res.CID, err)
			}
		default:
			f.remaining--
			ps.stats.Chunks++
			ps.stats.Bytes += int64(len(res.Data))
		}
		f.broadcast()
		f.mu.Unlock()
	}
}

// windowFor sizes a peer's window: enough chunks to keep it busy for
// TargetQueue at its measured rate, within [1, MaxInFlight]. mu held.
func (f *fetch) windowFor(ps *peerState) int {
	if ps.avgChunk <= 0 {
		return ps.window
	}
	w := math.Ceil(ps.rate.bps() * f.opts.TargetQueue.Seconds() / ps.avgChunk)
	return int(max(1, min(w, float64(f.opts.MaxInFlight))))
}

// drop removes a peer from the transfer and hands its in-flight chunks to the
// others. Errors after the transfer finished are the streams being closed,
// not the peer's fault.
func (f *fetch) drop(ps *peerState, reason error, bad bool) {
	f.mu.Lock()
	if ps.dropped || f.finished || f.ctx.Err() != nil {
		f.mu.Unlock()
		return
	}
	ps.dropped = true
	if bad {
		reason = fmt.Errorf("%w: %w", ErrBadPeer, reason)
	}
	ps.stats.Dropped = reason
	if ps.conn != nil {
		abort(ps.conn)
	}
	f.reassign(ps)
	f.broadcast()
	f.mu.Unlock()
	if bad && f.opts.Penalize != nil {
		f.opts.Penalize(ps.id, reason)
	}
}

// reassign releases the dropped peer's in-flight chunks and gives up on
// chunks no one left can serve. mu held.
func (f *fetch) reassign(ps *peerState) {
	queue := ps.queue
	ps.inflight, ps.queue = 0, nil
	for _, s := range queue {
		s.it.asked--
		delete(s.it.at, ps.id)
		s.it.failed[ps.id] = true
		f.requeue(s.it)
	}
	kept := f.pending[:0]
	for _, it := range f.pending {
		if f.servable(it) {
			kept = append(kept, it)
		} else {
			f.giveUp(it)
		}
	}
	clear(f.pending[len(kept):])
	f.pending = kept
}
