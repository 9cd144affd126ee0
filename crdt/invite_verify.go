package crdt

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// ErrBadInviteProof: the proof was not made with the invitation's key for
// this folder, invitation, user and device.
var ErrBadInviteProof = errors.New("the invitation proof does not verify")

// VerifyInviteProof checks, before anything is revealed to a would-be joiner,
// that proof was made with inv's one-time key over (folder, inv, cert's user
// and device), and that cert itself is signed by its user. The Join op that
// follows is judged by the log as usual; this is the gate in front of it.
func VerifyInviteProof(inv Invite, folder cid.Cid, cert DeviceCert, proof []byte) error {
	if err := cert.Verify(); err != nil {
		return err
	}
	pub, err := crypto.UnmarshalPublicKey(inv.Key)
	if err != nil {
		return fmt.Errorf("invitation key: %w", err)
	}
	ok, err := pub.Verify(inviteProofMessage(folder, inv.ID, cert), proof)
	if err != nil || !ok {
		return ErrBadInviteProof
	}
	return nil
}
