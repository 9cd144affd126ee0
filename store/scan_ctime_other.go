//go:build unix && !linux && !darwin && !freebsd

package store

import "syscall"

// ctimeNanos: the change time is not read on this platform; size, mtime and
// inode still catch changes.
func ctimeNanos(*syscall.Stat_t) int64 { return 0 }
