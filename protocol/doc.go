// Package protocol holds meshfold's wire messages and their libp2p stream and
// pubsub handlers: encoding, size limits and signatures. It knows store's and
// crdt's types; it starts no goroutines of its own beyond stream handlers.
package protocol
