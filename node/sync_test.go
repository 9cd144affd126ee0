package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/chunks"
	"github.com/meshfold/meshfold/protocol/index"
	"github.com/meshfold/meshfold/protocol/join"
	"github.com/meshfold/meshfold/protocol/logsync"
	"github.com/meshfold/meshfold/store"
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

// share invites b's user with role on fa's folder and has b join into dir
// through the real invitation handshake.
func share(t *testing.T, a *Node, fa *Folder, b *Node, role crdt.Role, dir string) *Folder {
	t.Helper()
	key, err := a.Invite(fa.ID(), InviteOptions{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := join.ParseKey(key.String())
	if err != nil {
		t.Fatal(err)
	}
	fb, err := b.Join(context.Background(), parsed, dir)
	if err != nil {
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
	share(t, a, fa, b, crdt.RoleEditor, dirB)

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

func TestJoinRefusals(t *testing.T) {
	a := testNode(t, "a")
	fa, err := a.CreateFolder(t.TempDir(), "team")
	if err != nil {
		t.Fatal(err)
	}
	key, err := a.Invite(fa.ID(), InviteOptions{Role: crdt.RoleViewer, Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	text := key.String()
	tampered := text[:len(text)-3] + "aaa"
	if text[len(text)-3:] == "aaa" {
		tampered = text[:len(text)-3] + "bbb"
	}
	if _, err := join.ParseKey(tampered); !errors.Is(err, join.ErrBadKey) {
		t.Fatalf("tampered key: %v", err)
	}
	if _, err := join.ParseKey("hello"); !errors.Is(err, join.ErrBadKey) {
		t.Fatalf("garbage key: %v", err)
	}
	b := testNode(t, "b")
	if _, err := b.Join(context.Background(), key, t.TempDir()); err != nil {
		t.Fatalf("first use: %v", err)
	}
	c := testNode(t, "c")
	if _, err := c.Join(context.Background(), key, t.TempDir()); err == nil || !strings.Contains(err.Error(), ErrInviteUnknown.Error()) {
		t.Fatalf("second use of a single-use invitation: %v", err)
	}
	expired, err := a.Invite(fa.ID(), InviteOptions{Role: crdt.RoleViewer, Expires: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	d := testNode(t, "d")
	if _, err := d.Join(context.Background(), expired, t.TempDir()); err == nil || !strings.Contains(err.Error(), ErrInviteExpired.Error()) {
		t.Fatalf("expired invitation: %v", err)
	}
	// A device that is not a member gets no log through log sync either.
	if a.IsMember(fa.ID(), d.ID()) || !a.IsMember(fa.ID(), b.ID()) {
		t.Fatal("membership after joins is wrong")
	}
}

// TestNonMemberGetsNothing: a device that is not a member connects directly
// and asks for the log, index entries and chunks: every answer is a refusal.
func TestNonMemberGetsNothing(t *testing.T) {
	a := testNode(t, "a")
	dir := t.TempDir()
	content := randomBytes(11, 1<<20)
	os.WriteFile(filepath.Join(dir, "secret.bin"), content, 0o644)
	fa, err := a.CreateFolder(dir, "private")
	if err != nil {
		t.Fatal(err)
	}
	var fi store.FileInfo
	eventually(t, "the signed index entry", func() error {
		var ok bool
		fi, ok, err = fa.idx.Get("secret.bin")
		if err != nil || !ok || len(fi.Signature) == 0 {
			return fmt.Errorf("not signed yet (%v)", err)
		}
		return nil
	})
	x := testNode(t, "outsider", a.AddrInfo())
	ctx := context.Background()
	if err := x.Host().Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	got := 0
	_, err = index.Open(ctx, x.Host(), a.ID(), index.Request{Folder: fa.ID(), Device: store.DeviceID(a.ID())}, nil, func(store.FileInfo) error {
		got++
		return nil
	})
	if got != 0 {
		t.Fatalf("a non-member received %d index entries (err %v)", got, err)
	}
	var cids []cid.Cid
	for _, c := range fi.Chunks {
		cids = append(cids, c.CID)
	}
	delivered := 0
	_, err = chunks.Fetch(ctx, chunks.FetchOptions{Folder: fa.ID(), Open: chunks.OpenWith(x.Host())}, cids, []peer.ID{a.ID()},
		func(cid.Cid, []byte) error { delivered++; return nil })
	if delivered != 0 || err == nil {
		t.Fatalf("a non-member received %d chunks (err %v)", delivered, err)
	}
	n, err := logsync.Open(ctx, x.Host(), a.ID(), fa.ID(), nil, logsync.PullFuncs{
		Have:    func(cid.Cid) bool { return false },
		Parents: func([]byte) ([]cid.Cid, error) { return nil, nil },
		Deliver: func(cid.Cid, []byte) error { return nil },
	})
	if n != 0 || err == nil {
		t.Fatalf("a non-member pulled %d log ops (err %v)", n, err)
	}
}

// corruptChunks serves every chunk with one byte flipped, and counts.
type corruptChunks struct {
	n      *Node
	served atomic.Int64
}

func (c *corruptChunks) ReadChunk(folder string, id cid.Cid, allowed func(string) bool) ([]byte, error) {
	data, err := c.n.ReadChunk(folder, id, allowed)
	if err != nil {
		return nil, err
	}
	c.served.Add(1)
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0x40
	return bad, nil
}

// TestCorruptPeerCannotPoisonTheFolder: one member serves corrupted chunks;
// the download completes from the honest member and no corrupt byte lands.
func TestCorruptPeerCannotPoisonTheFolder(t *testing.T) {
	a := testNode(t, "honest")
	e := testNode(t, "evil", a.AddrInfo())
	dirA, dirE, dirB := t.TempDir(), t.TempDir(), t.TempDir()
	content := randomBytes(12, 24<<20)
	os.WriteFile(filepath.Join(dirA, "data.bin"), content, 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	share(t, a, fa, e, crdt.RoleEditor, dirE)
	eventually(t, "the evil member's copy", fileIs(dirE, "data.bin", content))
	evil := &corruptChunks{n: e}
	chunks.NewServer(evil, e).Register(e.Host()) // replaces e's honest chunk server

	b := testNode(t, "b", a.AddrInfo(), e.AddrInfo())
	share(t, a, fa, b, crdt.RoleViewer, dirB)
	eventually(t, "the download from the honest member", fileIs(dirB, "data.bin", content))
	if evil.served.Load() == 0 {
		t.Fatal("the evil member was never asked for a chunk: the test proved nothing")
	}
}
