package node

// Linking a second device of the same user (DESIGN "Identity": the user key
// certifies devices).
//
// The flow, designed to copy no secret between devices:
//  1. the new device B runs a daemon; 'meshfold status' shows its device ID;
//  2. on a device A that holds the user key, 'meshfold device add <B's ID>'
//     certifies B for the user (a DeviceCert: the user key signs (user, B)),
//     records it with an AddDevice op in every folder A syncs, and prints a
//     device key: the certificate, A's addresses and the folders;
//  3. on B, 'meshfold device link <key> <dir>' checks the certificate names B
//     and verifies, saves it in B's home (LinkedCertFile), makes B act for
//     the user from then on, pulls each folder's log from A and syncs each
//     folder into <dir>/<name>.
// The key carries nothing secret: the certificate is only usable by the
// device it names. A linked device holds no user key, so it cannot certify
// further devices (do that from a device that holds it).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/logsync"
)

// LinkedCertFile, in the node home of a linked device, holds the user's
// certificate for it (JSON of crdt.DeviceCert; mode 0600).
const LinkedCertFile = "user.cert"

// Device key limits.
const (
	DeviceKeyPrefix     = "mfdev1-"
	MaxDeviceKeyLength  = 16 << 10 // characters of a device key
	MaxDeviceKeyFolders = 256      // folders named in one device key
	MaxDeviceKeyAddrs   = 32       // addresses in one device key
)

// Device linking errors.
var (
	ErrBadDeviceKey  = errors.New("not a valid device key")
	ErrNotThisDevice = errors.New("the device key certifies another device")
	ErrNoUserKey     = errors.New("this device holds no user key (it is a linked device); add devices from the one that holds it")
	ErrHasFolders    = errors.New("this device already syncs folders of its own user; link a fresh device")
	ErrAlreadyLinked = errors.New("this device is already linked to a user")
)

// DeviceKey is what 'device add' prints and 'device link' reads.
type DeviceKey struct {
	Cert    crdt.DeviceCert
	Addrs   []peer.AddrInfo
	Folders []LinkedFolder
}

// LinkedFolder is one folder a device key brings.
type LinkedFolder struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type deviceKeyJSON struct {
	User    string         `json:"u"`
	Device  string         `json:"d"`
	Sig     []byte         `json:"s"`
	Addrs   []string       `json:"a"`
	Folders []LinkedFolder `json:"f"`
}

// String encodes the key: DeviceKeyPrefix + base64url of its JSON.
func (k DeviceKey) String() string {
	j := deviceKeyJSON{User: k.Cert.User.String(), Device: k.Cert.Device.String(), Sig: k.Cert.Sig, Folders: k.Folders}
	for _, ai := range k.Addrs {
		full, _ := peer.AddrInfoToP2pAddrs(&ai)
		for _, a := range full {
			j.Addrs = append(j.Addrs, a.String())
		}
	}
	raw, _ := json.Marshal(j)
	return DeviceKeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
}

