package store

import (
	"encoding/binary"
	"io/fs"
	"sync"

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
	sc := nameScratchPool.Get().(*nameScratch)
	defer nameScratchPool.Put(sc)
	arena, ends := sc.arena[:0], sc.ends[:0] // every name, back to back; where each ends
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
	sc.arena, sc.ends = arena, ends
	// Two allocations per directory, both of the exact size: the names and
	// the strings pointing into them.
	all := string(arena)
	names = make([]string, len(ends))
	start := 0
	for i, end := range ends {
		names[i] = all[start:end]
		start = end
	}
	return dirfd, names, closeDir, nil
}

// nameScratch is where listDir collects a directory's names before it
// copies them out at their final size.
type nameScratch struct {
	arena []byte
	ends  []int
}

var nameScratchPool = sync.Pool{New: func() any { return new(nameScratch) }}

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
