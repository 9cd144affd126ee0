//go:build unix

package store

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// statFromInfo converts what os.Lstat or File.Stat returned.
func statFromInfo(info fs.FileInfo) entryStat {
	st := entryStat{mode: info.Mode(), size: info.Size(), modTime: info.ModTime().UnixNano()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.inode, st.dev = uint64(sys.Ino), uint64(sys.Dev)
		st.changeTime = ctimeNanos(sys)
	}
	return st
}

// openNoFollow opens a regular file for reading without following a symlink
// that replaced it; errBecameSymlink if one did.
func openNoFollow(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errBecameSymlink
	}
	return f, err
}

// lstatPath is os.Lstat returning an entryStat.
func lstatPath(name string) (entryStat, error) {
	info, err := os.Lstat(name)
	if err != nil {
		return entryStat{}, err
	}
	return statFromInfo(info), nil
}
