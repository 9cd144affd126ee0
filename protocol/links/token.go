package links

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/protocol/wire"
)

// TokenPrefix starts every link token, so a token is recognisable at a
// glance and a pasted string of another kind is refused clearly.
const TokenPrefix = "mflink1-"

// Limits of a token.
const (
	MaxTokenAddrs      = 16
	MaxTokenAddrLength = 256
	// MaxTokenLength bounds the text of a token before anything is decoded.
	MaxTokenLength = 8 << 10
)

// ErrBadToken: the text is not a link token, or it was mistyped or altered.
var ErrBadToken = errors.New("not a valid link token (mistyped, truncated or altered?)")

// Token is everything needed to download a linked file, in one string.
type Token struct {
	Folder   cid.Cid
	Link     []byte // the link ID (binary CID of its CreateLink op)
	Secret   []byte // SecretLength random bytes; only a verifier is in the log
	Password bool   // the link also needs a password (so the client asks first)
	Addrs    []peer.AddrInfo
}

// String encodes the token as TokenPrefix + base32 of its fields and a
// checksum (wire.Armor).
func (t Token) String() string {
	var e wire.Encoder
	e.CID(t.Folder)
	e.Bytes(t.Link)
	e.Bytes(t.Secret)
	e.Bool(t.Password)
	e.AddrInfos(t.Addrs, MaxTokenAddrs, MaxTokenAddrLength)
	return wire.Armor(TokenPrefix, e.Out())
}

// ParseToken decodes a link token. Surrounding white space is ignored;
// anything else wrong is ErrBadToken with the reason.
func ParseToken(s string) (Token, error) {
	body, err := wire.Unarmor(TokenPrefix, s, MaxTokenLength)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	d := wire.NewDecoder(body)
	t := Token{Folder: d.CID(), Link: bytes.Clone(d.Bytes(MaxLinkIDLength, "link")),
		Secret: bytes.Clone(d.Bytes(SecretLength, "secret")), Password: d.Bool()}
	// Devices in the order the token names them (the creator's first).
	t.Addrs = d.AddrInfos(MaxTokenAddrs, MaxTokenAddrLength)
	if err := d.Finish(); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if len(t.Link) == 0 || len(t.Secret) != SecretLength {
		return Token{}, fmt.Errorf("%w: no link or a short secret", ErrBadToken)
	}
	return t, nil
}
