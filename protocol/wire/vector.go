package wire

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/store"
)

// Counter is the wire form of one version-vector entry.
type Counter struct {
	Device []byte // a device ID: the bytes of a libp2p peer ID
	Value  uint64
}

// VectorToWire converts a version vector to its wire form.
func VectorToWire(v store.VersionVector) []Counter {
	out := make([]Counter, len(v.Counters))
	for i, c := range v.Counters {
		out[i] = Counter{Device: []byte(c.Device), Value: c.Value}
	}
	return out
}

// VectorFromWire converts back; it does not check validity (DecodeVector does).
func VectorFromWire(cs []Counter) store.VersionVector {
	if len(cs) == 0 {
		return store.VersionVector{}
	}
	out := make([]store.Counter, len(cs))
	for i, c := range cs {
		out[i] = store.Counter{Device: store.DeviceID(c.Device), Value: c.Value}
	}
	return store.VersionVector{Counters: out}
}

// Vector appends a version vector: a count, then (device, value) pairs in
// the vector's own order (sorted by device, no zero values).
func (e *Encoder) Vector(v store.VersionVector) {
	e.Uvarint(uint64(len(v.Counters)))
	for _, c := range v.Counters {
		e.String(string(c.Device))
		e.Uvarint(c.Value)
	}
}

// Vector reads a version vector and rejects one that is not valid
// (unsorted, duplicated or zero counters) or names a device ID that is not a
// libp2p peer ID.
func (d *Decoder) Vector(what string) store.VersionVector {
	n := d.Count(MaxVectorCounters, what)
	if n == 0 {
		return store.VersionVector{}
	}
	cs := make([]Counter, 0, n)
	for range n {
		dev := d.Bytes(MaxDeviceIDLength, what+" device")
		val := d.Uvarint()
		if d.err != nil {
			return store.VersionVector{}
		}
		if _, err := peer.IDFromBytes(dev); err != nil {
			d.Fail(what + ": device is not a peer ID")
			return store.VersionVector{}
		}
		cs = append(cs, Counter{Device: dev, Value: val})
	}
	v := VectorFromWire(cs)
	if !v.Valid() {
		d.Fail(what + ": not sorted, duplicated or zero")
		return store.VersionVector{}
	}
	return v
}

// Device reads a device ID and checks it is a libp2p peer ID.
func (d *Decoder) Device(what string) peer.ID {
	b := d.Bytes(MaxDeviceIDLength, what)
	if d.err != nil {
		return ""
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		d.Fail(what + ": not a peer ID")
		return ""
	}
	return id
}
