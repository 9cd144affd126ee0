package store

import (
	"encoding/binary"
	"io/fs"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirBufSize is the getdents buffer: a directory of a few hundred entries
// is read in one call (plus the empty one that says it is done).
const dirBufSize = 32 << 10

var dirBufPool = sync.Pool{New: func() any { b := make([]byte, dirBufSize); return &b }}

// listDir opens directory path and returns its entry names (not "." and
// ".."), unsorted, with the open descriptor for statAt; closeDir closes it.
//
// It calls open and getdents64 itself rather than os.Open and Readdirnames:
// that saves, per directory, the five fcntl/epoll calls an *os.File makes to
// find out it cannot be polled, and one string allocation per name (the
// names share one).
func listDir(path string) (dirfd int, names []string, closeDir func(), err error) {
	for {
		dirfd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	closeDir = func() { unix.Close(dirfd) }
	bp := dirBufPool.Get().(*[]byte)
	defer dirBufPool.Put(bp)
	buf := *bp
	var arena []byte // every name, back to back
	var ends []int   // where each name ends in arena
	for {
		n, err := unix.Getdents(dirfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			closeDir()
			return -1, nil, nil, &fs.PathError{Op: "readdirent", Path: path, Err: err}
		}
		if n <= 0 {
			break
		}
		arena, ends = parseDirents(buf[:n], arena, ends)
	}
	all := unsafe.String(unsafe.SliceData(arena), len(arena)) // arena is not written again
	names = make([]string, len(ends))
	start := 0
	for i, end := range ends {
		names[i] = all[start:end]
		start = end
	}
	return dirfd, names, closeDir, nil
}

// linux_dirent64: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1),
// d_name (NUL-terminated).
const (
	direntReclenOff = 16
	direntNameOff   = 19
)

// parseDirents appends the names of the linux_dirent64 records in buf to
// arena, and where each ends to ends; it skips "." and ".." and stops at a
// malformed record.
func parseDirents(buf, arena []byte, ends []int) ([]byte, []int) {
	for len(buf) >= direntNameOff {
		reclen := int(binary.NativeEndian.Uint16(buf[direntReclenOff:]))
		if reclen < direntNameOff || reclen > len(buf) {
			break
		}
		name := buf[direntNameOff:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		buf = buf[reclen:]
		if len(name) == 0 || string(name) == "." || string(name) == ".." {
			continue
		}
		arena = append(arena, name...)
		ends = append(ends, len(arena))
	}
	return arena, ends
}
