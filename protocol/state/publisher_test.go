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

// record returns the i-th record and when it was published.
func (r *recordTopic) record(i int) (*FolderState, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[i], r.at[i]
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
		var (
			errMu sync.Mutex
			errs  []error
		)
		onError := func(err error) { errMu.Lock(); defer errMu.Unlock(); errs = append(errs, err) }
		p, err := NewPublisher(topic, PublisherConfig{Key: key, Snapshot: snapshot,
			MinInterval: time.Second, Heartbeat: time.Minute, OnError: onError})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- p.Serve(ctx) }()
		synctest.Wait()
		if topic.count() != 1 {
			t.Fatalf("at start: %d records", topic.count())
		}
		if first, _ := topic.record(0); first.Device != id {
			t.Fatalf("record signed by %s", first.Device)
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
		if topic.count() != 2 {
			t.Fatalf("after the burst: %d records", topic.count())
		}
		second, at1 := topic.record(1)
		_, at0 := topic.record(0)
		if second.Seq != 10 {
			t.Fatalf("coalesced record has seq %d, want the latest (10)", second.Seq)
		}
		if gap := at1.Sub(at0); gap < time.Second {
			t.Fatalf("records %v apart, MinInterval 1s", gap)
		}

		time.Sleep(time.Minute) // no change: a heartbeat
		synctest.Wait()
		if topic.count() != 3 {
			t.Fatalf("after a heartbeat: %d records", topic.count())
		}
		if third, _ := topic.record(2); third.Seq != 10 {
			t.Fatalf("heartbeat record has seq %d", third.Seq)
		}

		topic.mu.Lock()
		topic.fail = true
		topic.mu.Unlock()
		p.Changed()
		time.Sleep(time.Second)
		synctest.Wait()
		errMu.Lock()
		if len(errs) != 1 {
			t.Fatalf("errors reported: %v", errs)
		}
		errMu.Unlock()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve returned %v", err)
		}
	})
}
