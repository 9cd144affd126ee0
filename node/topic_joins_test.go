package node

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
)

// A device that comes back learns what its peers hold as soon as it joins the
// folder's topic, not at their next heartbeat: with an hour-long heartbeat, b
// restarted after a recorded a file while b was down still receives it within
// the test's deadline. Without the republication on join, b would wait for
// a's heartbeat (an hour here, DefaultHeartbeat in production).
func TestReturningPeerLearnsStateWithoutHeartbeat(t *testing.T) {
	open := func(name, home string, bootstrap ...peer.AddrInfo) *Node {
		t.Helper()
		n, err := Open(Config{
			Home:        home,
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			Bootstrap:   bootstrap,
			Heartbeat:   time.Hour,
			Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n
	}
	homeB := filepath.Join(t.TempDir(), "b")
	a := open("a", filepath.Join(t.TempDir(), "a"))
	defer a.Close()
	b := open("b", homeB, a.AddrInfo())
	dirA, dirB := t.TempDir(), t.TempDir()
	fa, err := a.CreateFolder(dirA, "joins")
	if err != nil {
		t.Fatal(err)
	}
	share(t, a, fa, b, crdt.RoleEditor, dirB)
	os.WriteFile(filepath.Join(dirA, "first.txt"), []byte("while b is up"), 0o644)
	eventually(t, "first.txt on b", fileIs(dirB, "first.txt", []byte("while b is up")))

	b.Close()
	os.WriteFile(filepath.Join(dirA, "second.txt"), []byte("while b is down"), 0o644)
	eventually(t, "second.txt signed (and so published) on a", func() error {
		fi, ok, err := fa.Index().Get("second.txt")
		if err != nil {
			return err
		}
		if !ok || len(fi.Signature) == 0 {
			return errors.New("not signed yet")
		}
		return nil
	})
	b = open("b", homeB, a.AddrInfo())
	defer b.Close()
	eventually(t, "second.txt on the returning b", fileIs(dirB, "second.txt", []byte("while b is down")))
}
