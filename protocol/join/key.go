package join

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/wire"
)

// KeyPrefix starts every invitation key, so a key is recognisable at a glance
// and a pasted string of another kind is refused clearly.
const KeyPrefix = "mfinv1-"

// Limits of an invitation key.
const (
	MaxKeyAddrs      = 16
	MaxKeyAddrLength = 256
	maxSecretLength  = 128
	// MaxKeyLength bounds the text of a key before anything is decoded.
	MaxKeyLength = 8 << 10
)

// ErrBadKey: the text is not an invitation key, or it was mistyped or altered.
var ErrBadKey = errors.New("not a valid invitation key (mistyped, truncated or altered?)")

// Key is an invitation key: everything a joiner needs, in one string.
type Key struct {
	Folder cid.Cid        // the folder to join
	Invite []byte         // the invitation's ID (crdt.InviteID bytes)
	Secret crypto.PrivKey // the invitation's one-time Ed25519 key
	Addrs  []peer.AddrInfo
}

// String encodes the key as KeyPrefix + base32 of its fields and a checksum
// (wire.Armor).
func (k Key) String() string {
	secret, err := crypto.MarshalPrivateKey(k.Secret)
	if err != nil {
		panic(fmt.Sprintf("join: marshal invitation key: %v", err)) // Ed25519 keys always marshal
	}
	var e wire.Encoder
	e.CID(k.Folder)
	e.Bytes(k.Invite)
	e.Bytes(secret)
	e.AddrInfos(k.Addrs, MaxKeyAddrs, MaxKeyAddrLength)
	return wire.Armor(KeyPrefix, e.Out())
}

// ParseKey decodes an invitation key. Surrounding white space is ignored;
// anything else wrong is ErrBadKey with the reason.
func ParseKey(s string) (Key, error) {
	body, err := wire.Unarmor(KeyPrefix, s, MaxKeyLength)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	d := wire.NewDecoder(body)
	k := Key{Folder: d.CID(), Invite: bytes.Clone(d.Bytes(MaxInviteIDLength, "invite"))}
	secret := d.Bytes(maxSecretLength, "secret")
	k.Addrs = d.AddrInfos(MaxKeyAddrs, MaxKeyAddrLength)
	if err := d.Finish(); err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if len(k.Invite) == 0 {
		return Key{}, fmt.Errorf("%w: no invitation", ErrBadKey)
	}
	priv, err := crypto.UnmarshalPrivateKey(secret)
	if err != nil || priv.Type() != crypto.Ed25519 {
		return Key{}, fmt.Errorf("%w: bad invitation secret", ErrBadKey)
	}
	k.Secret = priv
	return k, nil
}
