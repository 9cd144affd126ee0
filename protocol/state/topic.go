package state

import (
	"context"
	"errors"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TopicPrefix is the GossipSub topic namespace of folder-state records; the
// "1" is the record's major version.
const TopicPrefix = "/meshfold/folder/1/"

// Topic is the GossipSub topic of a folder.
func Topic(folder string) string { return TopicPrefix + folder }

// Validation outcomes, for logs and tests.
var (
	// ErrWrongTopic: the record names another folder than its topic.
	ErrWrongTopic = errors.New("folder state published on another folder's topic")
	// ErrNotAuthor: the pubsub message's author is not the record's device.
	ErrNotAuthor = errors.New("folder state relayed as if authored by another peer")
	// ErrNotMember: the record's device is not a member of the folder.
	ErrNotMember = errors.New("folder state from a non-member")
)

// Check decodes and checks a pubsub message: well-formed, published on its
// folder's topic, authored (pubsub From, which StrictSign makes the
// pubsub-level signer) by the record's own device, from a member, and with
// a good signature. It returns the record or the reason it was refused.
func Check(msg *pubsub.Message, isMember func(folder string, dev peer.ID) bool) (*FolderState, error) {
	s, err := Unmarshal(msg.Data)
	if err != nil {
		return nil, err
	}
	if msg.GetTopic() != Topic(s.Folder) {
		return nil, ErrWrongTopic
	}
	if msg.GetFrom() != s.Device {
		return nil, ErrNotAuthor
	}
	if err := s.VerifyWith(senderKey(msg, s.Device)); err != nil {
		return nil, err
	}
	if !isMember(s.Folder, s.Device) {
		return nil, ErrNotMember
	}
	return s, nil
}

// senderKey is dev's public key: embedded in the ID (Ed25519), else the key
// the pubsub message carries (GossipSub includes it for IDs that do not
// embed one and has checked it against From). Nil if neither works, which
// VerifyWith refuses.
func senderKey(msg *pubsub.Message, dev peer.ID) crypto.PubKey {
	if pub, err := dev.ExtractPublicKey(); err == nil {
		return pub
	}
	if pub, err := crypto.UnmarshalPublicKey(msg.Key); err == nil {
		return pub
	}
	return nil
}

// NewStateValidator returns a topic validator for folder-state topics.
// Malformed records, bad signatures, wrong topics and records relayed under
// another author are rejected (the forwarding peer is penalised by
// GossipSub's scoring). Records from non-members are also dropped, but with
// ValidationIgnore rather than Reject: a member whose grant has not yet
// reached us looks like a non-member, and honest peers that already know the
// grant must not be penalised for forwarding its records. On success the
// decoded record is left in msg.ValidatorData (a *FolderState).
func NewStateValidator(isMember func(folder string, dev peer.ID) bool) func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		s, err := Check(msg, isMember)
		switch {
		case errors.Is(err, ErrNotMember):
			return pubsub.ValidationIgnore
		case err != nil:
			return pubsub.ValidationReject
		}
		msg.ValidatorData = s
		return pubsub.ValidationAccept
	}
}
