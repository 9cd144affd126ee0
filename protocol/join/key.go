package join

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

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
	checksumLength   = 4
	// MaxKeyLength bounds the text of a key before anything is decoded.
	MaxKeyLength = 8 << 10
)

// ErrBadKey: the text is not an invitation key, or it was mistyped or altered.
var ErrBadKey = errors.New("not a valid invitation key (mistyped, truncated or altered?)")

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key is an invitation key: everything a joiner needs, in one string.
type Key struct {
	Folder cid.Cid        // the folder to join
	Invite []byte         // the invitation's ID (crdt.InviteID bytes)
	Secret crypto.PrivKey // the invitation's one-time Ed25519 key
	Addrs  []peer.AddrInfo
}

// String encodes the key as KeyPrefix + base32 of its fields and a checksum.
func (k Key) String() string {
	secret, err := crypto.MarshalPrivateKey(k.Secret)
	if err != nil {
		panic(fmt.Sprintf("join: marshal invitation key: %v", err)) // Ed25519 keys always marshal
	}
	var e wire.Encoder
	e.CID(k.Folder)
	e.Bytes(k.Invite)
	e.Bytes(secret)
	var addrs [][]byte
	for _, ai := range k.Addrs {
		full, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil {
			continue
		}
		for _, a := range full {
			if len(addrs) < MaxKeyAddrs {
				addrs = append(addrs, a.Bytes())
			}
		}
	}
	e.Uvarint(uint64(len(addrs)))
	for _, a := range addrs {
		e.Bytes(a)
	}
	body := e.Out()
	sum := sha256.Sum256(body)
	return KeyPrefix + strings.ToLower(keyEncoding.EncodeToString(append(body, sum[:checksumLength]...)))
}

// ParseKey decodes an invitation key. Surrounding white space is ignored;
// anything else wrong is ErrBadKey with the reason.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxKeyLength {
		return Key{}, fmt.Errorf("%w: %d characters", ErrBadKey, len(s))
	}
	if !strings.HasPrefix(s, KeyPrefix) {
		return Key{}, fmt.Errorf("%w: it does not start with %q", ErrBadKey, KeyPrefix)
	}
	raw, err := keyEncoding.DecodeString(strings.ToUpper(s[len(KeyPrefix):]))
	if err != nil || len(raw) <= checksumLength {
		return Key{}, fmt.Errorf("%w: not base32", ErrBadKey)
	}
	body, sum := raw[:len(raw)-checksumLength], raw[len(raw)-checksumLength:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:checksumLength]) {
		return Key{}, fmt.Errorf("%w: checksum mismatch", ErrBadKey)
	}
	d := wire.NewDecoder(body)
	k := Key{Folder: d.CID(), Invite: bytes.Clone(d.Bytes(MaxInviteIDLength, "invite"))}
	secret := d.Bytes(maxSecretLength, "secret")
	n := d.Count(MaxKeyAddrs, "addresses")
	var addrs []ma.Multiaddr
	for range n {
		b := d.Bytes(MaxKeyAddrLength, "address")
		if d.Err() != nil {
			break
		}
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			d.Fail("bad address")
			break
		}
		addrs = append(addrs, a)
	}
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
	if len(addrs) > 0 {
		infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
		if err != nil {
			return Key{}, fmt.Errorf("%w: address without a device ID", ErrBadKey)
		}
		k.Addrs = infos
	}
	return k, nil
}
