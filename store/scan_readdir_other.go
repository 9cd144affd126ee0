//go:build !linux

package store

import "os"

// listDir opens directory path and returns its entry names, unsorted, with
// the descriptor statAt takes on this platform; closeDir closes it.
func listDir(path string) (dirfd int, names []string, closeDir func(), err error) {
	dir, err := os.Open(path)
	if err != nil {
		return -1, nil, nil, err
	}
	names, err = dir.Readdirnames(-1) // names only: the stat has the type
	if err != nil {
		dir.Close()
		return -1, nil, nil, err
	}
	return int(dir.Fd()), names, func() { dir.Close() }, nil
}
