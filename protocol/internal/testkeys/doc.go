// Package testkeys makes deterministic Ed25519 device keys for tests and
// golden vectors: the same seed always gives the same key and peer ID.
//
// Test support only: imported by protocol/... tests, never by production code.
package testkeys
