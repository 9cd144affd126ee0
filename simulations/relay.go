package simulations

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/zeebo/blake3"
)

// MaxRelayMailbox bounds the sealed messages a relay stores for one
// recipient that is away; beyond it the oldest is dropped (the sync
// protocol repairs the loss).
const MaxRelayMailbox = 64

// Relay-only connectivity (Options.Relays > 0): members have no direct
// links. A message between two members is sealed for its recipient and
// handed to a relay the sender reaches; the relay stores it and forwards it
// when it reaches the recipient (at once, or on its tick once the recipient
// is back). Relays are devices outside the folder: they may read nothing,
// so what they hold is checked for any byte of a path (relayPrivacy).

// envelope is one sealed message in a relay's care.
type envelope struct {
	from, to *Node
	sealed   []byte
	m        *message
	sz       int64
}

// wire is what a message puts on the wire before sealing: every path,
// version, head and op it carries.
func (m *message) wire() []byte {
	b := []byte{byte(m.kind)}
	b = binary.AppendUvarint(b, uint64(m.from))
	b = binary.AppendUvarint(b, m.since)
	b = binary.AppendUvarint(b, m.upTo)
	for _, h := range m.heads {
		b = append(b, h.Bytes()...)
	}
	for _, o := range m.ops {
		b = binary.AppendUvarint(b, uint64(len(o)))
		b = append(b, o...)
	}
	for _, e := range m.entries {
		b = binary.AppendUvarint(b, uint64(len(e.Info.Path)))
		b = append(b, e.Info.Path...)
		b = append(b, e.Info.Author...)
		b = binary.AppendUvarint(b, e.Info.Seq)
		b = binary.AppendUvarint(b, e.Fence)
		for _, c := range e.Info.Chunks {
			b = append(b, c.CID.Bytes()...)
		}
	}
	return b
}

// seal encrypts plain for the pair key with a BLAKE3 keyed stream (nonce:
// the world's message counter). It stands for the end-to-end encryption of
// a relayed libp2p stream.
func seal(key [32]byte, nonce uint64, plain []byte) []byte {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		panic(err) // a 32-byte key is always accepted
	}
	var nb [8]byte
	binary.BigEndian.PutUint64(nb[:], nonce)
	h.Write(nb[:])
	out := make([]byte, len(plain))
	if _, err := h.Digest().Read(out); err != nil {
		panic(err) // the digest stream does not fail
	}
	for i := range out {
		out[i] ^= plain[i]
	}
	return out
}

// pairKey is the key two members share for sealing (derived from both
// device IDs; the relay does not know it).
func pairKey(a, b *Node) [32]byte {
	if a.ID > b.ID {
		a, b = b, a
	}
	return blake3.Sum256([]byte("meshfold/simulations/pair\x00" + string(a.dev) + "\x00" + string(b.dev)))
}

// relays lists the relays n reaches now.
func (w *World) relaysOf(n *Node) []*Node {
	var out []*Node
	for _, r := range w.Nodes {
		if r.Relay && w.linked(n, r) {
			out = append(out, r)
		}
	}
	return out
}

// sendViaRelay seals m for to and hands it to a relay from reaches.
func (w *World) sendViaRelay(from, to *Node, m *message) {
	rs := w.relaysOf(from)
	if len(rs) == 0 {
		return
	}
	r := rs[w.Rand.IntN(len(rs))]
	if m.kind == msgSyncResp {
		w.checkPrivacy(from, to, m)
	}
	w.sealed++
	env := &envelope{from: from, to: to, m: m, sz: m.size(),
		sealed: w.hooks.Seal(pairKey(from, to), w.sealed, m.wire())}
	w.hop(from, r, env.sz, "hop", func() { r.keep(env) })
}

// hop carries sz bytes from a to b with the network's faults (loss,
// duplication, latency) and runs arrive on b, as the event named event, if
// the link still holds then. Direct messages and relay hops both go this way.
func (w *World) hop(a, b *Node, sz int64, event string, arrive func()) {
	w.res.Messages++
	w.res.Bytes += sz
	a.bytes += sz
	copies := 1
	if !w.healed {
		if w.Opt.LossP > 0 && w.Rand.Float64() < w.Opt.LossP {
			copies = 0
		} else if w.Opt.DupP > 0 && w.Rand.Float64() < w.Opt.DupP {
			copies = 2
		}
	}
	for c := 0; c < copies; c++ {
		lat := w.Opt.LatencyMs
		if w.Opt.JitterMs > 0 {
			lat += w.Rand.Int64N(w.Opt.JitterMs)
		}
		if a.slow || b.slow {
			lat *= 10
		}
		w.At(w.now+lat, event, func() {
			if !w.linked(a, b) {
				return
			}
			b.bytes += sz
			arrive()
		})
	}
}

// keep: the relay checks what it was handed, then forwards it or keeps it.
func (r *Node) keep(env *envelope) {
	w := r.w
	w.relayPrivacy(r, env)
	if w.linked(r, env.to) {
		r.forward(env)
		return
	}
	box := append(r.mailbox[env.to.ID], env)
	if len(box) > MaxRelayMailbox {
		box = box[1:]
	}
	if r.mailbox == nil {
		r.mailbox = map[int][]*envelope{}
	}
	r.mailbox[env.to.ID] = box
	w.Trace("relay-store", r.ID, env.from.ID, env.to.ID, len(box))
}

// forward hands env to its recipient, which opens it.
func (r *Node) forward(env *envelope) {
	to := env.to
	r.w.hop(r, to, env.sz, "hop", func() { to.receive(env.m) })
}

// relayTick forwards the stored messages whose recipients are back.
func (r *Node) relayTick() {
	for _, id := range sortedIntKeys(r.mailbox) {
		to := r.w.Nodes[id]
		if !r.w.linked(r, to) {
			continue
		}
		for _, env := range r.mailbox[id] {
			r.forward(env)
		}
		delete(r.mailbox, id)
	}
}

// relayPrivacy: a relay may read no path, so no path of the workload (nor a
// conflict-copy name) may appear in the bytes it is handed.
func (w *World) relayPrivacy(r *Node, env *envelope) {
	for _, name := range w.pathNames {
		if bytes.Contains(env.sealed, name) {
			w.violate("relay-privacy", "relay %s was handed %q in a message from %s to %s", r, name, env.from, env.to)
			return
		}
	}
}

// initPathNames lists the byte strings relays must never see: every file
// name the workload uses (as written and case-renamed) and the conflict-copy
// marker.
func (w *World) initPathNames() {
	seen := map[string]bool{}
	for i := 0; i < w.Opt.Paths; i++ {
		name := fmt.Sprintf("f%02d.txt", i)
		for _, s := range []string{name, "F" + name[1:]} {
			if !seen[s] {
				seen[s] = true
				w.pathNames = append(w.pathNames, []byte(s))
			}
		}
	}
	w.pathNames = append(w.pathNames, []byte("sync-conflict"))
}
