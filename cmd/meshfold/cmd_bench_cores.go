package main

import (
	"sync"
	"time"

	"github.com/zeebo/blake3"
)

// benchCoresRounds is how many times each side of the core check is timed
// (the fastest counts).
const benchCoresRounds = 3

// measureCoreScaling tells how much of a second core the machine gives right
// now: BLAKE3 over buf on one goroutine, then over buf and a copy of it on
// two at once, the fastest of benchCoresRounds each, alternating. It returns
// the speedup (2 x one's time / two's time): 2.0 on two free cores, about 1.0
// when only one core is really available. A scan cannot use more cores than
// this says there are; `bench scan` prints it next to the cold scan.
func measureCoreScaling(buf []byte) (speedup float64, one, two time.Duration) {
	bufs := [2][]byte{buf, append([]byte(nil), buf...)}
	var sink [2]byte
	run := func(n int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for g := range n {
			wg.Go(func() {
				sum := blake3.Sum256(bufs[g])
				sink[g] ^= sum[0]
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	for range benchCoresRounds {
		if d := run(1); one == 0 || d < one {
			one = d
		}
		if d := run(2); two == 0 || d < two {
			two = d
		}
	}
	_ = sink
	return 2 * one.Seconds() / two.Seconds(), one, two
}
