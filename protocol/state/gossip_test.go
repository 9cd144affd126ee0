package state

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/meshfold/meshfold/store"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Real GossipSub over mocknet: a member's record is delivered, a record
// relayed under another author and a non-member's record are dropped by
// the receiver's validator and never reach its subscription.
func TestGossipValidatorDropsBadRecords(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	mn, err := mocknet.FullMeshLinked(3)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	hosts := mn.Hosts()
	member, stranger, receiver := hosts[0], hosts[1], hosts[2]

	var (
		mu      sync.Mutex
		results []pubsub.ValidationResult
	)
	validator := NewStateValidator(func(folder string, dev peer.ID) bool {
		return folder == testFolder && dev == member.ID()
	})
	topics := make([]*pubsub.Topic, 3)
	for i, h := range []host.Host{member, stranger, receiver} {
		ps, err := pubsub.NewGossipSub(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if h == receiver {
			// Only the receiver validates; the others must forward anything
			// so that the receiver's validator is what is tested.
			err := ps.RegisterTopicValidator(Topic(testFolder), func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
				r := validator(ctx, from, m)
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				return r
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if topics[i], err = ps.Join(Topic(testFolder)); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	sub, err := topics[2].Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	for _, tp := range topics[:2] {
		waitFor(t, "publisher sees the subscribed receiver", func() bool { return len(tp.ListPeers()) == 1 })
	}

	sign := func(h host.Host, seq uint64) *FolderState {
		s := &FolderState{Folder: testFolder, Seq: seq, Seen: store.VersionVector{}}
		if err := s.Sign(mn.Net(h.ID()).Peerstore().PrivKey(h.ID())); err != nil {
			t.Fatal(err)
		}
		return s
	}
	seen := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(results) >= n }
	}

	// 1: the stranger republishes the member's record as its own message.
	if err := topics[1].Publish(ctx, sign(member, 1).Marshal()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first verdict", seen(1))
	// 2: the stranger publishes its own, well-signed record: not a member.
	if err := topics[1].Publish(ctx, sign(stranger, 2).Marshal()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second verdict", seen(2))
	// 3: the member's own record.
	if err := topics[0].Publish(ctx, sign(member, 3).Marshal()); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := m.ValidatorData.(*FolderState)
	if !ok || got.Seq != 3 || got.Device != member.ID() {
		t.Fatalf("first delivered record: %+v", m.ValidatorData)
	}
	mu.Lock()
	defer mu.Unlock()
	if results[0] != pubsub.ValidationReject || results[1] != pubsub.ValidationIgnore {
		t.Fatalf("verdicts %v, want [reject ignore ...]", results)
	}
	if _, err := Check(m, func(string, peer.ID) bool { return false }); !errors.Is(err, ErrNotMember) {
		t.Fatalf("Check with no members: %v", err)
	}
}
