package simulations

import (
	"fmt"
	"slices"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/store"
)

// Nemeses schedules the faults Opt.Faults switches on, inside the workload
// window. Each draws its times and targets from the run's generator.
func (w *World) Nemeses() {
	f := w.Opt.Faults
	end := w.Opt.WorkloadMs
	if f.Partitions {
		for t := w.Rand.Int64N(10_000); t < end; t += 10_000 + w.Rand.Int64N(30_000) {
			w.At(t, "partition", w.partition)
			w.At(t+5_000+w.Rand.Int64N(20_000), "heal-partition", func() {
				if !w.healed {
					for i := range w.side {
						w.side[i] = 0
					}
					w.bridge = -1
					w.fault("partition healed")
				}
			})
		}
	}
	if f.Churn {
		for t := w.Rand.Int64N(5_000); t < end; t += 1_000 + w.Rand.Int64N(4_000) {
			w.At(t, "churn", func() {
				n := w.Nodes[1+w.Rand.IntN(len(w.Nodes)-1)]
				if !n.up || w.healed {
					return
				}
				n.up = false
				away := 2_000 + w.Rand.Int64N(20_000)
				if w.Rand.IntN(5) == 0 {
					away = end // a long absence: back only at the final heal
				}
				w.fault(fmt.Sprintf("%s leaves for %dms", n, away))
				w.At(w.now+away, "return", func() {
					if !n.up && !w.healed {
						n.up = true
						w.fault(fmt.Sprintf("%s returns", n))
					}
				})
			})
		}
	}
	if f.Crashes {
		for t := w.Rand.Int64N(10_000); t < end; t += 3_000 + w.Rand.Int64N(10_000) {
			w.At(t, "crash", func() {
				n := w.Nodes[w.Rand.IntN(len(w.Nodes))]
				if !n.up || w.healed {
					return
				}
				lost := len(n.undo)
				n.crash()
				w.fault(fmt.Sprintf("%s crashes (%d un-fsynced writes lost)", n, lost))
				w.At(w.now+500+w.Rand.Int64N(5_000), "restart", func() {
					if !n.up && !w.healed {
						n.restart()
						w.fault(fmt.Sprintf("%s restarts", n))
					}
				})
			})
		}
	}
}

// partition: random halves, one isolated device, or halves with a bridge.
func (w *World) partition() {
	if w.healed {
		return
	}
	for i := range w.side {
		w.side[i] = w.Rand.IntN(2)
	}
	w.bridge = -1
	switch w.Rand.IntN(3) {
	case 0:
		w.fault("partition: random halves")
	case 1:
		iso := w.Rand.IntN(len(w.side))
		for i := range w.side {
			w.side[i] = 0
		}
		w.side[iso] = 1
		w.fault(fmt.Sprintf("partition: n%d isolated", iso))
	case 2:
		w.bridge = w.Rand.IntN(len(w.side))
		w.fault(fmt.Sprintf("partition: halves bridged by n%d", w.bridge))
	}
}

// checkPrivacy: an honest sender puts an index entry on the wire only to a
// device whose user may read the path (by the sender's replica). This is
// the invariant's own check, independent of the node's filter hook.
func (w *World) checkPrivacy(from, to *Node, m *message) {
	if !from.Honest {
		return
	}
	u, ok := from.log.DeviceUser(to.dev)
	for _, e := range m.entries {
		if !ok || !from.log.Can(u, crdt.ActionRead, e.Info.Path) {
			w.violate("privacy", "%s sent %q to %s, which may not read it", from, e.Info.Path, to)
		}
	}
}

