package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/state"
)

// The publication gap grows with the folder's peers (gossip stays O(N) a
// second) but never below publishCoalesce nor above half the heartbeat.
func TestPublishGapGrowsWithPeers(t *testing.T) {
	for _, c := range []struct {
		peers     int
		heartbeat time.Duration
		want      time.Duration
	}{
		{0, 10 * time.Second, publishCoalesce},
		{5, 10 * time.Second, publishCoalesce},
		{20, 10 * time.Second, 400 * time.Millisecond},
		{100, 10 * time.Second, 2 * time.Second},
		{1000, 10 * time.Second, 5 * time.Second},
		{100, 100 * time.Millisecond, publishCoalesce},
	} {
		f := &Folder{n: &Node{cfg: Config{Heartbeat: c.heartbeat}}, peers: map[peer.ID]*state.FolderState{}}
		for i := range c.peers {
			f.peers[peer.ID(fmt.Sprint(i))] = nil
		}
		if got := f.publishGap(); got != c.want {
			t.Errorf("%d peers, heartbeat %s: gap %s, want %s", c.peers, c.heartbeat, got, c.want)
		}
	}
}
