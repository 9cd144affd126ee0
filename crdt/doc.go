// Package crdt is meshfold's membership, rights and lock log: a replicated,
// signed, grow-only set of ops that every member of a shared folder holds and
// that no server arbitrates. It is pure: no network, no disk (persistence
// goes through the OpStore interface), no clock reads, no goroutines.
//
// The full model, the rights table and the rules with their tests are
// documented below in later revisions of this comment.
package crdt
