package store

// Known addresses of peers, per node (not per folder): node/ stores the binary
// form of their multiaddrs so it can redial them after a restart without the
// DHT. store sees opaque bytes.
//
// Record: version byte, uvarint count (<= MaxPeerAddrs), then each address as
// uvarint length (1..MaxPeerAddrLength) and bytes.

import (
	"encoding/binary"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Limits of the peer address book.
const (
	// MaxPeerIDLength bounds a peer ID key (a libp2p peer ID is 38 bytes).
	MaxPeerIDLength = 256
	// MaxPeerAddrs bounds the addresses kept per peer.
	MaxPeerAddrs = 64
	// MaxPeerAddrLength bounds one address.
	MaxPeerAddrLength = 1024
)

func peerKey(peerID string) ([]byte, error) {
	if peerID == "" || len(peerID) > MaxPeerIDLength {
		return nil, fmt.Errorf("store: peer ID length %d not in 1..%d", len(peerID), MaxPeerIDLength)
	}
	return append([]byte{ksPeer}, peerID...), nil
}

// PutPeerAddrs replaces the addresses known for peerID; an empty list
// forgets the peer.
func (db *DB) PutPeerAddrs(peerID string, addrs [][]byte) error {
	k, err := peerKey(peerID)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return translate("delete peer", db.ldb.Delete(k, &opt.WriteOptions{Sync: true}))
	}
	v, err := encodePeerAddrs(addrs)
	if err != nil {
		return fmt.Errorf("store: peer %q: %w", peerID, err)
	}
	return translate("put peer", db.ldb.Put(k, v, &opt.WriteOptions{Sync: true}))
}

// PeerAddrs returns the addresses known for peerID (nil if none).
func (db *DB) PeerAddrs(peerID string) ([][]byte, error) {
	k, err := peerKey(peerID)
	if err != nil {
		return nil, err
	}
	v, ok, err := get(db.ldb, "get peer", k)
	if err != nil || !ok {
		return nil, err
	}
	addrs, err := decodePeerAddrs(v)
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", peerID, err)
	}
	return addrs, nil
}

// ForEachPeer calls fn with every known peer and its addresses, in bytewise
// peer ID order. An error from fn stops it and is returned as is.
func (db *DB) ForEachPeer(fn func(peerID string, addrs [][]byte) error) error {
	pfx := []byte{ksPeer}
	return scan(db.ldb, "peers", pfx, prefixEnd(pfx), func(k, v []byte) error {
		id := string(k[1:])
		if id == "" || len(id) > MaxPeerIDLength {
			return corruptf("peer key with ID length %d", len(id))
		}
		addrs, err := decodePeerAddrs(v)
		if err != nil {
			return fmt.Errorf("peer %q: %w", id, err)
		}
		return fn(id, addrs)
	})
}

func encodePeerAddrs(addrs [][]byte) ([]byte, error) {
	if len(addrs) > MaxPeerAddrs {
		return nil, fmt.Errorf("%d addresses, limit %d", len(addrs), MaxPeerAddrs)
	}
	b := []byte{recordVersion}
	b = binary.AppendUvarint(b, uint64(len(addrs)))
	for _, a := range addrs {
		if len(a) == 0 || len(a) > MaxPeerAddrLength {
			return nil, fmt.Errorf("address length %d not in 1..%d", len(a), MaxPeerAddrLength)
		}
		b = appendBytes(b, a)
	}
	return b, nil
}

// decodePeerAddrs parses a stored address list; the addresses are copies.
func decodePeerAddrs(b []byte) ([][]byte, error) {
	d := decoder{b: b, what: "peer addresses"}
	d.version()
	n := d.count(MaxPeerAddrs, 2, "addresses")
	var addrs [][]byte
	for i := 0; i < n && d.err == nil; i++ {
		a := d.bytes(1, MaxPeerAddrLength, "address")
		addrs = append(addrs, append([]byte(nil), a...))
	}
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return addrs, nil
}
