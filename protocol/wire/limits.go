package wire

import "github.com/meshfold/meshfold/store"

// Limits shared by several messages. Message-specific limits live beside
// their message. Every limit a decoder enforces is a named constant.
const (
	// MaxFolderIDLength bounds a folder ID (the string form of its genesis
	// op's CID, about 60 bytes).
	MaxFolderIDLength = 128
	// MaxDeviceIDLength bounds a device ID (the bytes of a libp2p peer ID:
	// 38 for Ed25519 identity multihashes, 34 for hashed keys).
	MaxDeviceIDLength = 64
	// MaxCIDLength bounds the binary form of a CID (CIDv1 + 34-byte
	// multihash is 36 bytes; leaves room for 64-byte digests).
	MaxCIDLength = 80
	// MaxSignatureLength bounds a signature (Ed25519: 64 bytes; ECDSA DER
	// up to 72; RSA-4096 512).
	MaxSignatureLength = 520
	// MaxVectorCounters bounds the number of devices in a version vector
	// or a folder-state "seen" list: the number of devices a folder can
	// have.
	MaxVectorCounters = 4096
	// MaxLogHeads bounds a list of rights-log heads (concurrent branches
	// of the op DAG; more than this means the log needs a merge op).
	MaxLogHeads = 256
	// MaxErrorMessage bounds the human text of an Error frame.
	MaxErrorMessage = 256
	// MaxChunkSize is the largest chunk a peer may send (store's limit).
	MaxChunkSize = store.MaxChunkSize
)
