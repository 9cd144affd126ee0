// Package state is folder-state gossip: the signed FolderState record a
// device publishes on its folder's GossipSub topic on every local change
// (coalesced) and on a heartbeat, the topic name, the pubsub validator that
// drops bad records before they spread, and the Publisher that does the
// coalescing and heartbeat.
//
// A FolderState says "I, Device, am at my own change sequence Seq in Folder;
// of every other device I hold changes up to Seen; my rights log has these
// heads". A peer that sees it is behind asks Device (or anyone) for the index
// delta (protocol/index), the log ops (protocol/logsync) and then the chunks
// (protocol/chunks).
//
// Signing: the device's libp2p key signs SignDomain followed by the canonical
// encoding of every field but the signature. The record is self-certifying:
// it names its device, and the device ID (an Ed25519 peer ID) embeds the
// public key, so a record can be checked wherever it travels.
//
// Files: state.go (the message, its encoding and limits), sign.go
// (Sign/Verify), topic.go (topic name and validator), publisher.go
// (Publisher: coalesced publishing on change plus a heartbeat; node/ runs its
// Serve).
//
// Who may import it: node/ and simulations/. It imports protocol/wire and
// store.
package state
