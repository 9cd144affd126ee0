package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ArmorChecksum is how many bytes of the body's SHA-256 end an armored
// string: enough to catch a mistyped or truncated copy, not a signature.
const ArmorChecksum = 4

var armorEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Armor is how a binary body travels as text a user copies and pastes
// (invitation keys, link tokens): prefix, then lower-case unpadded base32 of
// the body followed by ArmorChecksum bytes of its SHA-256.
func Armor(prefix string, body []byte) string {
	sum := sha256.Sum256(body)
	out := append(bytes.Clone(body), sum[:ArmorChecksum]...)
	return prefix + strings.ToLower(armorEncoding.EncodeToString(out))
}

// Unarmor reverses Armor. Surrounding white space is ignored; text longer
// than maxLen is refused before anything is decoded. The error says why in a
// few words, for the caller to wrap with its own sentinel.
func Unarmor(prefix, s string, maxLen int) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxLen {
		return nil, fmt.Errorf("%d characters", len(s))
	}
	if !strings.HasPrefix(s, prefix) {
		return nil, fmt.Errorf("it does not start with %q", prefix)
	}
	raw, err := armorEncoding.DecodeString(strings.ToUpper(s[len(prefix):]))
	if err != nil || len(raw) <= ArmorChecksum {
		return nil, errors.New("not base32")
	}
	body, sum := raw[:len(raw)-ArmorChecksum], raw[len(raw)-ArmorChecksum:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:ArmorChecksum]) {
		return nil, errors.New("checksum mismatch")
	}
	return body, nil
}

// AddrInfos writes devices' addresses as a count and that many /p2p
// multiaddrs, keeping at most maxAddrs of them no longer than maxLen bytes
// each, in the order given.
func (e *Encoder) AddrInfos(infos []peer.AddrInfo, maxAddrs, maxLen int) {
	var addrs [][]byte
	for _, ai := range infos {
		full, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil {
			continue
		}
		for _, a := range full {
			if len(addrs) < maxAddrs && len(a.Bytes()) <= maxLen {
				addrs = append(addrs, a.Bytes())
			}
		}
	}
	e.Uvarint(uint64(len(addrs)))
	for _, a := range addrs {
		e.Bytes(a)
	}
}

// AddrInfos reads what Encoder.AddrInfos wrote: the devices in the order
// they first appear, each with its addresses. An address that does not
// parse or names no device fails the decoder.
func (d *Decoder) AddrInfos(maxAddrs, maxLen int) []peer.AddrInfo {
	n := d.Count(maxAddrs, "addresses")
	var out []peer.AddrInfo
	index := map[peer.ID]int{}
	for range n {
		b := d.Bytes(maxLen, "address")
		if d.Err() != nil {
			return nil
		}
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			d.Fail("bad address")
			return nil
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			d.Fail("address without a device ID")
			return nil
		}
		i, ok := index[ai.ID]
		if !ok {
			i = len(out)
			index[ai.ID] = i
			out = append(out, peer.AddrInfo{ID: ai.ID})
		}
		out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
	}
	return out
}