// checkLocks: within one replica, at most one live grant per file and no
// two grants with one fence; across devices, no two holders (each by its own
// replica) ever hold one file with one fence. Observers may briefly see a
// grant that a concurrent release un-grants in the final order; a holder
// acts only on its own view, so that is where fences must be unique. (Two
// holders at once with different fences is the lease case fencing is for:
// the stale holder's versions carry the old fence and become conflict
// copies.)
func (w *World) checkLocks(n *Node, snap crdt.Snapshot) {
	live := map[string]crdt.LockID{}
	fences := map[string]crdt.LockID{}
	for _, lk := range snap.Locks {
		if !lk.Granted {
			continue
		}
		k := fmt.Sprintf("%s|%d", lk.Path, lk.Fence)
		if other, ok := fences[k]; ok && other != lk.ID {
			w.violate("lock", "%s: two grants of %q with fence %d (%s, %s)", n, lk.Path, lk.Fence, shortRef(other), shortRef(lk.ID))
		}
		fences[k] = lk.ID
		if !lk.Ended {
			if other, ok := live[lk.Path]; ok && other != lk.ID {
				w.violate("lock", "%s: two live grants on %q (%s, %s)", n, lk.Path, shortRef(other), shortRef(lk.ID))
			}
			live[lk.Path] = lk.ID
		}
	}
	for _, p := range sortedKeys(live) {
		h, ok := n.log.LockHolder(p)
		if !ok || h.Device != n.dev {
			continue
		}
		k := fmt.Sprintf("%s|%d", p, h.Fence)
		if first, ok := w.lockSeen[k]; ok && first != h.ID {
			w.violate("lock", "%s holds %q with fence %d (%s), which holder-view grant %s had already used",
				n, p, h.Fence, shortRef(h.ID), shortRef(first))
		} else if !ok {
			w.lockSeen[k] = h.ID
			w.Trace("lock-held", n.ID, p, h.Fence, shortRef(h.ID))
		}
	}
}

// checkHolders runs checkLocks on every honest device that is up.
func (w *World) checkHolders() {
	for _, n := range w.Nodes {
		if n.Honest && n.up && n.log != nil && n.member() {
			w.checkLocks(n, n.log.Snapshot())
		}
	}
}

// final checks every invariant at the end of the run.
func (w *World) final() {
	hs := w.honest()
	ref := w.Nodes[0]
	w.res.Attacks = len(w.reg.badOps) + len(w.reg.badVers)
	for _, used := range w.reg.usedBy {
		w.res.Joins += len(used)
	}
	if !w.res.Converged {
		digests, trees := w.agreement()
		w.violate("convergence", "not converged %dms after heal: %d rights states, %d tree views among %d honest devices",
			w.Opt.QuiesceMs, digests, trees, len(hs))
		for _, n := range hs {
			if d := w.treeDiff(ref, n); d != "" {
				w.violate("convergence", "%s", d)
				break
			}
		}
	}
	for _, n := range hs {
		w.Trace("final", n.ID, fmt.Sprintf("%x", n.log.Digest()), fmt.Sprintf("%x", n.treeHash(n)))
	}
	// Honest devices never equivocate (a crash must not make one reuse a
	// sequence number).
	for _, f := range ref.log.Forks() {
		for _, n := range w.Nodes {
			if n.dev == f.Device && n.Honest {
				w.violate("equivocation", "honest %s forked its op chain at seq %d", n, f.Seq)
			}
		}
	}
	// Forged ops are never valid on an honest replica.
	for _, n := range hs {
		for _, id := range w.reg.badOps {
			if valid, _, known := n.log.Status(id); known && valid {
				w.violate("forged-op", "%s holds forged op %s as valid", n, id)
			}
		}
	}
	// Forged versions are never in an honest tree.
	for _, n := range hs {
		for _, p := range sortedKeys(n.index) {
			e := n.index[p]
			if w.reg.badVers[versionKey(e.Info)] && !e.Info.Deleted {
				w.violate("forged-version", "%s applied a version of %q by %x without the right", n, p, []byte(e.Info.Author)[len(e.Info.Author)-4:])
			}
		}
	}
	// No admitted version is lost.
	present := map[string]bool{}
	for _, n := range hs {
		for _, b := range n.disk {
			present[w.putContent(b).KeyString()] = true
		}
	}
	// Quarantines count on every honest device, members or not: a spare
	// whose concurrent join lost its invitation's use (R11) was a member
	// in its own view for a while, and what it wrote then lost its right
	// and is kept aside on that device (node/folder.go keeps a refused
	// local change as a local copy), though the device is no member at
	// the reference replica (invitation-replay seed 200).
	for _, n := range w.Nodes {
		if !n.Honest || n.log == nil {
			continue
		}
		for _, q := range n.quarantine {
			present[contentID(q)] = true
		}
	}
	// A version is safe if its bytes are in a tree or in quarantine, if the
	// canonical version saw it, or if a later admitted version of its path
	// that saw it (its author's own next save, or a deletion) is safe.
	// Refused versions by honest devices count as later versions too: the
	// user overwrote the earlier one, and the refused bytes are kept aside
	// (node/folder.go keeps a refused local change as a local copy; here it
	// is in the device's quarantine).
	byPath := map[string][]*verRec{}
	for _, k := range w.reg.verOrder {
		if r := w.reg.versions[k]; r.honest {
			byPath[r.info.Path] = append(byPath[r.info.Path], r)
		}
	}
	safe := map[*verRec]bool{}
	for _, p := range sortedKeys(byPath) {
		vs := byPath[p]
		for _, r := range vs {
			c := ref.index[p]
			switch {
			case r.info.Deleted || present[r.content]:
				safe[r] = true
			case c != nil:
				if o := c.Info.Version.Compare(r.info.Version); o == store.Newer || o == store.Equal {
					safe[r] = true
				}
			}
		}
		for changed := true; changed; {
			changed = false
			for _, r := range vs {
				if safe[r] {
					continue
				}
				for _, later := range vs {
					if safe[later] && later.info.Version.Compare(r.info.Version) == store.Newer {
						safe[r], changed = true, true
						break
					}
				}
			}
		}
		for _, r := range vs {
			if r.admitted && !safe[r] {
				w.violate("lost-version", "version %d of %q by %x is nowhere: not canonical, not seen by a kept version, no copy, not quarantined",
					r.info.Seq, r.info.Path, []byte(r.info.Author)[len(r.info.Author)-4:])
			}
		}
	}
	// Invitations: admissions never exceed their use count.
	for _, n := range hs {
		if len(w.reg.inviteMax) > 0 {
			w.checkInvites(n)
		}
		if w.Opt.Witnesses > 0 {
			w.checkLocks(n, n.log.Snapshot())
		}
	}
}

