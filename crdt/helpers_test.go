package crdt

import (
	"crypto/ed25519"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// actor is a test user with one device, with keys derived from a seed.
type actor struct {
	name string
	user crypto.PrivKey
	dev  crypto.PrivKey
	uid  UserID
	did  peer.ID
	cert DeviceCert
}

func seededKey(tb testing.TB, seed string) crypto.PrivKey {
	tb.Helper()
	var s [ed25519.SeedSize]byte
	copy(s[:], seed)
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s[:]))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newActor(tb testing.TB, name string) *actor {
	tb.Helper()
	a := &actor{name: name, user: seededKey(tb, "user:"+name), dev: seededKey(tb, "dev:"+name)}
	var err error
	if a.uid, err = peer.IDFromPrivateKey(a.user); err != nil {
		tb.Fatal(err)
	}
	if a.did, err = peer.IDFromPrivateKey(a.dev); err != nil {
		tb.Fatal(err)
	}
	if a.cert, err = CertifyDevice(a.user, a.did); err != nil {
		tb.Fatal(err)
	}
	return a
}

// secondDevice gives a another device of the same user.
func (a *actor) secondDevice(tb testing.TB, name string) *actor {
	tb.Helper()
	b := *a
	b.name = a.name + "/" + name
	b.dev = seededKey(tb, "dev:"+b.name)
	var err error
	if b.did, err = peer.IDFromPrivateKey(b.dev); err != nil {
		tb.Fatal(err)
	}
	if b.cert, err = CertifyDevice(a.user, b.did); err != nil {
		tb.Fatal(err)
	}
	return &b
}

func newTestFolder(tb testing.TB, founders ...*actor) *Log {
	tb.Helper()
	g := Genesis{Name: "share", Nonce: []byte("test")}
	for _, f := range founders {
		g.Founders = append(g.Founders, f.cert)
	}
	l, err := NewFolder(founders[0].dev, g, 1000, NewMemStore())
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// must appends and fails the test if the op is refused.
func must(tb testing.TB, l *Log, a *actor, b Body) *Op {
	tb.Helper()
	op, err := l.Append(a.dev, b, 1000)
	if err != nil {
		tb.Fatalf("%s: append %s: %v", a.name, b.Kind(), err)
	}
	return op
}

// refused appends and fails the test unless the op is refused.
func refused(tb testing.TB, l *Log, a *actor, b Body) error {
	tb.Helper()
	_, err := l.Append(a.dev, b, 1000)
	if err == nil {
		tb.Fatalf("%s: append %s: accepted, want refusal", a.name, b.Kind())
	}
	return err
}

// fork copies a log through its encoded ops (a second replica).
func fork(tb testing.TB, l *Log) *Log {
	tb.Helper()
	raws := l.OpsSince(nil)
	r, err := New(raws[0], NewMemStore())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := r.Merge(raws[1:]); err != nil {
		tb.Fatal(err)
	}
	return r
}

// sync merges everything each log has into the other.
func sync(tb testing.TB, logs ...*Log) {
	tb.Helper()
	for _, a := range logs {
		for _, b := range logs {
			if a != b {
				res, err := b.Merge(a.OpsSince(b.Heads()))
				if err != nil || len(res.Rejected) > 0 {
					tb.Fatalf("sync: %v %v", err, res.Rejected)
				}
			}
		}
	}
}

func mkdir(tb testing.TB, l *Log, a *actor, parent NodeID, name string) NodeID {
	tb.Helper()
	return RefOf(must(tb, l, a, CreateFolder{Parent: parent, Name: name}).ID)
}

func marshalPub(p crypto.PubKey) ([]byte, error) { return crypto.MarshalPublicKey(p) }
