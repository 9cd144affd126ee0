//go:build linux && !amd64 && !arm64

package store

import "golang.org/x/sys/unix"

// fstatat is unix.Fstatat.
func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return unix.Fstatat(dirfd, name, st, flags)
}
