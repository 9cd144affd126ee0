package store

// The one place where goleveldb's errors become store's: not-found is a
// (value, false, nil) answer, a closed database is ErrClosed, corruption
// detected by goleveldb wraps ErrCorrupt, anything else is wrapped with
// context.

import (
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// ErrClosed is returned by every operation on a closed DB.
var ErrClosed = errors.New("store: database closed")

// bloomBitsPerKey sizes the tables' bloom filters: point lookups of paths the
// index does not hold (every file of a cold scan) mostly skip the disk.
const bloomBitsPerKey = 10

func levelOptions() *opt.Options {
	return &opt.Options{
		Filter: filter.NewBloomFilter(bloomBitsPerKey),
	}
}

// translate turns a goleveldb error into store's vocabulary. It never sees
// leveldb.ErrNotFound: callers of get handle that themselves.
func translate(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, leveldb.ErrClosed):
		return ErrClosed
	case lerrors.IsCorrupted(err):
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, op, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// reader is what both *leveldb.DB and *leveldb.Snapshot offer.
type reader interface {
	Get(key []byte, ro *opt.ReadOptions) ([]byte, error)
	NewIterator(slice *util.Range, ro *opt.ReadOptions) iterator.Iterator
}

// get reads key: ok=false when it is absent.
func get(r reader, op string, key []byte) (value []byte, ok bool, err error) {
	v, err := r.Get(key, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, translate(op, err)
	}
	return v, true, nil
}

// scan calls fn for every key in [start, limit) in key order (limit nil: to
// the end of the key space). key and value are only valid during the call.
func scan(r reader, op string, start, limit []byte, fn func(key, value []byte) error) error {
	it := r.NewIterator(&util.Range{Start: start, Limit: limit}, nil)
	defer it.Release()
	for it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return translate(op, it.Error())
}
