package state

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/wire"
)

// SignDomain prefixes the signed bytes of a FolderState, so that no other
// meshfold signature (file versions, log ops) can be replayed as one.
const SignDomain = "meshfold folder-state v1\x00"

func (s *FolderState) signedBytes() []byte {
	e := wire.Encoder{}
	e.String(SignDomain)
	s.appendBody(&e)
	return e.Out()
}

// Sign sets s.Device to key's peer ID, canonicalises LogHeads (sorted,
// unique) and signs s with key.
func (s *FolderState) Sign(key crypto.PrivKey) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("signing folder state: %w", err)
	}
	s.Device = id
	s.LogHeads = wire.SortCIDs(s.LogHeads)
	sig, err := key.Sign(s.signedBytes())
	if err != nil {
		return fmt.Errorf("signing folder state: %w", err)
	}
	s.Signature = sig
	return nil
}

// Verify checks s.Signature against the public key embedded in s.Device
// (Ed25519 device IDs embed their key, so records are self-certifying). It
// returns an error wrapping wire.ErrBadSignature if the signature does not
// verify or the device ID embeds no key; use VerifyWith for such IDs.
func (s *FolderState) Verify() error {
	pub, err := s.Device.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("folder state from %s: no public key in device ID: %w", s.Device, wire.ErrBadSignature)
	}
	return s.VerifyWith(pub)
}

// VerifyWith checks s.Signature against pub, which must be s.Device's key.
func (s *FolderState) VerifyWith(pub crypto.PubKey) error {
	if pub == nil || !s.Device.MatchesPublicKey(pub) {
		return fmt.Errorf("folder state from %s: key is not the device's: %w", s.Device, wire.ErrBadSignature)
	}
	ok, err := pub.Verify(s.signedBytes(), s.Signature)
	if err != nil || !ok {
		return fmt.Errorf("folder state from %s: %w", s.Device, wire.ErrBadSignature)
	}
	return nil
}
