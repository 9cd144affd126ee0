// Package node is a running device: it owns the goroutines, the libp2p host,
// the folder runners and the control API. It is the only package that wires
// store, crdt and protocol together; only cmd/ and simulations/ import it.
package node
