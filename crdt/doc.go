// Package crdt is meshfold's membership, rights and lock log: who may read,
// write, organise and manage each part of a shared folder, who holds which
// lock, which invitations and share links are live. It is one replicated,
// signed, grow-only set of ops that every member of the folder holds and that
// no server arbitrates.
//
// The package is pure: no network, no disk (persistence goes through the
// OpStore interface, which store.LogStore implements on goleveldb; MemStore
// is the in-memory twin), no clock reads (anything that needs "now" takes it
// as an argument), no randomness, no goroutines. TestPurity enforces it. The
// node and the simulation harness both drive it. Nothing above it (node,
// protocol, simulations) is imported; they import it.
//
// # The model in plain words
//
// A folder starts with a genesis op signed by one of its founders; the CID of
// that op is the folder ID, so nobody can forge a second genesis for it.
// After that, every change of rights is an op: a small CBOR record naming its
// kind, its payload, the device that signed it, that device's sequence
// number, the ops its author had seen (its parents: the heads of the log at
// the time) and a Lamport time (1 + the highest parent's). Its ID is the
// CIDv1 (dag-cbor, BLAKE3-256) of its canonical encoding (CBOR Core
// Deterministic Encoding; non-canonical bytes are refused, so one op has one
// ID). Signatures are Ed25519 over a domain-separated message ("meshfold/
// crdt/op/v1\n" + the unsigned encoding); device certificates and invitation
// proofs use their own domains.
//
// Ops form a DAG. Every replica that holds the same set of ops computes the
// same state, whatever order the ops arrived in, however often and in
// whatever batches (TestPropertyConvergence). Nothing in the evaluation reads
// a clock: the op's Time field is an advisory hint used only for invitation
// expiry, and that comparison is between two fields of ops, so it is the
// same everywhere.
//
// Principals. A user is an Ed25519 identity key (UserID is its peer-ID form).
// A device is a libp2p Ed25519 key (its peer.ID); a user certifies a device by
// signing (user, device) — a DeviceCert — and the device enters the log with
// AddDevice, Join or an approved request. Groups of users are defined in the
// log. Roles go to users and groups, never to devices: a device acts for its
// user.
//
// Scopes. Rights are granted on folder nodes of the share's tree, not on
// path strings. The tree's shape is in the log (CreateFolder, MoveFolder,
// DeleteFolder), each node's ID is the CID of the op that created it, and a
// path resolves through the tree to the deepest node on it (a file takes its
// folder's rights). Renaming or moving a folder keeps its node, so its grants
// move with it; copying a folder makes new nodes, which take the rights of
// their new place (TestInheritance).
//
// # Roles and the rights table
//
//	rank (low to high)  relay viewer editor organizer manager owner founder
//	store (relay data)    x     x      x       x        x      x      x
//	read, see names       .     x      x       x        x      x      x
//	write, lock           .     .      x       x        x      x      x
//	organize              .     .      .       x        x      x      x
//	manage (policy)       .     .      .       .        x      x      x
//	break lock            .     .      .       .        x      x      x
//	see quarantine        .     .      .       .        x      x      x
//	set policy, witnesses .     .      .       .        .      x      x
//	delete the share      .     .      .       .        .      x      x
//
// "organize" is shaping the tree (create, rename, move, delete folders) and
// restricting or unrestricting subfolders. "manage" is granting, changing and
// revoking roles, groups, invitations, approving or denying requests, and
// share links. The folder's manage-access policy (SetPolicy) moves the manage
// row: PolicyManagers (default) as above, PolicyOwners (owners and founders
// only), PolicyEditors (every member with write access: editor and up).
// Concurrent policy settings resolve to the strictest. Relay is reserved for
// encrypted relays: it may store and forward, never read. Founders are the
// owners named in genesis; they hold every right everywhere, even inside
// restricted folders. MinRole is this table in code; TestRightsTable checks
// every cell through Can with real grants, TestOpRights checks which ops each
// role may append.
//
// # Rules (each with the test that shows it)
//
// R1 Envelope and identity. Signed, content-addressed ops; the genesis CID is
// the folder ID; Lamport time = 1 + max parent; a device's ops form a chain
// (sequence n names its sequence n-1 as a parent). Ops that break this are
// refused and not stored. TestForgedAndBroken, FuzzDecodeOp.
//
// R3 Causal delivery with a bounded buffer. An op whose parents are missing
// waits (at most MaxPendingOps ops, MaxPendingBytes bytes; beyond that it is
// refused with ErrPendingFull); Missing lists the CIDs to fetch; DropPending
// is for the node's timeout. OpsSince(heads) gives what a peer at those heads
// lacks. TestPendingAndMissing, TestPendingBound.
//
// R4 Authority in the causal past. An op is valid only if its signature
// verifies, its author device is live and certified for its user, and that
// user held the right for the op in the state of the op's own causal past
// (the valid ops among its ancestors). Strictly below: one grants, changes
// or revokes only roles strictly below one's own rank at the scope; owners
// may also grant owner; only founders revoke owners; anyone may renounce
// their own grant (and founders their founder status). A grant (or an
// approval) replaces the grant it follows, so one that lowers a role is a
// demotion and needs a rank strictly above the role it lowers. So admins
// never duel: two managers or two owners cannot remove or demote each
// other, and founders cannot remove founders. TestStrictlyBelow,
// TestAdminsNeverDuel, TestOpRights, TestExhaustiveOrders ("R4
// strictly-below").
//
// R5 Strong remove. A denial (revoke, demotion, renunciation, device removal,
// group member removal, restriction, policy change, invitation revoke,
// request denial, lock break, link suspension or revocation, share deletion)
// that is in effect also voids the ops concurrent with it (neither ancestor
// nor descendant) that lose a right they need when it is applied — D1. A
// demotion is a role change or a grant that lowers the role it replaces, as
// judged in the state of its own past; a promotion takes no right away and
// is not a denial (the lead's reading of R5), so it voids nothing. The
// denials applied to an op are those aimed at its author's user (or, for a
// join, at the invitation's issuer) and those aimed at an object or a group
// (restrictions, policy, invitations, requests, locks, links, the share),
// never a denial of another user. Only a lost right voids: an op that fails
// only because a concurrent denial already removed its target (a revoke
// concurrent with the member's renunciation, two revokes of one grant)
// stands, since both take the same right away — voiding both would leave the
// grant in place (fail-open). An approve concurrent with a deny of the same
// request loses (the deny takes the approver's power over the request).
// What depended on a voided op is voided too, because a voided op never
// enters the state of its descendants' causal past — D2. A grant concurrent
// with a revoke of the same (principal, scope) loses, and stays lost when
// someone grants again after the revoke: grants, memberships, device
// certifications, restrictions and link suspensions are multi-value
// registers over the DAG in which an assignment counts only if it follows
// every remove of the key (removes a later assignment superseded are kept as
// tombstones); a remove on the frontier gives none, concurrent changes the
// lowest role, concurrent grants the highest — D3. A denial by someone a
// higher rank concurrently revoked is itself voided — D4. Ops that precede a
// denial stand. Evaluation finds the fixpoint in rounds (at most
// MaxResolveRounds, a safety net; the differential test checks that its
// 2,000 random DAGs never reach it). TestStrongRemove (D1-D4, device
// removal, demotion), TestExhaustiveOrders, TestReferenceDifferential.
//
// R6 Deterministic total order. Ops are ordered by (Lamport time, CID bytes),
// a topological order of the DAG. It decides only what authority leaves
// open: which of two concurrent same-name folders owns the name (the first),
// which of two concurrent moves that would make a cycle is skipped (the
// later one, after Kleppmann et al.), the witness set (the last
// declaration), and the fencing numbers of locks. (Over-used invitations are
// not decided by this order but by op IDs: R11.) TestConcurrentMoves.
//
// R7 Equivocation. Two ops by one device with one sequence number are
// reported by Forks. Both branches are kept and the past valid ops of that
// device stay valid; an op by that device with both branches in its past is
// refused (ErrEquivocated). TestEquivocation.
//
// R8 Quarantine. VersionVerdict judges a file version by its author device,
// the log heads it names, its path and its fence: Reject if the author had
// no write right in the state of those heads, Quarantine if an effective
// denial outside that past takes the right away (kept, visible to managers:
// ActionSeeQuarantine), ConflictCopy for locks (below), Accept otherwise.
// TestVersionVerdict.
//
// Inheritance and restriction. A grant applies at its node and below. A
// restricted node stops inheritance: inside it only grants at or below it,
// and founders, apply. Its name stays visible to whoever may read its parent
// (ActionSeeName). Restrict and Unrestrict need organizer at the parent, and
// the members of a restricted folder are managed by those who may manage
// it or its parent — so whoever restricted a folder can still staff it,
// but does not read it unless granted inside. TestInheritance,
// TestSeedDropboxRestrictedDesign.
//
// R10 Locks. Owners declare a witness set (DeclareWitnesses). A LockRequest
// by an editor has an epoch: 1 + the highest epoch of a lock request for the
// file in its causal past, valid or not (computed, not carried: the op's
// hash-linked past fixes it, so no order of concurrent ops and no later
// voiding moves it; lockepoch.go). It becomes a granted lock when a
// majority of the witnesses have acknowledged it with LockAck ops; a
// witness may not ack a second request for a file while its earlier ack is
// live (ErrLockBusy), nor a request whose epoch is not above every epoch it
// acked for the file before, in its own chain of ops, valid acks or not
// (ErrLockStale). So two majorities cannot both grant, and no two grants
// ever share an epoch. A grant's fencing number is its request's epoch; a
// request reaching a quorum is granted only if the file is free and its
// epoch is above the file's last granted fence (granted fences strictly
// increase, I6). Fences are not numbered in grant order: a requester cut off
// by a partition may withdraw its request while the witnesses complete its
// quorum elsewhere; replicas see the grant, and when the withdrawal arrives
// it can sort before the last acks, so the converged order never granted it,
// and a grant-order count renumbered every later grant, giving one fence to
// two holders (lock-contention-partition seeds 323, 720, 821). Each grant
// carries its fence and the requested lease. A lock ends on LockRelease by
// its holder, LockBreak by a manager, or LockExpire ops from a majority of witnesses
// (each witness publishes one when the lease ran out on its own clock;
// ExpiredLeases(now) helps it decide). A holder who loses write access no
// longer holds the lock. While a file is locked, Can(write) is false for
// everyone but the holder; a version by a non-holder whose heads have the
// grant in their past, or are concurrent with it, without its end, is a
// conflict copy, and so is a version whose fence is not the holder's current
// one. TestLocks, TestVersionVerdict, TestSeedOodriveLock,
// TestLockFenceSurvivesLateRelease, TestLockEpochAcks,
// TestLockEpochIgnoresVoidedRequests, TestLockAckFloorCountsVoidedAcks.
//
// R11 Invitations. Only the invitation's public key is in the log
// (CreateInvite, with role, folder, expiry hint, max uses, approval). The
// joiner proves the private key by signing (folder, invitation, its user,
// its device) with it (InviteProof), so a proof cannot be reused by anyone
// else. A join is refused if the invitation is revoked, used up, already
// used by this user, or past its expiry (the join's Time against the
// invitation's ExpiresAt, the same everywhere; owners also publish
// RevokeInvite for ExpiredInvites(now), turning time into a causal fact); if
// its issuer may no longer grant the role; and concurrent over-use keeps the
// joins with the smallest IDs: per invitation, in ascending ID order, a join
// keeps a use if the users of the joins kept so far together with the users
// its own causal past spent uses on number fewer than max uses, and none of
// them is its own user (so at most max uses are kept, and a join never keeps
// a use by displacing a join it descends from). A use counts as spent in a
// past for every join there that passed every other check, including one
// that loses its use to a concurrent join: a join made after the invitation
// was used up in its view (a replay by a key holder) stays refused when the
// join it saw loses. The losers are part of the evaluation's fixpoint. An invitation needing approval turns the join into
// an access request; such an invitation may ask for a role its issuer cannot
// grant (the issuer must still manage its folder), since only an approver who
// may grant the role can approve it as asked. TestInvitations,
// TestInvitationConcurrency, TestInvitationReplayAfterLostUse,
// TestExhaustiveOrders ("I8"), TestAccessRequests.
//
// Access requests. A non-member's device asks with RequestAccess (carrying its
// certificate); a manager approves (granting a role strictly below their own
// and certifying the device) or denies; a deny concurrent with an approve
// wins. TestAccessRequests, TestSeedAccessRequests.
//
// Share links. CreateLink names a path, a role (viewer or editor), an expiry
// hint, a download limit and, for a password, a salt and an Argon2id verifier
// (LinkVerifier); links can be suspended, resumed and revoked, and a link
// dies when its creator may no longer manage its path. TestSeedShareLinks.
//
// # Where this departs from LOG-RULES.md, and why
//
//   - Organizer is a rank of its own between editor and manager (the issue's
//     role list); LOG-RULES has none.
//   - Strong remove is implemented as "re-check the op with the concurrent
//     effective denials aimed at its author (or at objects) applied to the
//     state of its past; void it if it then lacks a right" rather than as a
//     per-denial list of rights to strip. It covers D1, D2 and D4 with one
//     rule and needs no table of which right each denial removes, only of
//     whom it is aimed at (State.deniedUser).
//   - Restrictions, policy changes, request denials and link suspensions count
//     as denials (they take rights away), in addition to R5's list. A grant
//     that lowers a role counts as a demotion; a promotion (a role change or
//     grant upward) is not a denial.
//   - A grant replaces the earlier grant of the same principal and node
//     (LOG-RULES does not say), which is why lowering grants obey
//     strictly-below and count as demotions.
//   - A request's epoch is derived from its causal past rather than carried
//     in the op (R10 has the requester write it): the same number, but no
//     requester can pick one that starves the file, and old ops need no new
//     field. A witness's "epochs acked before" are its own signed acks
//     (valid or not, of requests in their past), not the valid ones: a
//     voided ack was still counted by some replica towards a grant. A
//     request that loses to a concurrent one with the same epoch stays
//     pending until its requester withdraws it and asks again.
//   - A lock ends on expiry only when a majority of witnesses published
//     LockExpire (symmetric with acquisition), not when one did: one faulty
//     witness cannot end a lock.
//   - Invitation expiry is checked in the log against the join op's own time
//     hint (deterministic), besides the owners' RevokeInvite for expired
//     invitations.
//   - Versions are not ops of this log, so "a version concurrent with a
//     denial" is judged from the heads the version names: a version whose
//     heads do not include an effective denial of its author is quarantined,
//     even if it was written before the denial. Nothing is lost (managers see
//     it and may adopt it) but an old version of a later-revoked member that
//     reaches a replica late is quarantined there. A later revision can carry
//     "doc heads" in denials (Keyhive) to narrow this.
//
// # Fixes after verification
//
// The verification helper's reference evaluator (reference_test.go) and
// exhaustive delivery orders (exhaustive_test.go) found six departures from
// these rules; each is fixed and its scenario in TestExhaustiveOrders
// passes in every delivery order:
//
//  1. Fail-open when a revoke and the member's renunciation of the same grant
//     are concurrent: both were voided ("no grant to revoke"). Now only a lost
//     right voids. Scenario "I4-I5 revoke concurrent with the member's own
//     renunciation". Also, only the denials aimed at the op's author (or a
//     join's issuer) are applied, so a missing target cannot hide a lost
//     right (differential seed 1329).
//  2. A manager could demote a peer manager by granting a lower role. Now a
//     lowering grant needs a rank strictly above the role it lowers.
//     Scenario "R4 strictly-below: a manager may not demote a peer manager
//     by granting a lower role".
//  3. A demotion made by a lower grant was not a strong remove. Now it is a
//     denial. Scenario "I4 demotion by a lower grant concurrent with the
//     demoted member's actions".
//  4. Invitation over-use kept the first joins in (Lamport, CID) order. Now
//     the smallest IDs keep the uses (R11). Scenario "I8 R11 over-use keeps
//     the smallest IDs even against Lamport order".
//  5. A grant beaten by a concurrent revoke came back once a later grant
//     superseded the revoke. Registers now keep tombstones. Scenario "D3
//     concurrent grant and revoke of the same right, remove wins".
//  6. A promotion counted as a denial and voided a concurrent demotion. It
//     no longer does (lead's decision). Scenario "R5 a promotion is not a
//     denial".
//
// # Costs
//
// Ops that follow the whole log (every linear append, and every local
// Append) are evaluated incrementally against the current state: O(1)-ish
// (BenchmarkAppendMerge100k). An op that arrives concurrent with others
// marks the log dirty, and the next query re-evaluates — but only what
// follows the latest cut: a position in the order such that every op before
// it is an ancestor of every op after it, so nothing later can be concurrent
// with what precedes it and those verdicts are final. A linear append is a
// cut, and so is the point after a round in which every writer merged
// everything. The log keeps copies of the state at a few cuts (dense for
// recent history, thinned geometrically, MaxCuts in all); an op that does
// not descend from a cut's frontier (a long-offline branch) removes it and
// the next evaluation starts from an earlier one, or from genesis. Within
// the re-evaluated window the past of each concurrent op is built on a few
// reusable scratch states, so the work is about window x writers plus one
// copy of the state per evaluation. Copying the state is O(state) (nodes,
// grants, lock requests are never pruned): that, and a long-offline branch
// forcing a re-evaluation from genesis (O(n x concurrent ops)), are the known
// costs; witness checkpoints (LOG-RULES R12) are the planned bound
// (BenchmarkConcurrent3). Can, RoleAt and LockHolder read the materialized
// indexes (per-node grant registers, group membership, the folder tree): a
// walk up the tree, never a log scan (BenchmarkCan).
//
// # Files
//
// op.go (envelope, encoding, signatures), kinds.go and kinds_gen.go (op
// kinds and payloads), role.go (roles, actions, MinRole), register.go
// (multi-value registers), state.go (state, admission checks, apply),
// log.go (the DAG, pending buffer, Merge, Append, Build), eval.go (total
// order, ancestry, cuts, strong-remove rounds), clone.go (state copies), query.go (Can, Members, locks,
// invitations, links, requests, VersionVerdict), snapshot.go (Snapshot,
// Digest), link.go (link password verifiers), lockepoch.go (lock request
// epochs and witness ack marks, facts of the op DAG), memstore.go.
package crdt
