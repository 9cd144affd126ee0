// Package protocol holds meshfold's wire layer: messages, their encoding,
// size limits and signatures, and the libp2p stream and pubsub handlers that
// carry them. This package itself is only documentation; the code is in one
// sub-package per protocol:
//
//	wire/     framing (type, version, uvarint length; per-type limits checked
//	          before allocation), the canonical field codec, sentinel errors and
//	          their wire codes (errors.go), shared limits
//	state/    signed FolderState records, the per-folder GossipSub topic
//	          "/meshfold/folder/1/<folder>" and its validator
//	logsync/  "/meshfold/log/1.0.0": rights-log heads and op fetching
//	index/    "/meshfold/index/1.0.0": signed file versions of a device since a
//	          sequence, withheld per path by read access
//	chunks/   "/meshfold/chunks/1.0.0": pipelined chunk requests by CID, and
//	          the multi-source Fetcher
//	internal/ test support (golden vectors, deterministic keys, real hosts)
//
// Every message has golden wire vectors in its package's testdata/
// (regenerate with `go test ./protocol/... -run Golden -update`, only for a
// deliberate format change: old vectors must keep decoding) and a fuzz test
// for its decoder.
//
// The sub-packages know store's types; they start no goroutines of their own
// beyond stream handlers and, in chunks.Fetch, the per-peer workers of one
// call, which end before it returns. Serving sides take narrow interfaces
// declared beside them (index.Source, chunks.Source, logsync.Log, the
// Access/Members checks) that node/ implements.
package protocol