// ParseDeviceKey decodes and checks a device key: its certificate must
// verify. Every failure wraps ErrBadDeviceKey.
func ParseDeviceKey(s string) (DeviceKey, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxDeviceKeyLength {
		return DeviceKey{}, fmt.Errorf("%w: %d characters", ErrBadDeviceKey, len(s))
	}
	body, ok := strings.CutPrefix(s, DeviceKeyPrefix)
	if !ok {
		return DeviceKey{}, fmt.Errorf("%w: it does not start with %q", ErrBadDeviceKey, DeviceKeyPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return DeviceKey{}, fmt.Errorf("%w: not base64url", ErrBadDeviceKey)
	}
	var j deviceKeyJSON
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return DeviceKey{}, fmt.Errorf("%w: %v", ErrBadDeviceKey, err)
	}
	if len(j.Folders) > MaxDeviceKeyFolders || len(j.Addrs) > MaxDeviceKeyAddrs {
		return DeviceKey{}, fmt.Errorf("%w: too many folders or addresses", ErrBadDeviceKey)
	}
	var k DeviceKey
	if k.Cert.User, err = peer.Decode(j.User); err != nil {
		return DeviceKey{}, fmt.Errorf("%w: user: %v", ErrBadDeviceKey, err)
	}
	if k.Cert.Device, err = peer.Decode(j.Device); err != nil {
		return DeviceKey{}, fmt.Errorf("%w: device: %v", ErrBadDeviceKey, err)
	}
	k.Cert.Sig = j.Sig
	if err := k.Cert.Verify(); err != nil {
		return DeviceKey{}, fmt.Errorf("%w: the certificate does not verify: %v", ErrBadDeviceKey, err)
	}
	var addrs []ma.Multiaddr
	for _, s := range j.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return DeviceKey{}, fmt.Errorf("%w: address %q: %v", ErrBadDeviceKey, s, err)
		}
		addrs = append(addrs, a)
	}
	if k.Addrs, err = peer.AddrInfosFromP2pAddrs(addrs...); err != nil {
		return DeviceKey{}, fmt.Errorf("%w: addresses: %v", ErrBadDeviceKey, err)
	}
	for _, f := range j.Folders {
		if _, err := cid.Decode(f.ID); err != nil {
			return DeviceKey{}, fmt.Errorf("%w: folder %q: %v", ErrBadDeviceKey, f.ID, err)
		}
		if f.Name == "" || !filepath.IsLocal(f.Name) || strings.ContainsAny(f.Name, `/\`) {
			return DeviceKey{}, fmt.Errorf("%w: folder name %q", ErrBadDeviceKey, f.Name)
		}
	}
	k.Folders = j.Folders
	return k, nil
}

// loadLinkedCert reads LinkedCertFile from home if there is one; it must
// verify and name device id.
func loadLinkedCert(home string, id peer.ID) (*crdt.DeviceCert, error) {
	raw, err := os.ReadFile(filepath.Join(home, LinkedCertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c crdt.DeviceCert
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", LinkedCertFile, err)
	}
	if err := c.Verify(); err != nil || c.Device != id {
		return nil, fmt.Errorf("%s does not certify this device (%v)", LinkedCertFile, err)
	}
	return &c, nil
}

// AddDevice certifies device dev for this device's user, records it in every
// folder this device syncs, and returns the key the new device links with.
func (n *Node) AddDevice(dev peer.ID) (DeviceKey, error) {
	if n.linked.Load() != nil {
		return DeviceKey{}, ErrNoUserKey
	}
	if dev == n.id {
		return DeviceKey{}, errors.New("that is this device's own ID; run 'device add' with the new device's ID")
	}
	cert, err := crdt.CertifyDevice(n.userKey, dev)
	if err != nil {
		return DeviceKey{}, err
	}
	key := DeviceKey{Cert: cert, Addrs: []peer.AddrInfo{n.AddrInfo()}}
	n.mu.Lock()
	folders := make([]*Folder, 0, len(n.folders))
	for _, f := range n.folders {
		folders = append(folders, f)
	}
	n.mu.Unlock()
	for _, f := range folders {
		f.logMu.Lock()
		u, live := f.rlog.DeviceUser(dev)
		f.logMu.Unlock()
		if !live || u != cert.User {
			if _, err := f.appendOp("adding the device to folder "+shortFolder(f.id), crdt.AddDevice{Cert: cert}); err != nil {
				return DeviceKey{}, err
			}
		}
		key.Folders = append(key.Folders, LinkedFolder{ID: f.id, Name: filepath.Base(f.root)})
	}
	return key, nil
}

// LinkDevice makes this device act for the user the key certifies it for
// and syncs the key's folders into base/<name>, pulling each folder's log
// from the device that made the key.
func (n *Node) LinkDevice(ctx context.Context, key DeviceKey, base string) ([]*Folder, error) {
	if key.Cert.Device != n.id {
		return nil, ErrNotThisDevice
	}
	if c := n.linked.Load(); c != nil && c.User != key.Cert.User {
		return nil, ErrAlreadyLinked
	}
	n.mu.Lock()
	own := len(n.folders)
	n.mu.Unlock()
	if n.linked.Load() == nil && own > 0 {
		return nil, ErrHasFolders
	}
	raw, _ := json.Marshal(key.Cert)
	if err := writeFileAtomic(filepath.Join(n.cfg.Home, LinkedCertFile), raw, 0o600); err != nil {
		return nil, err
	}
	n.linked.Store(&key.Cert)
	n.log.Info("this device now acts for the user", "user", ShortID(key.Cert.User))
	var out []*Folder
	for _, lf := range key.Folders {
		if f, ok := n.Folder(lf.ID); ok {
			out = append(out, f)
			continue
		}
		ops, err := n.fetchLog(ctx, key.Addrs, lf.ID)
		if err != nil {
			return out, fmt.Errorf("folder %s: %w", lf.Name, err)
		}
		f, err := n.JoinFolder(filepath.Join(base, lf.Name), ops)
		if err != nil {
			return out, fmt.Errorf("folder %s: %w", lf.Name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// fetchLog pulls the whole log of folder from the first of addrs that
// serves it (genesis first).
func (n *Node) fetchLog(ctx context.Context, addrs []peer.AddrInfo, folder string) ([][]byte, error) {
	var lastErr error = ErrNoMember
	for _, ai := range addrs {
		cctx, cancel := context.WithTimeout(ctx, dialTimeout)
		err := n.host.Connect(cctx, ai)
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("%w: %v", ErrNoMember, err)
			continue
		}
		seen := map[string]bool{}
		var genesis []byte
		var rest [][]byte
		pctx, cancel := context.WithTimeout(ctx, syncTimeout)
		_, err = logsync.Open(pctx, n.host, ai.ID, folder, nil, logsync.PullFuncs{
			Have: func(c cid.Cid) bool { return seen[c.KeyString()] },
			Parents: func(raw []byte) ([]cid.Cid, error) {
				op, err := crdt.DecodeOp(raw)
				if err != nil {
					return nil, err
				}
				return op.Parents, nil
			},
			Deliver: func(c cid.Cid, raw []byte) error {
				seen[c.KeyString()] = true
				if c.String() == folder {
					genesis = raw
				} else {
					rest = append(rest, raw)
				}
				return nil
			},
		})
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		if genesis == nil {
			lastErr = errors.New("the device sent no genesis op")
			continue
		}
		return append([][]byte{genesis}, rest...), nil
	}
	return nil, lastErr
}