func (w *World) checkInvites(n *Node) {
	count := map[crdt.InviteID]uint32{}
	for _, raw := range n.log.OpsSince(nil) {
		op, err := crdt.DecodeOp(raw)
		if err != nil || op.Kind != crdt.KindJoin {
			continue
		}
		if valid, _, _ := n.log.Status(op.ID); valid {
			count[op.Body.(crdt.Join).Invite]++
		}
	}
	ids := make([]crdt.InviteID, 0, len(count))
	for id := range count {
		ids = append(ids, id)
	}
	sortRefs(ids)
	for _, id := range ids {
		if max, ok := w.reg.inviteMax[id]; ok && count[id] > max {
			w.violate("invite", "%s: invitation used %d times, max %d", n, count[id], max)
		}
	}
}

func sortRefs(ids []crdt.Ref) { slices.Sort(ids) }

// treeDiff describes the first difference between ref's tree (as n may read
// it) and n's, or "" if none.
func (w *World) treeDiff(ref, n *Node) string {
	u, ok := n.log.DeviceUser(n.dev)
	if !ok {
		return ""
	}
	paths := map[string]bool{}
	for p := range ref.disk {
		paths[p] = true
	}
	for p := range n.disk {
		paths[p] = true
	}
	for _, p := range sortedKeys(paths) {
		if !n.log.Can(u, crdt.ActionRead, p) {
			continue
		}
		a, inRef := ref.disk[p]
		b, inN := n.disk[p]
		if inRef != inN || string(a) != string(b) {
			ri, ni := ref.index[p], n.index[p]
			return fmt.Sprintf("%s differs from %s at %q: ref has %v (index %s), it has %v (index %s); up=%v", n, ref, p, inRef, descr(ri), inN, descr(ni), n.up)
		}
	}
	if !n.indexMatchesDisk() {
		return fmt.Sprintf("%s: index does not match disk", n)
	}
	return ""
}

func descr(e *entry) string {
	if e == nil {
		return "none"
	}
	return fmt.Sprintf("seq=%d del=%v author=%x vv=%v", e.Info.Seq, e.Info.Deleted, []byte(e.Info.Author)[len(e.Info.Author)-3:], len(e.Info.Version.Counters))
}

func shortRef(r crdt.Ref) string {
	s := r.String()
	return s[max(0, len(s)-8):]
}
