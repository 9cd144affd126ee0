//go:build !unix

package main

// cpuTime is not measured on this platform; sim reports 0 CPU-s.
func cpuTime() float64 { return 0 }
