//go:build unix

package store

import (
	"io/fs"
	"syscall"
)

// fileStat is what tells two states of a file apart without reading it.
type fileStat struct {
	modTime, changeTime int64 // Unix nanoseconds
	inode, dev          uint64
}

func statOf(info fs.FileInfo) fileStat {
	st := fileStat{modTime: info.ModTime().UnixNano()}
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.inode, st.dev = uint64(sys.Ino), uint64(sys.Dev)
		st.changeTime = ctimeNanos(sys)
	}
	return st
}
