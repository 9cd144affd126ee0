package simulations

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/zeebo/blake3"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node/plan"
	"github.com/meshfold/meshfold/store"
)

// ErrBadOptions is returned for a run whose options break a limit.
var ErrBadOptions = errors.New("simulations: bad options")

// Hooks replace the production cores the harness drives. The zero value uses
// the real ones; tests install broken ones to show the invariants catch them.
type Hooks struct {
	// Plan wraps plan.Plan.
	Plan func(cfg plan.Config, local []store.FileInfo, remote []plan.Candidate) []plan.Action
	// Verdict wraps crdt.Log.VersionVerdict.
	Verdict func(l *crdt.Log, author store.DeviceID, heads []cid.Cid, path string, fence uint64) (crdt.Verdict, error)
	// MayRead is the sender's filter for index entries (device, path).
	MayRead func(l *crdt.Log, dev store.DeviceID, path string) bool
	// Seal encrypts a relayed message for its recipient (relay.go's seal).
	Seal func(key [32]byte, nonce uint64, plain []byte) []byte
}

func (h *Hooks) fill() {
	if h.Plan == nil {
		h.Plan = plan.Plan
	}
	if h.Verdict == nil {
		h.Verdict = realVerdict
	}
	if h.MayRead == nil {
		h.MayRead = mayRead
	}
	if h.Seal == nil {
		h.Seal = seal
	}
}

// Violation is one broken invariant.
type Violation struct {
	Invariant string // convergence, lost-version, forged-op, forged-version, privacy, relay-privacy, lock, invite, equivocation, store, harness
	AtMs      int64
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("[%s @%dms] %s", v.Invariant, v.AtMs, v.Detail)
}

// Fault is one nemesis action on the timeline.
type Fault struct {
	AtMs int64
	What string
}

// Sample is one point of the convergence series: how many distinct rights
// states and trees the honest devices hold.
type Sample struct {
	AtMs          int64
	Digests       int
	Trees         int
	BytesSoFar    int64
	MessagesSoFar int64
}

// Result is what one run produced.
type Result struct {
	Options      Options
	Converged    bool
	ConvergeMs   int64 // simulated ms from heal until every honest replica agreed (-1: never)
	Changes      int   // versions scanned plus log ops appended by honest devices
	Messages     int64
	Bytes        int64
	BytesPerNode []int64 // sent plus received, per device
	Violations   []Violation
	Faults       []Fault
	Series       []Sample
	Attacks      int // forged ops and forged versions the adversaries pushed
	Conflicts    int // conflict copies made by honest devices
	Joins        int // invitation joins appended by spare devices (including over-use tries that their replica accepted)
	TraceHash    [32]byte
	Events       int64
}

// OK reports whether every invariant held.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

type event struct {
	at   int64
	seq  uint64
	what string
	fn   func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// World is one deterministic run: devices, network, clock, faults.
type World struct {
	Log   io.Writer // when set, every trace line is also written here (debugging)
	Opt   Options
	Rand  *rand.Rand
	hooks Hooks

	now    int64
	seq    uint64
	q      eventHeap
	trace  *blake3.Hasher
	events int64

	Nodes   []*Node
	content map[string][]byte // content key -> bytes: the chunk network, instantly available
	side    []int             // partition side per device; equal sides talk
	bridge  int               // a device that talks to every side (-1: none)
	healed  bool              // liveness phase: no more faults

	folder     cid.Cid
	genesisRaw []byte

	ops      *crdt.OpCache // decoded ops shared by every device's log: one signature check per op per world
	reg      registry
	res      Result
	lockSeen map[string]crdt.LockID // path|fence -> the grant seen first

	pathNames [][]byte // what relays must never see (relay.go)
	sealed    uint64   // relayed messages sealed so far (the nonce)
}

// registry is the oracle: what the harness knows happened.
type registry struct {
	versions   map[string]*verRec // versionKey -> record
	verOrder   []string
	badOps     []cid.Cid // ops that must never be valid on an honest replica
	badVers    map[string]bool
	inviteMax  map[crdt.InviteID]uint32
	inviteKeys map[crdt.InviteID]cryptoKey
	usedBy     map[crdt.InviteID][]int
}

type verRec struct {
	info     store.FileInfo
	content  string
	admitted bool // the author's replica accepted it when it was scanned
	honest   bool
}

func versionKey(fi store.FileInfo) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], fi.Seq)
	return string(fi.Author) + string(b[:])
}

