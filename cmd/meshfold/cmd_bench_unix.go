//go:build unix

package main

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// childUsage returns the CPU time (user + system) and peak RSS in bytes of
// a child process that has exited.
func childUsage(ps *os.ProcessState) (cpuSeconds float64, maxRSS int64) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0
	}
	maxRSS = int64(ru.Maxrss)
	if runtime.GOOS != "darwin" {
		maxRSS *= 1024 // Linux and the BSDs report KiB, macOS bytes
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), maxRSS
}

// selfCPUSeconds is the CPU time (user + system) this process used so far,
// 0 if it cannot be read.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
