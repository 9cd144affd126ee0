// Package simulations is meshfold's deterministic simulation harness (the
// DST tier of shared/RELIABILITY.md): many simulated devices in one process,
// one goroutine, one seed.
//
// # What runs
//
// The pure cores run for real: every simulated device holds its own
// crdt.Log replica (on a crdt.MemStore that survives its crashes; a restart
// rebuilds the log with crdt.Load) and decides what to do with the versions
// its peers announce with plan.Plan, judging each announced version with
// crdt.Log.VersionVerdict. Around them the harness simulates what the node
// would do: a folder on disk (path -> bytes, with un-fsynced user writes that
// a crash loses), a scanner that turns disk changes into versions (PutLocal
// semantics: Author = self, Seq = next, Version = prev.Update(self, seq)), an
// executor for plan actions (a conflict copy is a new local file the next
// scan picks up), and an anti-entropy sync protocol over a simulated network
// (log ops as raw bytes, index entries filtered by read rights at the sender).
// File contents travel instantly once an entry is known: chunk transfer
// and corrupt chunks belong to the real-stack tier. With Options.Relays the
// members have no direct links: every message is sealed for its recipient
// and stored and forwarded by relay devices outside the folder (relay.go).
//
// # Cost
//
// A device plans only the paths that changed since its last plan (a scan,
// an announced entry, a verdict a log change turned, or its own last
// actions), and judges versions again only when crdt.Log.VerdictGeneration
// says an earlier verdict may have changed; TestIncrementalPlanMatchesFull
// checks the first against full plans, crdt's TestVerdictCacheMatchesFresh
// the second against fresh replicas.
//
// # Determinism
//
// One seed gives one *rand.Rand (ChaCha8) that derives everything: the
// options (printed by Options.String), device and user keys, the workload and
// every fault. The event loop is a priority queue of (time, sequence) events;
// nothing reads the wall clock, nothing iterates a map without sorting its
// keys, nothing runs on another goroutine. Every event is folded into a
// BLAKE3 trace hash, so two runs of one seed at one commit have the same
// Result.TraceHash (TestReplay).
//
// # Faults (nemeses)
//
// Each is switched on by the scenario and seeded: partitions (random halves,
// isolate one, bridge) and heal; churn (devices leave and return, some after
// a long absence); crashes and restarts (un-fsynced writes lost); message
// loss, duplication and reordering (jittered latency); slow peers; clock skew
// up to +/- 24 h; adversary devices that send forged, escalating and replayed
// ops, write without the right, and replay invitations; relay-only
// connectivity with relays that store messages for absent members.
//
// # Invariants
//
// Checked at the end of every run, after the network heals and the system
// quiesces (and, where cheap, at every step): honest replicas converge (same
// crdt Digest, same tree for the paths each may read); no admitted version is
// lost (it is canonical, dominated by the canonical version, or its bytes are
// in the tree as a conflict copy, or quarantined); no forged op is valid and
// no forged version is applied; index entries are sent only to devices whose
// user may read the path (checked on the wire), and no relay is handed a
// byte of a path (relay-privacy); no two lock grants share a
// file and fence and no file has two live grants; invitation admissions never
// exceed their use count.
//
// # Tiers
//
// A Scenario (simulations/scenarios) is data plus a small workload function
// written against the World API. Only the deterministic tier exists today;
// the real-stack tier (node on mocknet) is meant to interpret the same
// Scenario values once the node exists.
package simulations
