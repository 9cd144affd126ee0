package store

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/zeebo/blake3"
)

// BenchmarkPieceSizes measures what the delta exchange (protocol/chunks,
// node/fetch_delta.go) moves for `meshfold bench sync` case (d): 1 MiB
// overwritten with new random bytes at a random offset of a random file,
// per piece-size configuration (the first is the one in use). As the node
// does it: the run of changed chunks gets the original bytes it replaced as
// its basis; every changed chunk costs a manifest (a size and a
// PieceHashSize hash per piece, plus its CID) and then either the pieces
// found neither in the basis (by hash) nor at the same place, or, when no
// piece was found, the whole chunk. Reported: mean, p90 and max of those
// bytes per edit, and the mean manifest bytes.
//
//	go test ./store -run '^$' -bench PieceSizes -benchtime 1x
func BenchmarkPieceSizes(b *testing.B) {
	const fileSize, editSize, edits = 64 << 20, 1 << 20, 200
	orig := randomBytes(b, 9, fileSize)
	lens := cutLengths(&defaultParams, orig)
	have := chunkSet(orig, lens)
	cuts := make([]int64, len(lens))
	var end int64
	for i, n := range lens {
		end += int64(n)
		cuts[i] = end
	}
	for _, pc := range []paramCase{
		{MinPieceSize, AvgPieceSize, MaxPieceSize, normalizationLevel},
		{1 << 10, 4 << 10, 16 << 10, 2},
		{4 << 10, 16 << 10, 64 << 10, 2},
		{8 << 10, 32 << 10, 128 << 10, 2},
	} {
		name := fmt.Sprintf("pieces=%dK/%dK/%dK", pc.min>>10, pc.avg>>10, pc.max>>10)
		b.Run(name, func(b *testing.B) {
			pp := newCDCParams(pc.min, pc.avg, pc.max, pc.level)
			for b.Loop() {
				r := rand.New(rand.NewPCG(13, 14))
				sent := make([]int64, 0, edits)
				var manifests int64
				for range edits {
					at := r.Int64N(fileSize - 8<<20)
					i, _ := slices.BinarySearch(cuts, at+1)
					from := int64(0)
					if i > 0 {
						from = cuts[i-1]
					}
					window := slices.Clone(orig[from : from+8<<20])
					copy(window[at-from:], randomBytes(b, uint64(at), editSize))
					// The changed run: new chunks from the window's start
					// until a cut falls on an original cut after the edit.
					var changed [][2]int64 // offsets in window
					off := int64(0)
					for {
						k := int64(defaultParams.nextCut(window[off:]))
						if !have[blake3.Sum256(window[off:off+k])] {
							changed = append(changed, [2]int64{off, off + k})
						}
						off += k
						if _, ok := slices.BinarySearch(cuts, from+off); ok && from+off > at+editSize {
							break
						}
					}
					nl, nr := changed[0][0], changed[len(changed)-1][1]
					basis := orig[from+nl : from+nr] // in place: same offsets
					pieces := map[[32]byte]int{}
					for p := 0; p < len(basis); {
						k := pp.nextCut(basis[p:])
						pieces[blake3.Sum256(basis[p:p+k])] = k
						p += k
					}
					var n int64
					for _, c := range changed {
						data := window[c[0]:c[1]]
						var missing, manifest int64 = 0, 40
						for p := 0; p < len(data); {
							k := pp.nextCut(data[p:])
							h := blake3.Sum256(data[p : p+k])
							manifest += int64(PieceHashSize + len(binary.AppendUvarint(nil, uint64(k))))
							at := int(c[0]-nl) + p
							if pieces[h] != k && blake3.Sum256(basis[at:at+k]) != h {
								missing += int64(k)
							}
							p += k
						}
						manifests += manifest
						if missing == int64(len(data)) {
							n += manifest + missing // fetched whole after the manifest
						} else {
							n += manifest + missing + 100 // a range request and its answer's header
						}
					}
					sent = append(sent, n)
				}
				slices.Sort(sent)
				var sum int64
				for _, n := range sent {
					sum += n
				}
				b.ReportMetric(float64(sum)/edits/1e3, "mean-KB")
				b.ReportMetric(float64(sent[edits*9/10])/1e3, "p90-KB")
				b.ReportMetric(float64(sent[edits-1])/1e3, "max-KB")
				b.ReportMetric(float64(manifests)/edits/1e3, "manifest-KB")
			}
		})
	}
}
