package state

import (
	"context"
	"errors"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Publishing defaults.
const (
	// DefaultMinInterval is the least time between two records from one
	// publisher: local changes within it are coalesced into one record.
	DefaultMinInterval = 250 * time.Millisecond
	// DefaultHeartbeat is how often a record is republished with no change,
	// so that peers that missed one (GossipSub does not repair loss) and
	// peers that just joined learn the state.
	DefaultHeartbeat = 30 * time.Second
)

// Publishing is what a Publisher needs of a *pubsub.Topic.
type Publishing interface {
	Publish(ctx context.Context, data []byte, opts ...pubsub.PubOpt) error
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	Key crypto.PrivKey // the device key that signs
	// Snapshot returns the folder's current state; Device, Time and
	// Signature are filled in by the publisher.
	Snapshot    func() FolderState
	MinInterval time.Duration // 0: DefaultMinInterval
	Heartbeat   time.Duration // 0: DefaultHeartbeat
	// OnError is told about failed publishes (may be nil); the next change
	// or heartbeat tries again.
	OnError func(error)
}

// Publisher publishes a folder's signed state on its topic: once when it
// starts, after every Changed (coalesced to at most one record per
// MinInterval) and on every Heartbeat. NewPublisher starts nothing; Serve
// runs it until its context ends.
type Publisher struct {
	topic Publishing
	cfg   PublisherConfig
	kick  chan struct{}
}

// NewPublisher returns a publisher for topic.
func NewPublisher(topic Publishing, cfg PublisherConfig) (*Publisher, error) {
	if cfg.Key == nil || cfg.Snapshot == nil || topic == nil {
		return nil, errors.New("state publisher: topic, key and snapshot are required")
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	return &Publisher{topic: topic, cfg: cfg, kick: make(chan struct{}, 1)}, nil
}

// Changed tells the publisher the state changed. It never blocks; calls
// before the next record is sent collapse into one.
func (p *Publisher) Changed() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Serve publishes until ctx ends, and returns ctx's error.
func (p *Publisher) Serve(ctx context.Context) error {
	heartbeat := time.NewTicker(p.cfg.Heartbeat)
	defer heartbeat.Stop()
	last := time.Time{}
	publish := func() {
		s := p.cfg.Snapshot()
		s.Time = time.Now().UnixNano()
		err := s.Sign(p.cfg.Key)
		if err == nil {
			err = p.topic.Publish(ctx, s.Marshal())
		}
		if err != nil && ctx.Err() == nil && p.cfg.OnError != nil {
			p.cfg.OnError(err)
		}
		last = time.Now()
		heartbeat.Reset(p.cfg.Heartbeat)
	}
	publish()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-heartbeat.C:
			publish()
		case <-p.kick:
			if wait := time.Until(last.Add(p.cfg.MinInterval)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
			publish()
		}
	}
}
