package chunks

import "time"

// rateAlpha is the weight of a new sample in the EWMA of a peer's rate.
const rateAlpha = 0.3

// ewma estimates a peer's delivery rate in bytes per second from samples of
// (bytes, time it took).
type ewma struct {
	bps     float64
	samples int
}

func (r *ewma) add(bytes int, d time.Duration) {
	if d <= 0 {
		d = time.Microsecond
	}
	s := float64(bytes) / d.Seconds()
	if r.samples == 0 {
		r.bps = s
	} else {
		r.bps = rateAlpha*s + (1-rateAlpha)*r.bps
	}
	r.samples++
}
