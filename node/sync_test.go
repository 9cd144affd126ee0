package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
)

// testNode opens and starts a real node on loopback in a temporary home.
func testNode(t *testing.T, name string, bootstrap ...peer.AddrInfo) *Node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
	n, err := Open(Config{
		Home:        filepath.Join(t.TempDir(), name),
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
		Bootstrap:   bootstrap,
		Heartbeat:   time.Second,
		Logger:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// share grants b's user role on fa's folder and starts b syncing it in dir.
// The ops travel out of band here, as the invitation handshake will carry them.
func share(t *testing.T, fa *Folder, b *Node, role crdt.Role, dir string) *Folder {
	t.Helper()
	if _, err := fa.AppendOp(crdt.Grant{Principal: crdt.UserPrincipal(b.User()), Role: role}); err != nil {
		t.Fatal(err)
	}
	fb, err := b.JoinFolder(dir, fa.Ops())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := b.DeviceCert()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fb.AppendOp(crdt.AddDevice{Cert: cert}); err != nil {
		t.Fatal(err)
	}
	if _, err := fa.MergeOps(fb.Ops()); err != nil {
		t.Fatal(err)
	}
	return fb
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

func fileIs(dir, p string, want []byte) func() error {
	return func() error {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s has %d bytes, want %d", p, len(got), len(want))
		}
		return nil
	}
}

func gone(dir, p string) func() error {
	return func() error {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			return fmt.Errorf("%s still exists", p)
		}
		return nil
	}
}

func TestTwoNodesSyncBothWays(t *testing.T) {
	a := testNode(t, "a")
	b := testNode(t, "b", a.AddrInfo())
	dirA, dirB := t.TempDir(), t.TempDir()
	big := randomBytes(9, 3<<20)
	os.WriteFile(filepath.Join(dirA, "hello.txt"), []byte("hello from a"), 0o644)
	os.MkdirAll(filepath.Join(dirA, "docs"), 0o755)
	os.WriteFile(filepath.Join(dirA, "docs", "big.bin"), big, 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	share(t, fa, b, crdt.RoleEditor, dirB)

	eventually(t, "a's files on b", func() error {
		if err := fileIs(dirB, "hello.txt", []byte("hello from a"))(); err != nil {
			return err
		}
		return fileIs(dirB, "docs/big.bin", big)()
	})
	os.WriteFile(filepath.Join(dirB, "from-b.txt"), []byte("b wrote this"), 0o644)
	eventually(t, "b's new file on a", fileIs(dirA, "from-b.txt", []byte("b wrote this")))
	os.WriteFile(filepath.Join(dirA, "hello.txt"), []byte("hello again, edited on a"), 0o644)
	eventually(t, "a's edit on b", fileIs(dirB, "hello.txt", []byte("hello again, edited on a")))
	os.Rename(filepath.Join(dirB, "docs", "big.bin"), filepath.Join(dirB, "docs", "renamed.bin"))
	eventually(t, "b's rename on a", func() error {
		if err := gone(dirA, "docs/big.bin")(); err != nil {
			return err
		}
		return fileIs(dirA, "docs/renamed.bin", big)()
	})
	os.Remove(filepath.Join(dirA, "from-b.txt"))
	eventually(t, "a's delete on b", gone(dirB, "from-b.txt"))
}

func TestFoldersResumeAfterRestart(t *testing.T) {
	home := filepath.Join(t.TempDir(), "a")
	dir := t.TempDir()
	open := func() *Node {
		n, err := Open(Config{Home: home, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Heartbeat: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := open()
	f, err := a.CreateFolder(dir, "resume")
	if err != nil {
		t.Fatal(err)
	}
	id := f.ID()
	if _, err := Open(Config{Home: home}); !errors.Is(err, ErrHomeInUse) {
		t.Fatalf("a second node on the same home: %v, want ErrHomeInUse", err)
	}
	a.Close()
	a = open()
	defer a.Close()
	if _, ok := a.Folder(id); !ok {
		t.Fatal("folder not resumed after restart")
	}
}
