package store

// The raw op store of a folder's rights log. crdt/ defines and validates ops;
// store keeps their bytes under their IDs and hands them back, nothing more
// (store must not import crdt).
//
// Record: version byte, then the op's bytes (the rest of the value).

import (
	"fmt"

	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Limits of the log store.
const (
	// MaxLogOpIDLength bounds an op ID (a CIDv1 is about 36 bytes).
	MaxLogOpIDLength = 256
	// MaxLogOpSize bounds one stored op.
	MaxLogOpSize = 1 << 20
)

// LogStore keeps the raw ops of one folder's rights log. It is safe for
// concurrent use.
type LogStore struct {
	db  *DB
	id  string
	pfx []byte
	err error
}

// LogStore returns the op store of one folder.
func (db *DB) LogStore(folderID string) *LogStore {
	s := &LogStore{db: db, id: folderID, pfx: folderPrefix(ksLogOp, folderID)}
	if folderID == "" || len(folderID) > MaxFolderIDLength {
		s.err = fmt.Errorf("%w: length %d not in 1..%d", ErrInvalidFolder, len(folderID), MaxFolderIDLength)
	}
	return s
}

func (s *LogStore) key(id []byte) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if len(id) == 0 || len(id) > MaxLogOpIDLength {
		return nil, fmt.Errorf("store: log op ID length %d not in 1..%d", len(id), MaxLogOpIDLength)
	}
	k := make([]byte, 0, len(s.pfx)+len(id))
	return append(append(k, s.pfx...), id...), nil
}

// Put stores raw under id, replacing what was there, with a synced write.
func (s *LogStore) Put(id []byte, raw []byte) error {
	k, err := s.key(id)
	if err != nil {
		return err
	}
	if len(raw) == 0 || len(raw) > MaxLogOpSize {
		return fmt.Errorf("store: log op size %d not in 1..%d", len(raw), MaxLogOpSize)
	}
	return translate("put log op", s.db.ldb.Put(k, encodeLogOp(raw), &opt.WriteOptions{Sync: true}))
}

// Get returns the op stored under id; ok is false if there is none.
func (s *LogStore) Get(id []byte) (raw []byte, ok bool, err error) {
	k, err := s.key(id)
	if err != nil {
		return nil, false, err
	}
	v, ok, err := get(s.db.ldb, "get log op", k)
	if err != nil || !ok {
		return nil, false, err
	}
	raw, err = decodeLogOp(v)
	if err != nil {
		return nil, false, fmt.Errorf("folder %q log op %x: %w", s.id, id, err)
	}
	return raw, true, nil
}

// Has reports whether an op is stored under id.
func (s *LogStore) Has(id []byte) (bool, error) {
	k, err := s.key(id)
	if err != nil {
		return false, err
	}
	ok, err := s.db.ldb.Has(k, nil)
	return ok, translate("has log op", err)
}

// ForEach calls fn with every stored op in bytewise ID order, from one
// consistent snapshot. id and raw are only valid during the call. An error
// from fn stops it and is returned as is.
func (s *LogStore) ForEach(fn func(id, raw []byte) error) error {
	if s.err != nil {
		return s.err
	}
	return scan(s.db.ldb, "log ops", s.pfx, prefixEnd(s.pfx), func(k, v []byte) error {
		id := k[len(s.pfx):]
		if len(id) == 0 || len(id) > MaxLogOpIDLength {
			return corruptf("folder %q: log op key with ID length %d", s.id, len(id))
		}
		raw, err := decodeLogOp(v)
		if err != nil {
			return fmt.Errorf("folder %q log op %x: %w", s.id, id, err)
		}
		return fn(id, raw)
	})
}

func encodeLogOp(raw []byte) []byte {
	return append([]byte{recordVersion}, raw...)
}

// decodeLogOp returns the op bytes of a stored record, aliasing it.
func decodeLogOp(b []byte) ([]byte, error) {
	d := decoder{b: b, what: "log op"}
	d.version()
	if d.err != nil {
		return nil, d.err
	}
	raw := b[1:]
	if len(raw) == 0 || len(raw) > MaxLogOpSize {
		return nil, corruptf("log op: size %d not in 1..%d", len(raw), MaxLogOpSize)
	}
	return raw, nil
}
