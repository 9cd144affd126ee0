// Package chunks is chunk exchange, protocol ID ProtocolID: fetching file
// content by CID from peers, and the multi-source Fetcher that spreads a
// transfer over every peer that has the file.
//
// Exchange (one long-lived stream per peer and transfer, pipelined):
//
//	client -> Request{Folder, CIDs}   at most MaxChunksPerRequest CIDs; the client
//	client -> Request{...}            may send more before the answers arrive
//	server -> Response{CID, Code, Data}   exactly one per requested CID, in
//	                                      request order; Data only with CodeOK
//
// The server answers each CID with the chunk read back (and verified) by its
// Source from a file the requester may read, or with CodeNotFound,
// CodeNoAccess or CodeChanged. The client checks every response names the
// CID it expects next and that the data hashes to it (store.VerifyChunk)
// before anyone sees it.
//
// Fetcher: given the wanted CIDs and the peers that have them, it keeps one
// pipelined stream per peer with several requests in flight, sizes each
// peer's window from an EWMA of its measured rate (so slow peers get less),
// delivers verified chunks through a callback, retries chunks elsewhere when a
// peer lacks them, and drops (and penalises) a peer that sends bad data.
//
// Delta exchange (DeltaProtocolID, delta.go): a chunk the client can mostly
// assemble from bytes it holds (an older version of its file) is fetched as
// a manifest of content-defined pieces and the byte ranges it lacks, then
// verified against its CID like any chunk; see delta.go.
//
// Files: messages.go (Request, Response, limits), server.go, client.go
// (Client: one pipelined stream), fetch.go (Fetcher), rate.go (EWMA),
// delta.go (delta exchange: messages, DeltaServer, FetchDelta, Basis).
//
// Who may import it: node/ and simulations/.
package chunks
