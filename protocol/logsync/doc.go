// Package logsync is rights-log sync, protocol ID ProtocolID: two members
// compare the heads of a folder's op DAG and the one behind fetches the ops
// it lacks, walking parents back until it reaches ops it has.
//
// Exchange (one stream, several rounds):
//
//	client -> Heads{Folder, Heads}   the client's heads
//	server -> Heads{Folder, Heads}   the server's heads (or Error: not a member)
//	client -> Want{CIDs}             at most MaxWant ops
//	server -> Ops{Ops}               those it has, in order, within MaxOpsSize;
//	...                              ops it lacks or that did not fit are left out
//	client closes its side           the server closes too
//
// Ops are raw bytes to this package: each is content-addressed, and the
// client checks every op hashes to a CID it asked for (same CID prefix)
// before anything else sees it. Parsing ops, checking signatures and rights
// is crdt's job, reached through the callbacks of Pull.
//
// Files: messages.go (Heads, Want, Ops, limits), server.go, client.go
// (Session and Pull).
//
// Who may import it: node/ and simulations/.
package logsync
