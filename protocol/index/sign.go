package index

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// SignDomain prefixes the bytes a file-version signature covers, so that no
// other meshfold signature can be replayed as one.
const SignDomain = "meshfold file-version v1\x00"

// signedBytes is SignDomain, the folder ID and the shared fields of fi: not
// Inode or Dev (local only), not the signature itself.
func signedBytes(folder string, fi store.FileInfo) []byte {
	var e wire.Encoder
	e.String(SignDomain)
	e.String(folder)
	appendShared(&e, fi)
	return e.Out()
}

// SignVersion returns the author's signature over fi in folder. fi must pass
// Validate (in particular LogHeads sorted and unique, see wire.SortCIDs,
// because that is how they travel) and fi.Author must be key's device ID.
func SignVersion(folder string, fi store.FileInfo, key crypto.PrivKey) ([]byte, error) {
	if err := Validate(fi); err != nil {
		return nil, fmt.Errorf("signing version of %q: %w", fi.Path, err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("signing version of %q: %w", fi.Path, err)
	}
	if store.DeviceID(id) != fi.Author {
		return nil, fmt.Errorf("signing version of %q: key is not the author's", fi.Path)
	}
	sig, err := key.Sign(signedBytes(folder, fi))
	if err != nil {
		return nil, fmt.Errorf("signing version of %q: %w", fi.Path, err)
	}
	return sig, nil
}

// VerifyVersion checks fi.Signature against pub, which must be fi.Author's
// key. Errors wrap wire.ErrBadSignature.
func VerifyVersion(folder string, fi store.FileInfo, pub crypto.PubKey) error {
	if pub == nil || !peer.ID(fi.Author).MatchesPublicKey(pub) {
		return fmt.Errorf("version of %q: key is not the author's: %w", fi.Path, wire.ErrBadSignature)
	}
	ok, err := pub.Verify(signedBytes(folder, fi), fi.Signature)
	if err != nil || !ok {
		return fmt.Errorf("version of %q by %s: %w", fi.Path, peer.ID(fi.Author), wire.ErrBadSignature)
	}
	return nil
}

// AuthorKey returns the public key embedded in an author's device ID
// (Ed25519 IDs embed it), the default key lookup of the client.
func AuthorKey(dev store.DeviceID) (crypto.PubKey, error) {
	pub, err := peer.ID(dev).ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", peer.ID(dev), wire.ErrBadSignature)
	}
	return pub, nil
}
