package crdt

// MaxOpCacheOps bounds an OpCache; beyond it, ops are decoded and verified
// again instead of being remembered.
const MaxOpCacheOps = 1 << 20

// OpCache shares decoded and verified ops between the logs of one process
// that see the same ops (the simulated devices of one simulation world), so
// an op that reaches fifty logs has its signatures checked once. An op's ID
// is the hash of its bytes and decoding is a pure function of them, so a
// cached op is exactly what DecodeOp would return again; only ops that
// decoded without error are kept. Ops are never modified after decoding,
// so logs may share them. An OpCache is not safe for concurrent use.
type OpCache struct {
	ops map[string]*Op
}

// NewOpCache returns an empty cache.
func NewOpCache() *OpCache { return &OpCache{ops: map[string]*Op{}} }

// decode is DecodeOp through the cache (a nil cache decodes every time).
func (c *OpCache) decode(raw []byte) (*Op, error) {
	if c == nil || len(raw) > MaxOpSize {
		return DecodeOp(raw)
	}
	k := opCID(raw).KeyString()
	if op, ok := c.ops[k]; ok {
		return op, nil
	}
	op, err := DecodeOp(raw)
	if err == nil && len(c.ops) < MaxOpCacheOps {
		c.ops[k] = op
	}
	return op, err
}

// UseOpCache makes Merge decode through c (nil: no cache).
func (l *Log) UseOpCache(c *OpCache) { l.opCache = c }
