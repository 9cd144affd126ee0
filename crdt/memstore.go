package crdt

import "sort"

// MemStore is an in-memory OpStore for tests and the simulation harness.
type MemStore struct {
	m map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

// Put stores raw under id.
func (s *MemStore) Put(id, raw []byte) error {
	s.m[string(id)] = append([]byte(nil), raw...)
	return nil
}

// Get returns the op stored under id.
func (s *MemStore) Get(id []byte) ([]byte, bool, error) {
	raw, ok := s.m[string(id)]
	return raw, ok, nil
}

// ForEach calls fn for every stored op in id order.
func (s *MemStore) ForEach(fn func(id, raw []byte) error) error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), s.m[k]); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of stored ops.
func (s *MemStore) Len() int { return len(s.m) }
