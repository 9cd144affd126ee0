// Package plan decides, for one folder, what a device must do to converge with
// its peers: which version of each path wins, which losing versions are kept as
// conflict copies, and what to fetch, delete, create or move.
//
// It is a pure function of its inputs (the local index entries, the versions
// other devices announce, and the rights verdicts the caller attached to them):
// no I/O, no clock, no randomness, no map-order dependence. The node executes a
// plan; the simulation harness drives the same function from a seed.
//
// # Which version wins
//
// For each path the planner takes every admitted version it knows (local and
// remote) and keeps the heads: versions whose version vector no other version
// dominates. One head is simply the truth. Several heads are concurrent, and
// they are resolved as a set, never pairwise (Syncthing PR #10207 showed how a
// pairwise rule can fail to be a total order):
//
//   - the winner is the maximum under the total key (live, ModTime, Author, Seq):
//     a live version beats a deletion, so an edit always survives a concurrent
//     delete; ModTime is only a tie-break among concurrent versions, and
//     (Author, Seq) is unique per version, so the key is total;
//   - a losing head that is a deletion disappears (nothing to keep);
//   - a losing head with the same content as the winner disappears too (two
//     devices made the same change: no conflict to show);
//   - any other losing head is kept as a conflict copy named
//     name.sync-conflict-YYYYMMDD-HHMMSS-<device>.ext (ModTime of the loser, UTC,
//     and its author). Only the device that holds that losing version on disk
//     makes the copy; the copy is then an ordinary new file that syncs to every
//     device, so there is exactly one conflict copy everywhere.
//
// # What the plan holds
//
// One Action per path that needs work, ordered so that executing them in order
// is safe: directories are created parents first, deletions run children first,
// and a file whose content equals a file being deleted elsewhere in the same
// plan becomes a Move (a rename detected by content: no bytes re-transferred).
package plan
