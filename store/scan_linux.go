package store

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

func ctimeNanos(st *syscall.Stat_t) int64 { return int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec) }

// statAt lstats name in the open directory dirfd: one path component for
// the kernel to resolve instead of the whole path, which is most of the cost
// of a warm rescan.
func statAt(dirfd int, dir, name string) (entryStat, error) {
	var st unix.Stat_t
	for {
		err := fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return entryStat{}, &fs.PathError{Op: "lstat", Path: dir + "/" + name, Err: err}
		}
		break
	}
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFREG:
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	default:
		mode |= fs.ModeIrregular
	}
	mt := st.Mtim
	return entryStat{
		mode: mode, size: st.Size,
		modTime: int64(mt.Sec)*1e9 + int64(mt.Nsec), changeTime: int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec),
		inode: uint64(st.Ino), dev: uint64(st.Dev),
	}, nil
}
