//go:build !unix

package main

import "os"

// childUsage reports the CPU time of a child process; its peak RSS is not
// available on this platform (0).
func childUsage(ps *os.ProcessState) (cpuSeconds float64, maxRSS int64) {
	return (ps.UserTime() + ps.SystemTime()).Seconds(), 0
}

// selfCPUSeconds is not measured on this platform (0).
func selfCPUSeconds() float64 { return 0 }
