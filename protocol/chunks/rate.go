package chunks

import "time"

// rateDecay is how much of the past each new sample keeps.
const rateDecay = 0.7

// ewma estimates a peer's delivery rate in bytes per second from samples of
// (bytes, busy time they took). It keeps exponentially weighted sums of
// bytes and of time and divides them, so the estimate is weighted by time:
// a burst of pipelined chunks arriving back to back after one long wait
// counts as the throughput it really was, not as a run of near-infinite
// samples.
type ewma struct {
	bytes, secs float64
	samples     int
}

func (r *ewma) add(bytes int, d time.Duration) {
	r.bytes = r.bytes*rateDecay + float64(bytes)
	r.secs = r.secs*rateDecay + max(d, time.Microsecond).Seconds()
	r.samples++
}

// bps is the estimate, 0 before any sample.
func (r *ewma) bps() float64 {
	if r.secs == 0 {
		return 0
	}
	return r.bytes / r.secs
}
