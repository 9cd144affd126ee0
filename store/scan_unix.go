//go:build unix

package store

import (
	"io/fs"
	"os"
	"syscall"
)

// entryStat is what the scanner needs of a stat: enough to tell two states
// of a file apart without reading it.
type entryStat struct {
	mode                fs.FileMode // type bits and permissions
	size                int64
	modTime, changeTime int64 // Unix nanoseconds
	inode, dev          uint64
}

func (s entryStat) isDir() bool { return s.mode.IsDir() }

// statFromInfo converts what os.Lstat or File.Stat returned.
func statFromInfo(info fs.FileInfo) entryStat {
	st := entryStat{mode: info.Mode(), size: info.Size(), modTime: info.ModTime().UnixNano()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.inode, st.dev = uint64(sys.Ino), uint64(sys.Dev)
		st.changeTime = ctimeNanos(sys)
	}
	return st
}

// lstatPath is os.Lstat returning an entryStat.
func lstatPath(name string) (entryStat, error) {
	info, err := os.Lstat(name)
	if err != nil {
		return entryStat{}, err
	}
	return statFromInfo(info), nil
}
