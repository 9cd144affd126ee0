package node

import (
	"context"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// watchJoins republishes this device's folder state whenever a peer
// subscribes to the folder's topic. A state is otherwise published only when
// it changes or on the heartbeat, so a device that had just connected waited
// for its peers' next heartbeat (up to DefaultHeartbeat, 10 s) before it
// learned what they hold: in `meshfold bench sync` that wait was about half
// of the receiver's fixed start-up cost.
//
// The republication still respects publishGap, so a burst of joins (a large
// folder starting up) costs one publication per gap, not one per join.
func (f *Folder) watchJoins(ctx context.Context, h *pubsub.TopicEventHandler) {
	defer h.Cancel()
	for {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			return // ctx done
		}
		if ev.Type == pubsub.PeerJoin {
			f.peerJoined.Store(true)
			f.wake()
		}
	}
}
