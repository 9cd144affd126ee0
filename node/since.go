package node

import (
	"errors"

	"github.com/meshfold/meshfold/store"
)

// errNotYet ends an index answer early: the next version is one this device
// has not settled yet.
var errNotYet = errors.New("version not settled yet")

// since serves index sync for author dev from sequence from, stopping before
// the first version this device has not settled yet: a local change not
// signed yet, or, for another author, a version received but not applied
// yet (its chunks still on the way). The index server reports every sequence
// it walked as examined, and the peer never asks for those again; skipping
// an unsettled version would hide it from that peer until the author changes
// the file again.
func (f *Folder) since(dev store.DeviceID, from uint64, fn func(store.FileInfo) error) error {
	self := store.DeviceID(f.n.id)
	f.mu.Lock()
	judged := f.signedTo
	pending, hasPending := uint64(0), false
	if dev != self {
		for _, m := range f.candidates {
			for k := range m {
				if k.author == dev && (!hasPending || k.seq < pending) {
					pending, hasPending = k.seq, true
				}
			}
		}
	}
	f.mu.Unlock()
	err := f.idx.Since(dev, from, func(fi store.FileInfo) error {
		if hasPending && fi.Seq >= pending {
			return errNotYet
		}
		if len(fi.Signature) == 0 {
			if dev == self && fi.Seq > judged {
				return errNotYet
			}
			return nil // never shared: a change its author may not make
		}
		return fn(fi)
	})
	if errors.Is(err, errNotYet) {
		return nil
	}
	return err
}
