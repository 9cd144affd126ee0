//go:build unix && !linux

package store

import "path/filepath"

// statAt lstats name in directory dir (dirfd is not used on this platform).
func statAt(_ int, dir, name string) (entryStat, error) {
	return lstatPath(filepath.Join(dir, name))
}
