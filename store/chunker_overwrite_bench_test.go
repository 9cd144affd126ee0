package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zeebo/blake3"
)

// overwriteTarget is bench sync's target for case (d): bytes on the wire
// for 1 MiB overwritten in the middle of a file.
const overwriteTarget = 1_600_000

// BenchmarkOverwriteNewBytes measures what `meshfold bench sync` case (d)
// has to send: 1 MiB overwritten with new random bytes at a random offset
// of a 256 MiB random file, and the bytes of the edited file's chunks the
// original does not have (what a peer must fetch). 400 edits per chunker
// configuration (the first is the one in use); it reports the mean, median,
// 90th percentile and maximum of those bytes, and the share of edits at or
// over 1.6 MB.
//
//	go test ./store -run '^$' -bench OverwriteNewBytes -benchtime 1x
//
// Each edit is re-chunked only around the edit: from the last original cut
// at or before it until a cut coincides with an original cut after it (from
// there on the chunks are the original's, as a cut depends only on the bytes
// since the previous cut).
func BenchmarkOverwriteNewBytes(b *testing.B) {
	const fileSize, editSize, edits = 256 << 20, 1 << 20, 400
	orig := randomBytes(b, 7, fileSize)
	for _, pc := range []paramCase{
		{MinChunkSize, AvgChunkSize, MaxChunkSize, normalizationLevel},
		{32 << 10, 128 << 10, 512 << 10, 2},
		{16 << 10, 64 << 10, 256 << 10, 2},
	} {
		name := fmt.Sprintf("min=%dK/avg=%dK/max=%dK/nc=%d", pc.min>>10, pc.avg>>10, pc.max>>10, pc.level)
		b.Run(name, func(b *testing.B) {
			p := newCDCParams(pc.min, pc.avg, pc.max, pc.level)
			lens := cutLengths(&p, orig)
			have := chunkSet(orig, lens)
			cuts := make([]int64, len(lens)) // end offset of every original chunk
			var end int64
			for i, n := range lens {
				end += int64(n)
				cuts[i] = end
			}
			for b.Loop() {
				r := rand.New(rand.NewPCG(11, 12))
				sent := make([]int64, 0, edits)
				for range edits {
					at := r.Int64N(fileSize - editSize)
					i, _ := slices.BinarySearch(cuts, at+1)
					from := int64(0)
					if i > 0 {
						from = cuts[i-1]
					}
					window := slices.Clone(orig[from:min(fileSize, from+8<<20)])
					copy(window[at-from:], randomBytes(b, uint64(at), editSize))
					var n int64
					synced := false
					for off := int64(0); off < int64(len(window)) && !synced; {
						k := int64(p.nextCut(window[off:]))
						if !have[blake3.Sum256(window[off:off+k])] {
							n += k
						}
						off += k
						if from+off > at+editSize {
							_, synced = slices.BinarySearch(cuts, from+off)
						}
					}
					if !synced {
						b.Fatalf("no resynchronisation within %d bytes of the edit at %d", len(window), at)
					}
					sent = append(sent, n)
				}
				slices.Sort(sent)
				var sum int64
				over := 0
				for _, n := range sent {
					sum += n
					if n >= overwriteTarget {
						over++
					}
				}
				b.ReportMetric(float64(sum)/edits/1e6, "mean-MB")
				b.ReportMetric(float64(sent[edits/2])/1e6, "p50-MB")
				b.ReportMetric(float64(sent[edits*9/10])/1e6, "p90-MB")
				b.ReportMetric(float64(sent[edits-1])/1e6, "max-MB")
				b.ReportMetric(float64(over)/edits, "share>=1.6MB")
			}
		})
	}
}
