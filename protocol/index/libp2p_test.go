package index

import (
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/testhosts"
	"github.com/meshfold/meshfold/protocol/internal/testkeys"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

// Two real libp2p hosts over TCP: the server withholds what the client may
// not read; a client that may read nothing of an unknown folder gets the
// server's error.
func TestIndexOverLibp2p(t *testing.T) {
	client, server := testhosts.Pair(t)
	key, id := testkeys.Key(t, 1)
	dev := store.DeviceID(id)
	src := memSource{dev: {version(t, key, "a.txt", 1, "a"), version(t, key, "secret/b.txt", 2, "b"), version(t, key, "c.txt", 3, "c")}}
	NewServer(src, accessFor{client.ID(): "secret/"}).Register(server)

	var paths []string
	end, err := Open(t.Context(), client, server.ID(), Request{Folder: testFolder, Device: dev}, nil, func(fi store.FileInfo) error {
		paths = append(paths, fi.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || paths[0] != "a.txt" || paths[1] != "c.txt" || end.Through != 3 {
		t.Fatalf("got %v, end %+v", paths, end)
	}
	_, err = Open(t.Context(), client, server.ID(), Request{Folder: "nope", Device: dev}, nil, func(store.FileInfo) error { return nil })
	if !errors.Is(err, wire.ErrNotFound) {
		t.Fatalf("unknown folder: %v", err)
	}
}

// accessFor denies each peer the paths under its prefix.
type accessFor map[peer.ID]string

func (a accessFor) CanRead(_ string, p peer.ID, path string) bool {
	return denyPrefix(a[p]).CanRead("", p, path)
}
