package node

import (
	"context"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// watchJoins pushes this device's last published folder state directly to
// every member that subscribes to the folder's topic (on the pushed-state
// protocol, relay.go). Without it a device that had just (re)connected
// learned what its peers hold only at their next heartbeat (up to
// DefaultHeartbeat, 10 s): a state is published only when it changes, and a
// republication on the topic does not reach a peer that just joined —
// go-libp2p-pubsub v0.19 publishes to mesh peers only, and a new peer is in
// no mesh until GossipSub's next heartbeat (traced with a RawTracer: the
// join-time publication produced no RPC at all). Flood publishing would fix
// that too, but sends every publication to every peer: at 30 devices it
// doubled GossipSub's bytes and the convergence time (BENCHMARKS.md). One
// push per join costs one small stream.
func (f *Folder) watchJoins(ctx context.Context, h *pubsub.TopicEventHandler) {
	defer h.Cancel()
	for {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			return // ctx done
		}
		if ev.Type != pubsub.PeerJoin || !f.n.IsMember(f.id, ev.Peer) {
			continue
		}
		if raw := f.lastState.Load(); raw != nil {
			go f.pushState(ev.Peer, *raw)
		}
	}
}
