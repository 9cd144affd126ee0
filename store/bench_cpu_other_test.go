//go:build !unix

package store

import "time"

// processCPU is not read on this platform.
func processCPU() time.Duration { return -1 }
