// Package realstack is the real-stack tier of the simulation harness: real
// node.Node instances in one process, each with its own home (keys, goleveldb
// index) and folder on disk, on go-libp2p's in-memory network (mocknet) with
// link latency and bandwidth. `meshfold sim real` runs it.
//
// # Why mocknet, not testing/synctest
//
// synctest's fake clock only advances when every goroutine of the bubble is
// durably blocked on channels, mutexes or timers. A node always has
// goroutines blocked in system calls (the fsnotify reader on its inotify
// descriptor, goleveldb's file I/O), which never count as durably blocked, so
// the clock would not move and the debounce, heartbeat and retry timers
// would never fire. mocknet runs on the real clock: runs are not
// bit-identical, but everything under test is the product's own code.
//
// # What a run does
//
// The founder makes a folder with a few files and invites the other devices
// through the real join handshake (one multi-use editor invitation, one
// viewer invitation); a few devices get slow links. A seeded workload then
// writes the devices' disks as a user would (whole-file saves renamed into
// place): creates, edits, deletes, renames, the same file edited on two or
// three devices at once, and the viewer's edits, which it may not share.
// Nemeses at fixed points of the workload: the network split in two halves
// (links cut and connections closed) from 30% to 70% of the changes, healed
// by relinking and a few dials per device as discovery would; one device
// closed at 45% and reopened from its home at 60% (its disk keeps changing
// while it is down).
//
// # Invariants
//
// After the workload the run polls (with a deadline) until: every editor's
// tree on disk is identical; the viewer holds that tree plus only its own
// unshared changes (and spare copies of shared versions, counted); no version
// an editor wrote and no authorised change superseded is missing from the
// tree (it is the file or a conflict copy; versions are followed by content,
// so renames keep them); none of the viewer's changes is on another device;
// and none of the viewer's own changes is gone from its disk. The seed fixes
// the workload's choices and the faults, not the threads' interleaving, so
// two runs of one seed differ; the invariants must hold for every run.
package realstack
