package node

import (
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/meshfold/meshfold/crdt"
)

func testDeviceKey(t testing.TB) DeviceKey {
	user, _, _ := crypto.GenerateEd25519Key(nil)
	devKey, _, _ := crypto.GenerateEd25519Key(nil)
	dev, _ := peer.IDFromPrivateKey(devKey)
	cert, err := crdt.CertifyDevice(user, dev)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4001")
	return DeviceKey{Cert: cert, Addrs: []peer.AddrInfo{{ID: dev, Addrs: []ma.Multiaddr{a}}},
		Folders: []LinkedFolder{{ID: "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", Name: "work"}}}
}

func TestDeviceKeyRoundTrip(t *testing.T) {
	k := testDeviceKey(t)
	got, err := ParseDeviceKey(" " + k.String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Cert.User != k.Cert.User || got.Cert.Device != k.Cert.Device || len(got.Addrs) != 1 ||
		got.Addrs[0].ID != k.Addrs[0].ID || len(got.Folders) != 1 || got.Folders[0] != k.Folders[0] {
		t.Fatalf("round trip: %+v, want %+v", got, k)
	}
}

// deviceKeyCases are bad keys, each refused with ErrBadDeviceKey; they also
// seed the fuzz test.
func deviceKeyCases(t testing.TB) map[string]string {
	k := testDeviceKey(t)
	good := k.String()
	tampered := k
	tampered.Cert.Sig = append([]byte(nil), k.Cert.Sig...)
	tampered.Cert.Sig[0] ^= 1
	other := testDeviceKey(t)
	swapped := k
	swapped.Cert.Device = other.Cert.Device
	badName := k
	badName.Folders = []LinkedFolder{{ID: k.Folders[0].ID, Name: "../escape"}}
	badFolder := k
	badFolder.Folders = []LinkedFolder{{ID: "not-a-cid", Name: "x"}}
	return map[string]string{
		"empty":          "",
		"no prefix":      strings.TrimPrefix(good, DeviceKeyPrefix),
		"not base64":     DeviceKeyPrefix + "!!!",
		"not json":       DeviceKeyPrefix + "bm90IGpzb24",
		"truncated":      good[:len(good)-10],
		"tampered sig":   tampered.String(),
		"other device":   swapped.String(),
		"escaping name":  badName.String(),
		"bad folder ID":  badFolder.String(),
		"too long":       DeviceKeyPrefix + strings.Repeat("A", MaxDeviceKeyLength),
		"unknown fields": DeviceKeyPrefix + "eyJ4IjoxfQ",
	}
}

func TestParseDeviceKeyRefusesBadKeys(t *testing.T) {
	for name, s := range deviceKeyCases(t) {
		if _, err := ParseDeviceKey(s); !errors.Is(err, ErrBadDeviceKey) {
			t.Errorf("%s: %v, want ErrBadDeviceKey", name, err)
		}
	}
}

func FuzzParseDeviceKey(f *testing.F) {
	f.Add(testDeviceKey(f).String())
	for _, s := range deviceKeyCases(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseDeviceKey(s)
		if err != nil {
			if !errors.Is(err, ErrBadDeviceKey) {
				t.Fatalf("error without ErrBadDeviceKey: %v", err)
			}
			return
		}
		if k.Cert.Verify() != nil {
			t.Fatal("a key with a bad certificate parsed")
		}
		if _, err := ParseDeviceKey(k.String()); err != nil {
			t.Fatalf("a parsed key does not parse again: %v", err)
		}
	})
}
