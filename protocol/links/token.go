package links

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/protocol/wire"
)

// TokenPrefix starts every link token, so a token is recognisable at a
// glance and a pasted string of another kind is refused clearly.
const TokenPrefix = "mflink1-"

// Limits of a token.
const (
	MaxTokenAddrs      = 16
	MaxTokenAddrLength = 256
	tokenChecksum      = 4
	// MaxTokenLength bounds the text of a token before anything is decoded.
	MaxTokenLength = 8 << 10
)

// ErrBadToken: the text is not a link token, or it was mistyped or altered.
var ErrBadToken = errors.New("not a valid link token (mistyped, truncated or altered?)")

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Token is everything needed to download a linked file, in one string.
type Token struct {
	Folder   cid.Cid
	Link     []byte // the link ID (binary CID of its CreateLink op)
	Secret   []byte // SecretLength random bytes; only a verifier is in the log
	Password bool   // the link also needs a password (so the client asks first)
	Addrs    []peer.AddrInfo
}

// String encodes the token as TokenPrefix + base32 of its fields and a checksum.
func (t Token) String() string {
	var e wire.Encoder
	e.CID(t.Folder)
	e.Bytes(t.Link)
	e.Bytes(t.Secret)
	e.Bool(t.Password)
	var addrs [][]byte
	for _, ai := range t.Addrs {
		full, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil {
			continue
		}
		for _, a := range full {
			if len(addrs) < MaxTokenAddrs && len(a.Bytes()) <= MaxTokenAddrLength {
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
	return TokenPrefix + strings.ToLower(tokenEncoding.EncodeToString(append(body, sum[:tokenChecksum]...)))
}

// ParseToken decodes a link token. Surrounding white space is ignored;
// anything else wrong is ErrBadToken with the reason.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxTokenLength {
		return Token{}, fmt.Errorf("%w: %d characters", ErrBadToken, len(s))
	}
	if !strings.HasPrefix(s, TokenPrefix) {
		return Token{}, fmt.Errorf("%w: it does not start with %q", ErrBadToken, TokenPrefix)
	}
	raw, err := tokenEncoding.DecodeString(strings.ToUpper(s[len(TokenPrefix):]))
	if err != nil || len(raw) <= tokenChecksum {
		return Token{}, fmt.Errorf("%w: not base32", ErrBadToken)
	}
	body, sum := raw[:len(raw)-tokenChecksum], raw[len(raw)-tokenChecksum:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:tokenChecksum]) {
		return Token{}, fmt.Errorf("%w: checksum mismatch", ErrBadToken)
	}
	d := wire.NewDecoder(body)
	t := Token{Folder: d.CID(), Link: bytes.Clone(d.Bytes(MaxLinkIDLength, "link")),
		Secret: bytes.Clone(d.Bytes(SecretLength, "secret")), Password: d.Bool()}
	n := d.Count(MaxTokenAddrs, "addresses")
	var addrs []ma.Multiaddr
	for range n {
		b := d.Bytes(MaxTokenAddrLength, "address")
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
		return Token{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if len(t.Link) == 0 || len(t.Secret) != SecretLength {
		return Token{}, fmt.Errorf("%w: no link or a short secret", ErrBadToken)
	}
	// Devices in the order the token names them (the creator's first).
	index := map[peer.ID]int{}
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return Token{}, fmt.Errorf("%w: address without a device ID", ErrBadToken)
		}
		i, ok := index[ai.ID]
		if !ok {
			i = len(t.Addrs)
			index[ai.ID] = i
			t.Addrs = append(t.Addrs, peer.AddrInfo{ID: ai.ID})
		}
		t.Addrs[i].Addrs = append(t.Addrs[i].Addrs, ai.Addrs...)
	}
	return t, nil
}
