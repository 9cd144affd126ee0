package store

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// BenchmarkOverwriteNewBytes measures what `meshfold bench sync` case (d)
// sends: 1 MiB overwritten with new random bytes at a random offset of a
// 256 MiB random file, and the bytes of the edited file's chunks the
// original does not have (what a peer must fetch). 400 edits; it reports the
// mean, median, 90th percentile and maximum of those bytes.
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
	var cuts []int64 // end offset of every original chunk
	have := map[string]bool{}
	if err := HashChunks(bytes.NewReader(orig), func(c Chunk, _ []byte) error {
		cuts = append(cuts, c.Offset+int64(c.Length))
		have[c.CID.KeyString()] = true
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r := rand.New(rand.NewPCG(11, 12))
		sent := make([]int64, 0, edits)
		for range edits {
			at := r.Int64N(fileSize - editSize)
			// From the last original cut at or before the edit.
			i, _ := slices.BinarySearch(cuts, at+1)
			from := int64(0)
			if i > 0 {
				from = cuts[i-1]
			}
			window := make([]byte, 0, 8<<20)
			window = append(window, orig[from:min(fileSize, from+int64(cap(window)))]...)
			edit := randomBytes(b, uint64(at), editSize)
			copy(window[at-from:], edit)
			var n int64
			err := HashChunks(bytes.NewReader(window), func(c Chunk, _ []byte) error {
				end := from + c.Offset + int64(c.Length)
				if end > at+editSize {
					if _, ok := slices.BinarySearch(cuts, end); ok {
						if !have[c.CID.KeyString()] {
							n += int64(c.Length)
						}
						return errStopChunking
					}
				}
				if !have[c.CID.KeyString()] {
					n += int64(c.Length)
				}
				return nil
			})
			if err != errStopChunking {
				b.Fatalf("no resynchronisation within %d bytes of the edit at %d: %v", len(window), at, err)
			}
			sent = append(sent, n)
		}
		slices.Sort(sent)
		var sum int64
		for _, n := range sent {
			sum += n
		}
		b.ReportMetric(float64(sum)/edits/1e6, "mean-MB")
		b.ReportMetric(float64(sent[edits/2])/1e6, "p50-MB")
		b.ReportMetric(float64(sent[edits*9/10])/1e6, "p90-MB")
		b.ReportMetric(float64(sent[edits-1])/1e6, "max-MB")
		over := 0
		for _, n := range sent {
			if n >= 1_600_000 {
				over++
			}
		}
		b.ReportMetric(float64(over)/edits, "share>=1.6MB")
	}
}

var errStopChunking = errorString("stop")

type errorString string

func (e errorString) Error() string { return string(e) }
