// Package testhosts starts real libp2p hosts on 127.0.0.1 for protocol
// tests, closed by t.Cleanup.
//
// Test support only: imported by protocol/... tests, never by production code.
package testhosts
