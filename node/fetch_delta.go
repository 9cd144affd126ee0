package node

// Delta fetch: the chunks of a file this device holds an older version of
// are fetched as the byte ranges it lacks (protocol/chunks' delta exchange)
// instead of whole, when their neighbourhood in the old version is known.
//
// A changed file's new chunks come in runs between chunks it shares with the
// old version (anchors). The bytes of the old version between the two
// anchors of a run (the gap) are where the run's content came from if it was
// edited in place: they become the run's basis (read back verified, chunk by
// chunk), and each chunk of the run is asked for as pieces, the ones found in
// the basis copied locally. A 1 MiB overwrite then moves ~1 MiB plus the two
// pieces it cuts into and a small manifest per changed chunk, instead of
// ~1 MiB plus the two ~300 KB chunks it cuts into (BENCHMARKS.md, sync (d)).
//
// Only files with an older local version take part: new files, and the first
// sync of anything, never pay the manifest round trip. A run larger than
// maxDeltaGap is fetched whole (a rewrite: its only savings would be its two
// ends, under 1%). Whatever the delta exchange does not deliver, verified,
// is fetched whole by the usual multi-source fetch.

import (
	"context"
	"errors"
	"io"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/chunks"
	"github.com/meshfold/meshfold/store"
)

const (
	// maxDeltaGap bounds a run of changed chunks (and the old bytes it
	// replaced) fetched by delta; larger runs are fetched whole.
	maxDeltaGap = 8 << 20
	// maxDeltaBasisBatch bounds the basis bytes held at once: the wanted
	// chunks are fetched by delta in batches whose bases add up to this.
	maxDeltaBasisBatch = 16 << 20
)

// deltaFetcher is a ChunkFetcher that can also fetch chunks as deltas
// against local bytes (the Folder). FetchDelta returns the wanted CIDs it did
// not deliver; its error is fatal (deliver failed, ctx ended).
type deltaFetcher interface {
	FetchDelta(ctx context.Context, wants []chunks.DeltaWant, deliver func(cid.Cid, []byte) error) ([]cid.Cid, error)
}

