package store

import (
	"io/fs"
	"os"
	"path/filepath"
)

// statFromInfo converts what os.Lstat or File.Stat returned. Windows has no
// inode or change time here: size, mtime and mode tell states apart.
func statFromInfo(info fs.FileInfo) entryStat {
	return entryStat{mode: info.Mode(), size: info.Size(), modTime: info.ModTime().UnixNano()}
}

// lstatPath is os.Lstat returning an entryStat.
func lstatPath(name string) (entryStat, error) {
	info, err := os.Lstat(name)
	if err != nil {
		return entryStat{}, err
	}
	return statFromInfo(info), nil
}

// statAt lstats name in directory dir (dirfd is not used on Windows).
func statAt(_ int, dir, name string) (entryStat, error) {
	return lstatPath(filepath.Join(dir, name))
}

// openNoFollow opens a regular file for reading, refusing a symlink.
func openNoFollow(name string) (*os.File, error) {
	info, err := os.Lstat(name)
	if err != nil {
		return nil, err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		return nil, errBecameSymlink
	}
	return os.Open(name)
}
