package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Key files inside the node home.
const (
	IdentityFile = "device.key" // this device's libp2p key: its device ID
	UserKeyFile  = "user.key"   // the user's identity key, which certifies devices
)

// ErrIdentityPermissions: a key file is readable by other users.
var ErrIdentityPermissions = errors.New("key file is readable by other users (want mode 0600)")

// LoadOrCreateIdentity returns the device's Ed25519 key from home, creating it
// (mode 0600, home 0700) on first start. created reports a first start.
func LoadOrCreateIdentity(home string) (key crypto.PrivKey, created bool, err error) {
	return loadOrCreateKey(home, IdentityFile)
}

// LoadOrCreateUserKey returns the user's identity key from home, creating it on
// first start. A second device of the same user gets a copy of it.
func LoadOrCreateUserKey(home string) (key crypto.PrivKey, created bool, err error) {
	return loadOrCreateKey(home, UserKeyFile)
}

func loadOrCreateKey(home, name string) (key crypto.PrivKey, created bool, err error) {
	p := filepath.Join(home, name)
	raw, err := os.ReadFile(p)
	switch {
	case err == nil:
		st, err := os.Stat(p)
		if err != nil {
			return nil, false, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("%s: %w", p, ErrIdentityPermissions)
		}
		key, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, false, fmt.Errorf("key %s is corrupt: %w", p, err)
		}
		if key.Type() != crypto.Ed25519 {
			return nil, false, fmt.Errorf("key %s is %v, want Ed25519", p, key.Type())
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("reading key: %w", err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, false, fmt.Errorf("creating node home: %w", err)
	}
	key, _, err = crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, false, err
	}
	raw, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	// Write to a temporary name and rename, so a crash never leaves a torn key.
	tmp, err := os.CreateTemp(home, "."+name+".*")
	if err != nil {
		return nil, false, fmt.Errorf("writing key %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Close(); err != nil {
		return nil, false, err
	}
	if err := os.Link(tmp.Name(), p); err != nil { // fails if another process created it meanwhile
		return nil, false, fmt.Errorf("writing key %s: %w", p, err)
	}
	return key, true, nil
}

// DeviceIDOf returns the device ID (libp2p peer ID) of a key.
func DeviceIDOf(key crypto.PrivKey) peer.ID {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		panic(fmt.Sprintf("peer ID of an Ed25519 key: %v", err)) // cannot fail for Ed25519
	}
	return id
}