// fetch gets the chunks in order for the staged files: by delta those of
// files with an older local version, if the fetcher can, then the rest
// whole. deliver removes each delivered chunk from wanted.
func (r *run) fetch(ctx context.Context, staged []*stagedFile, wanted map[string][]chunkTarget, order []cid.Cid, deliver func(cid.Cid, []byte) error) error {
	df, ok := r.a.Fetcher.(deltaFetcher)
	if ok {
		var batch []chunks.DeltaWant
		var held int
		send := func() error {
			if len(batch) == 0 {
				return nil
			}
			_, err := df.FetchDelta(ctx, batch, deliver)
			batch, held = nil, 0
			return err
		}
		assigned := map[string]bool{}
		for _, s := range staged {
			if s.quarantine || s.pending == 0 {
				continue
			}
			err := r.deltaWants(s, wanted, assigned, func(w []chunks.DeltaWant, basis int) error {
				batch, held = append(batch, w...), held+basis
				if held >= maxDeltaBasisBatch {
					return send()
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if err := send(); err != nil {
			return err
		}
		// Whatever the delta exchange did not deliver is still wanted.
		order = slices.DeleteFunc(slices.Clone(order), func(c cid.Cid) bool { return wanted[c.KeyString()] == nil })
		if len(order) == 0 {
			return nil
		}
	}
	return r.a.Fetcher.Fetch(ctx, order, deliver)
}

// deltaWants finds the runs of s's chunks still wanted between chunks its
// old local version has, and passes emit each run's wants (chunks not
// assigned to another file's run yet) with the size of their basis.
func (r *run) deltaWants(s *stagedFile, wanted map[string][]chunkTarget, assigned map[string]bool, emit func([]chunks.DeltaWant, int) error) error {
	old, ok, err := r.a.Index.Get(s.want.Path)
	if err != nil || !ok || old.Deleted || old.Kind != store.KindFile || len(old.Chunks) == 0 {
		return nil // no older version to start from (an index error shows elsewhere)
	}
	oldOff := make(map[string]int64, len(old.Chunks))
	var off int64
	for _, c := range old.Chunks {
		if _, dup := oldOff[c.CID.KeyString()]; !dup {
			oldOff[c.CID.KeyString()] = off
		}
		off += int64(c.Size)
	}
	chs := s.want.Chunks
	newOff := make([]int64, len(chs)+1)
	missing := make([]bool, len(chs))
	for i, c := range chs {
		newOff[i+1] = newOff[i] + int64(c.Size)
		missing[i] = wanted[c.CID.KeyString()] != nil
	}
	anchor := func(i int) (int64, bool) { // old offset of chunk i, if it is an unchanged one
		if missing[i] {
			return 0, false
		}
		o, ok := oldOff[chs[i].CID.KeyString()]
		return o, ok
	}
	for i := 0; i < len(chs); {
		if !missing[i] {
			i++
			continue
		}
		j := i
		for j+1 < len(chs) && missing[j+1] {
			j++
		}
		nl, nr := newOff[i], newOff[j+1]
		l, rr := nl, nr // where the run sits in the old version: guessed in place
		if i == 0 {
			l = 0
		} else if o, ok := anchor(i - 1); ok {
			l = o + int64(chs[i-1].Size)
		}
		if j == len(chs)-1 {
			rr = old.Size
		} else if o, ok := anchor(j + 1); ok {
			rr = o
		}
		l, rr = max(0, min(l, old.Size)), max(0, min(rr, old.Size))
		if rr > l && rr-l <= maxDeltaGap && nr-nl <= maxDeltaGap {
			if basis, ok := r.readOld(old, l, rr); ok {
				b := chunks.NewBasis(basis)
				var ws []chunks.DeltaWant
				for k := i; k <= j; k++ {
					key := chs[k].CID.KeyString()
					if assigned[key] {
						continue
					}
					assigned[key] = true
					ws = append(ws, chunks.DeltaWant{CID: chs[k].CID, Size: int(chs[k].Size), Basis: b,
						Anchors: []int{int(newOff[k] - nl), int(newOff[k]-nr) + int(rr-l)}})
				}
				if len(ws) > 0 {
					if err := emit(ws, len(basis)); err != nil {
						return err
					}
				}
			}
		}
		i = j + 1
	}
	return nil
}

// readOld returns the bytes [from, to) of the old version, read back from
// its chunks on this device (each verified); false if one can not be read.
func (r *run) readOld(old store.FileInfo, from, to int64) ([]byte, bool) {
	buf := make([]byte, 0, to-from)
	var off int64
	for _, c := range old.Chunks {
		start, end := off, off+int64(c.Size)
		off = end
		if end <= from || start >= to {
			continue
		}
		data, ok := r.a.localChunk(c.CID)
		if !ok || len(data) != int(c.Size) {
			return nil, false
		}
		buf = append(buf, data[max(from, start)-start:min(to, end)-start]...)
	}
	return buf, int64(len(buf)) == to-from
}

// FetchDelta fetches chunks by delta (deltaFetcher) from one peer sharing
// the folder, a directly connected one if there is one: the first whose
// delta stream opens. It returns the CIDs not delivered, to be fetched whole
// (from every peer) by Fetch. A peer whose pieces do not assemble into their
// chunk is logged and counted like one sending a bad chunk.
func (f *Folder) FetchDelta(ctx context.Context, wants []chunks.DeltaWant, deliver func(cid.Cid, []byte) error) ([]cid.Cid, error) {
	deliver = f.countFetched(deliver)
	var remote []chunks.DeltaWant
	for _, w := range wants {
		if data, ok := f.n.chunkElsewhere(f, w.CID); ok {
			if err := deliver(w.CID, data); err != nil {
				return nil, err
			}
			continue
		}
		remote = append(remote, w)
	}
	rest := make([]cid.Cid, 0, len(remote))
	for _, w := range remote {
		rest = append(rest, w.CID)
	}
	if len(remote) == 0 {
		return nil, nil
	}
	f.mu.Lock()
	peers := make([]peer.ID, 0, len(f.peers))
	for p := range f.peers {
		peers = append(peers, p)
	}
	f.mu.Unlock()
	slices.Sort(peers)
	slices.SortStableFunc(peers, func(a, b peer.ID) int { // direct connections first
		da, db := f.n.hasDirectConn(a), f.n.hasDirectConn(b)
		switch {
		case da == db:
			return 0
		case da:
			return -1
		}
		return 1
	})
	for _, p := range peers {
		sctx := ctx
		if !f.n.hasDirectConn(p) {
			sctx = allowLimited(ctx)
		}
		s, err := f.n.host.NewStream(sctx, p, chunks.DeltaProtocolID)
		if err != nil {
			f.log.Debug("no delta stream", "peer", ShortID(p), "err", err)
			continue
		}
		rest, st, err := chunks.FetchDelta(ctx, s, f.id, remote, deliver)
		if err != nil || st.PeerErr != nil {
			_ = s.Reset()
		} else {
			_ = s.Close()
		}
		if errors.Is(st.PeerErr, chunks.ErrBadPeer) {
			f.log.Warn("peer sent pieces that do not assemble into their chunk; fetching whole", "peer", ShortID(p), "why", st.PeerErr)
			f.n.metrics.rejectedChunks.Inc()
		} else if st.PeerErr != nil && !errors.Is(st.PeerErr, io.EOF) {
			f.log.Debug("delta exchange ended", "peer", ShortID(p), "err", st.PeerErr)
		}
		f.log.Debug("fetched by delta", "peer", ShortID(p), "chunks", st.Chunks, "of", len(remote),
			"reused", st.Reused, "fetched", st.Fetched, "manifests", st.Manifests)
		return rest, err
	}
	return rest, nil
}
