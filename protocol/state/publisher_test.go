package state

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/meshfold/meshfold/protocol/internal/testkeys"
)

type recordTopic struct {
	mu   sync.Mutex
	got  []*FolderState
	at   []time.Time
	fail bool
}

func (r *recordTopic) Publish(_ context.Context, data []byte, _ ...pubsub.PubOpt) error {
	s, err := Unmarshal(data)
	if err != nil {
		return err
	}
	if err := s.Verify(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("no peers")
	}
	r.got = append(r.got, s)
	r.at = append(r.at, time.Now())
	return nil
}

func (r *recordTopic) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// In virtual time: one record at start, a burst of changes coalesced into
// one record no sooner than MinInterval after the last, and heartbeats.
func TestPublisherCoalescesAndHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key, id := testkeys.Key(t, 1)
		topic := &recordTopic{}
		var (
			mu  sync.Mutex
			seq uint64
		)
		snapshot := func() FolderState {
			mu.Lock()
			defer mu.Unlock()
			return FolderState{Folder: testFolder, Seq: seq}
		}
		var errs []error
		p, err := NewPublisher(topic, PublisherConfig{Key: key, Snapshot: snapshot,
			MinInterval: time.Second, Heartbeat: time.Minute, OnError: func(err error) { errs = append(errs, err) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- p.Serve(ctx) }()
		synctest.Wait()
		if topic.count() != 1 || topic.got[0].Device != id {
			t.Fatalf("at start: %d records", topic.count())
		}

		for i := range 10 { // a burst of local changes
			mu.Lock()
			seq = uint64(i + 1)
			mu.Unlock()
			p.Changed()
		}
		synctest.Wait()
		if topic.count() != 1 {
			t.Fatalf("published %d records before MinInterval passed", topic.count())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if topic.count() != 2 || topic.got[1].Seq != 10 {
			t.Fatalf("after the burst: %d records", topic.count())
		}
		if gap := topic.at[1].Sub(topic.at[0]); gap < time.Second {
			t.Fatalf("records %v apart, MinInterval 1s", gap)
		}

		time.Sleep(time.Minute) // no change: a heartbeat
		synctest.Wait()
		if topic.count() != 3 || topic.got[2].Seq != 10 {
			t.Fatalf("after a heartbeat: %d records", topic.count())
		}

		topic.mu.Lock()
		topic.fail = true
		topic.mu.Unlock()
		p.Changed()
		time.Sleep(time.Second)
		synctest.Wait()
		if len(errs) != 1 {
			t.Fatalf("errors reported: %v", errs)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve returned %v", err)
		}
	})
}