// NewWorld builds a run from options and a seed. Scenarios add their
// workload with At and the World's helpers before Run.
func NewWorld(opt Options, hooks Hooks) (*World, error) {
	if opt.Nodes < 2 || opt.Nodes > MaxNodes || opt.Ops < 0 || opt.Ops > MaxOps || opt.Paths < 1 ||
		opt.Relays < 0 || opt.Spares+opt.Faults.Adversaries+opt.Relays >= opt.Nodes || opt.WorkloadMs <= 0 || opt.QuiesceMs <= 0 ||
		opt.SyncEveryMs <= 0 || opt.Fanout < 1 {
		return nil, fmt.Errorf("%w: %s", ErrBadOptions, opt.String())
	}
	hooks.fill()
	w := &World{
		Opt:      opt,
		Rand:     rand.New(rand.NewChaCha8(seedBytes(opt.Seed))),
		hooks:    hooks,
		trace:    blake3.New(),
		content:  map[string][]byte{},
		ops:      crdt.NewOpCache(),
		bridge:   -1,
		lockSeen: map[string]crdt.LockID{},
		reg: registry{
			versions: map[string]*verRec{}, badVers: map[string]bool{},
			inviteMax: map[crdt.InviteID]uint32{}, inviteKeys: map[crdt.InviteID]cryptoKey{},
			usedBy: map[crdt.InviteID][]int{},
		},
	}
	w.Opt.derive(w.Rand)
	w.res.Options = w.Opt
	w.res.ConvergeMs = -1
	w.side = make([]int, opt.Nodes)
	w.initPathNames()
	if err := w.setup(); err != nil {
		return nil, err
	}
	return w, nil
}

func seedBytes(seed uint64) (s [32]byte) {
	binary.BigEndian.PutUint64(s[:], seed)
	copy(s[8:], "meshfold/simulations/v1")
	return s
}

// Now is the simulated time in ms since the run began.
func (w *World) Now() int64 { return w.now }

// At schedules fn at simulated time t (ms). what names it in the trace.
func (w *World) At(t int64, what string, fn func()) {
	if t < w.now {
		t = w.now
	}
	w.seq++
	heap.Push(&w.q, &event{at: t, seq: w.seq, what: what, fn: fn})
}

// Trace folds facts into the run's trace hash.
func (w *World) Trace(parts ...any) {
	fmt.Fprintln(w.trace, parts...)
	if w.Log != nil {
		fmt.Fprint(w.Log, w.now, " ")
		fmt.Fprintln(w.Log, parts...)
	}
}

func (w *World) fault(what string) {
	w.res.Faults = append(w.res.Faults, Fault{AtMs: w.now, What: what})
	w.Trace("fault", w.now, what)
}

func (w *World) violate(inv, format string, args ...any) {
	v := Violation{Invariant: inv, AtMs: w.now, Detail: fmt.Sprintf(format, args...)}
	w.res.Violations = append(w.res.Violations, v)
	w.Trace("violation", v.String())
}

// contentKey stores b in the content network and returns its key (a CID).
func (w *World) putContent(b []byte) cid.Cid {
	sum := blake3.Sum256(b)
	h, _ := mh.Encode(sum[:], mh.BLAKE3)
	c := cid.NewCidV1(cid.Raw, h)
	w.content[c.KeyString()] = b
	return c
}

