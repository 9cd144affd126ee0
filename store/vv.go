package store

import (
	"slices"
	"strings"
)

// Counter is one device's entry in a version vector.
type Counter struct {
	Device DeviceID
	Value  uint64
}

// VersionVector is the causal history of a path: for each device, how many
// changes of it this version has seen. Counters are kept sorted by Device with
// no zero values, so two equal vectors have one representation. The zero value
// is the empty vector. Methods never modify the receiver.
type VersionVector struct {
	Counters []Counter
}

// Ordering is how two version vectors relate.
type Ordering int

// The four answers of Compare.
const (
	Equal      Ordering = iota // the same history
	Newer                      // the receiver has seen everything the other has, and more
	Older                      // the other has seen everything the receiver has, and more
	Concurrent                 // each has seen something the other has not: a conflict
)

func (o Ordering) String() string {
	return [...]string{"equal", "newer", "older", "concurrent"}[o]
}

// Get returns device d's counter, 0 when absent.
func (v VersionVector) Get(d DeviceID) uint64 {
	i, ok := slices.BinarySearchFunc(v.Counters, d, cmpCounter)
	if !ok {
		return 0
	}
	return v.Counters[i].Value
}

// Update returns a copy of v with device d's counter set to value, which must
// be greater than the current one for the result to be Newer than v.
func (v VersionVector) Update(d DeviceID, value uint64) VersionVector {
	out := slices.Clone(v.Counters)
	i, ok := slices.BinarySearchFunc(out, d, cmpCounter)
	if ok {
		if value == 0 {
			return VersionVector{Counters: slices.Delete(out, i, i+1)}
		}
		out[i].Value = value
		return VersionVector{Counters: out}
	}
	if value == 0 {
		return VersionVector{Counters: out}
	}
	return VersionVector{Counters: slices.Insert(out, i, Counter{Device: d, Value: value})}
}

// Merge returns the element-wise maximum of v and o: a history that has seen both.
func (v VersionVector) Merge(o VersionVector) VersionVector {
	out := make([]Counter, 0, max(len(v.Counters), len(o.Counters)))
	i, j := 0, 0
	for i < len(v.Counters) || j < len(o.Counters) {
		switch {
		case j == len(o.Counters) || (i < len(v.Counters) && v.Counters[i].Device < o.Counters[j].Device):
			out = append(out, v.Counters[i])
			i++
		case i == len(v.Counters) || o.Counters[j].Device < v.Counters[i].Device:
			out = append(out, o.Counters[j])
			j++
		default:
			out = append(out, Counter{Device: v.Counters[i].Device, Value: max(v.Counters[i].Value, o.Counters[j].Value)})
			i++
			j++
		}
	}
	return VersionVector{Counters: out}
}

// Compare tells how v relates to o.
func (v VersionVector) Compare(o VersionVector) Ordering {
	vAhead, oAhead := false, false
	i, j := 0, 0
	for i < len(v.Counters) || j < len(o.Counters) {
		switch {
		case j == len(o.Counters) || (i < len(v.Counters) && v.Counters[i].Device < o.Counters[j].Device):
			vAhead = vAhead || v.Counters[i].Value > 0
			i++
		case i == len(v.Counters) || o.Counters[j].Device < v.Counters[i].Device:
			oAhead = oAhead || o.Counters[j].Value > 0
			j++
		default:
			vAhead = vAhead || v.Counters[i].Value > o.Counters[j].Value
			oAhead = oAhead || o.Counters[j].Value > v.Counters[i].Value
			i++
			j++
		}
	}
	switch {
	case vAhead && oAhead:
		return Concurrent
	case vAhead:
		return Newer
	case oAhead:
		return Older
	}
	return Equal
}

// Valid reports whether the counters are sorted, unique and non-zero, as every
// vector built by this package is. Decoders use it to reject corrupt records.
func (v VersionVector) Valid() bool {
	for i, c := range v.Counters {
		if c.Value == 0 || (i > 0 && v.Counters[i-1].Device >= c.Device) {
			return false
		}
	}
	return true
}

func cmpCounter(c Counter, d DeviceID) int { return strings.Compare(string(c.Device), string(d)) }
