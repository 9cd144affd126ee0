package crdt

import (
	"crypto/subtle"
	"errors"

	"golang.org/x/crypto/argon2"
)

// Parameters of the memory-hard KDF (Argon2id) that turns a share link's
// password into the verifier stored in the log. They are part of the format:
// a verifier made with other parameters never matches.
const (
	LinkKDFTime    = 2
	LinkKDFMemory  = 19 * 1024 // KiB (OWASP's Argon2id floor)
	LinkKDFThreads = 1
	LinkKDFKeyLen  = 32
	LinkSaltLen    = 16
)

// ErrBadSalt is returned for a salt of the wrong length.
var ErrBadSalt = errors.New("crdt: link salt must be 16 bytes")

// LinkVerifier derives the verifier of a link password with Argon2id. The
// salt comes from the caller (crypto/rand at the edge; the package reads no
// randomness itself).
func LinkVerifier(password string, salt []byte) ([]byte, error) {
	if len(salt) != LinkSaltLen {
		return nil, ErrBadSalt
	}
	return argon2.IDKey([]byte(password), salt, LinkKDFTime, LinkKDFMemory, LinkKDFThreads, LinkKDFKeyLen), nil
}

// CheckPassword reports whether password opens the link. A link without a
// verifier needs no password.
func (k Link) CheckPassword(password string) bool {
	if len(k.Verifier) == 0 {
		return true
	}
	v, err := LinkVerifier(password, k.Salt)
	return err == nil && subtle.ConstantTimeCompare(v, k.Verifier) == 1
}