// Run executes the events until the deadline, heals, waits for convergence
// and checks the invariants.
func (w *World) Run() *Result {
	for _, n := range w.Nodes {
		n := n
		w.At(w.Rand.Int64N(w.Opt.SyncEveryMs), "tick", func() { n.tick() })
	}
	healAt := w.Opt.WorkloadMs
	w.At(healAt, "heal", w.heal)
	deadline := healAt + w.Opt.QuiesceMs
	for i := int64(1000); i < deadline; i += 1000 {
		if i < healAt && i%5000 != 0 && w.Opt.Witnesses == 0 {
			continue // before the heal, one sample every 5 s is plenty for the plot
		}
		at := i
		w.At(at, "sample", func() { w.sample(at >= healAt) })
	}
	for w.q.Len() > 0 {
		e := heap.Pop(&w.q).(*event)
		if e.at > deadline || (w.res.Converged && w.now > w.res.ConvergeMs+healAt) {
			break
		}
		w.now = e.at
		w.events++
		var b [16]byte
		binary.BigEndian.PutUint64(b[:], uint64(e.at))
		binary.BigEndian.PutUint64(b[8:], e.seq)
		w.trace.Write(b[:])
		w.trace.Write([]byte(e.what))
		e.fn()
	}
	w.final()
	w.res.Events = w.events
	w.res.BytesPerNode = make([]int64, len(w.Nodes))
	for i, n := range w.Nodes {
		w.res.BytesPerNode[i] = n.bytes
	}
	copy(w.res.TraceHash[:], w.trace.Sum(nil))
	return &w.res
}

// heal ends every fault: the liveness phase starts.
func (w *World) heal() {
	w.healed = true
	for i := range w.side {
		w.side[i] = 0
	}
	w.bridge = -1
	w.fault("heal: all links up, every device back, no loss")
	for _, n := range w.Nodes {
		if !n.up {
			n.restart()
		}
	}
}

// honest lists the honest devices that are members at the reference replica.
func (w *World) honest() []*Node {
	ref := w.Nodes[0]
	var out []*Node
	for _, n := range w.Nodes {
		if !n.Honest || n.log == nil {
			continue
		}
		if _, ok := ref.log.DeviceUser(n.dev); !ok {
			continue
		}
		out = append(out, n)
	}
	return out
}

// sample records how far from agreement the honest replicas are; after the
// heal, the first sample with one digest and one view per device ends the
// run.
func (w *World) sample(afterHeal bool) {
	if w.Opt.Witnesses > 0 {
		w.checkHolders()
	}
	digests, trees := w.agreement()
	w.res.Series = append(w.res.Series, Sample{AtMs: w.now, Digests: digests, Trees: trees,
		BytesSoFar: w.res.Bytes, MessagesSoFar: w.res.Messages})
	if afterHeal && !w.res.Converged && digests == 1 && trees == 1 {
		w.res.Converged = true
		w.res.ConvergeMs = w.now - w.Opt.WorkloadMs
		w.Trace("converged", w.now)
	}
}

// agreement counts distinct digests, and distinct "does this device hold
// exactly the reference tree filtered by what it may read" answers (1 when
// all do).
func (w *World) agreement() (digests, trees int) {
	hs := w.honest()
	seen := map[string]bool{}
	for _, n := range hs {
		seen[n.digest()] = true
	}
	digests = len(seen)
	ref := w.Nodes[0]
	bad := 0
	for _, n := range hs {
		if n.up && n.treeHash(n) != ref.treeHash(n) || !n.indexMatchesDisk() {
			bad++
		}
	}
	return digests, 1 + bad
}

// digest is the replica's crdt Digest, cached until the log changes.
func (n *Node) digest() string {
	if n.digestLog != n.log || n.digestLen != n.log.Len() {
		n.digestVal, n.digestLog, n.digestLen = string(n.log.Digest()), n.log, n.log.Len()
	}
	return n.digestVal
}

func realVerdict(l *crdt.Log, author store.DeviceID, heads []cid.Cid, path string, fence uint64) (crdt.Verdict, error) {
	pid, err := peerID(author)
	if err != nil {
		return crdt.VerdictReject, err
	}
	return l.VersionVerdict(pid, heads, path, fence)
}

func mayRead(l *crdt.Log, dev store.DeviceID, path string) bool {
	pid, err := peerID(dev)
	if err != nil {
		return false
	}
	u, ok := l.DeviceUser(pid)
	return ok && l.Can(u, crdt.ActionRead, path)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
