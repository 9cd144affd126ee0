// Package index is index sync, protocol ID ProtocolID: "send me the file
// versions of device D made after its sequence N". Every version travels as
// an Entry signed by its author device over SignDomain, the folder ID and the
// canonical encoding of the version's shared fields, including the rights-log
// heads it was made under; so any member can forward any other member's
// changes and the receiver checks them itself (multi-hop sync with no trusted
// middle).
//
// Exchange (one request per stream):
//
//	client -> Request{Folder, Device, FromSeq, Limit}
//	server -> Batch{Entries}...     versions authored by Device with Seq > FromSeq,
//	                                in Seq order, at most MaxEntriesPerBatch each;
//	                                versions of paths the client may not read are
//	                                withheld
//	server -> End{Through, More}    Through: the highest sequence examined (the
//	                                client's next FromSeq, even when entries were
//	                                withheld); More: the server stopped at the limit
//	or server -> Error{Code}        instead, at any point
//
// The client checks every entry (author is the requested device, sequences
// strictly rising within (FromSeq, Through], signature by the author, fields
// valid) before passing it on; checking it against the rights log at the log
// state it names is the caller's job (the accept callback).
//
// Files: entry.go (the Entry wire struct, ToWire/FromWire against
// store.FileInfo, validation), sign.go (SignVersion/VerifyVersion),
// messages.go (Request, Batch, End and limits), server.go, client.go.
//
// Who may import it: node/ and simulations/.
package index
