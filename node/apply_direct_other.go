//go:build !linux

package node

// oDirect is the open flag for direct writes: none here, every write goes
// through the page cache.
const oDirect = 0
