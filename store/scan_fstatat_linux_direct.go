//go:build linux && (amd64 || arm64)

package store

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fstatat is unix.Fstatat without its allocation: the name is copied, NUL
// terminated, into a buffer on the stack instead of a new one on the heap
// (a warm rescan stats every entry of the folder). It is the same system
// call through the same syscall.Syscall6, with the runtime told as usual
// that the goroutine is in a system call.
func fstatat(dirfd int, name string, st *unix.Stat_t, flags int) error {
	var z [maxNameBytes + 1]byte
	if len(name) > maxNameBytes || strings.IndexByte(name, 0) >= 0 {
		return unix.Fstatat(dirfd, name, st, flags) // too long (ENAMETOOLONG) or a NUL (EINVAL): its error
	}
	copy(z[:], name)
	_, _, e := unix.Syscall6(sysFstatat, uintptr(dirfd), uintptr(unsafe.Pointer(&z[0])), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// maxNameBytes is NAME_MAX on Linux: no directory entry has a longer name.
const maxNameBytes = 255
