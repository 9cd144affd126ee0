package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/links"
	"github.com/meshfold/meshfold/store"
)

type memSink struct {
	begun int
	bytes.Buffer
}

func (s *memSink) Begin(links.Meta) error { s.begun++; s.Reset(); return nil }

func linkRequest(t *testing.T, token, password string) (links.Token, links.Request) {
	t.Helper()
	tok, err := links.ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	return tok, links.Request{Folder: tok.Folder.String(), Link: tok.Link, Secret: tok.Secret, Password: password}
}

// readAll opens a link and reads the whole file through the provider, as the
// servers do, completing the download.
func readAll(n *Node, req links.Request) ([]byte, error) {
	f, err := n.OpenLink(context.Background(), req, "test")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []byte
	for i := range f.Meta().Chunks {
		c, err := f.Chunk(i)
		if err != nil {
			return nil, err
		}
		out = append(out, c...)
	}
	return out, f.Complete()
}

// TestOpenLinkDecides: the node's one decision for every server: the file for
// the right secret and password; typed refusals for a wrong password (rate
// limited after MaxPasswordFailures), a used-up limit, a suspended, expired,
// revoked or unknown link; and a file outside every folder served from
// "My shares". GetLink downloads it over real libp2p.
func TestOpenLinkDecides(t *testing.T) {
	a := testNode(t, "a")
	dir := t.TempDir()
	content := randomBytes(3, 700<<10)
	os.WriteFile(filepath.Join(dir, "report.bin"), content, 0o644)
	f, err := a.CreateFolder(dir, "shared")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	li, err := a.CreateLink(ctx, filepath.Join(dir, "report.bin"), LinkOptions{Password: "pw", MaxDownloads: 1})
	if err != nil || li.State != LinkActive || !li.Mine || li.DownloadLimit != 1 {
		t.Fatalf("create %+v %v", li, err)
	}
	tok, req := linkRequest(t, li.Token, "pw")
	if !tok.Password || len(tok.Addrs) == 0 || tok.Addrs[0].ID != a.ID() {
		t.Fatalf("token %+v", tok)
	}
	wrongSecret := req
	wrongSecret.Secret = bytes.Repeat([]byte{1}, links.SecretLength)
	if _, err := readAll(a, wrongSecret); !errors.Is(err, links.ErrPassword) {
		t.Fatalf("wrong secret: %v", err)
	}
	var sink memSink
	m, err := GetLink(ctx, tok, "pw", &sink)
	if err != nil || !bytes.Equal(sink.Bytes(), content) || m.Name != "report.bin" || sink.begun != 1 {
		t.Fatalf("download: %v, %d bytes, %+v", err, sink.Len(), m)
	}
	eventually(t, "the download recorded", func() error {
		if l, _ := f.linkInfo(crdt.LinkID(tok.Link)); l.Downloads != 1 || l.State != LinkUsedUp {
			return errors.New(l.State)
		}
		return nil
	})
	if _, err := readAll(a, req); !errors.Is(err, links.ErrUsedUp) {
		t.Fatalf("used up: %v", err)
	}

	open, err := a.CreateLink(ctx, filepath.Join(dir, "report.bin"), LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, req = linkRequest(t, open.Token, "")
	for i := 0; i < MaxPasswordFailures; i++ {
		bad := req
		bad.Password = "guess"
		if _, err := readAll(a, bad); !errors.Is(err, links.ErrPassword) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := readAll(a, req); !errors.Is(err, links.ErrRateLimited) {
		t.Fatalf("after %d wrong passwords: %v", MaxPasswordFailures, err)
	}

	li2, err := a.CreateLink(ctx, filepath.Join(dir, "report.bin"), LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, req = linkRequest(t, li2.Token, "")
	if got, err := readAll(a, req); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("open link: %v", err)
	}
	if _, err := a.SetLinkState(li2.ID[len(li2.ID)-10:], "suspend"); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(a, req); !errors.Is(err, links.ErrSuspended) {
		t.Fatalf("suspended: %v", err)
	}
	if _, err := a.SetLinkState(li2.ID, "resume"); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(a, req); err != nil {
		t.Fatalf("resumed: %v", err)
	}
	if l, err := a.SetLinkState(li2.Token, "revoke"); err != nil || l.State != LinkRevoked {
		t.Fatalf("revoke %+v %v", l, err)
	}
	if _, err := readAll(a, req); !errors.Is(err, links.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if _, err := a.SetLinkState(li2.ID, "resume"); !errors.Is(err, ErrNoSuchLink) {
		t.Fatalf("resuming a revoked link: %v", err)
	}

	// An expiry in the past (recorded directly: the CLI only takes future ones).
	secret := bytes.Repeat([]byte{7}, links.SecretLength)
	salt := bytes.Repeat([]byte{8}, crdt.LinkSaltLen)
	ver, _ := crdt.LinkVerifier(linkKDFInput(secret, ""), salt)
	op, err := f.AppendOp(crdt.CreateLink{Path: "report.bin", Role: crdt.RoleViewer, Salt: salt, Verifier: ver,
		ExpiresAt: time.Now().Add(-time.Minute).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	expired := links.Request{Folder: f.ID(), Link: op.ID.Bytes(), Secret: secret}
	if _, err := readAll(a, expired); !errors.Is(err, links.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	unknown := expired
	unknown.Link = store.ChunkCID([]byte("nothing")).Bytes()
	if _, err := readAll(a, unknown); !errors.Is(err, links.ErrUnknownLink) {
		t.Fatalf("unknown: %v", err)
	}
	elsewhere := expired
	elsewhere.Folder = cid.NewCidV1(cid.Raw, op.ID.Hash()).String()
	if _, err := readAll(a, elsewhere); !errors.Is(err, links.ErrUnavailable) {
		t.Fatalf("another folder: %v", err)
	}

	// A file outside every folder goes through "My shares".
	outside := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(outside, []byte("loose notes"), 0o644)
	mine, err := a.CreateLink(ctx, outside, LinkOptions{Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := fileIs(filepath.Join(a.cfg.Home, MySharesName), "notes.txt", []byte("loose notes"))(); err != nil {
		t.Fatal(err)
	}
	_, req = linkRequest(t, mine.Token, "")
	if got, err := readAll(a, req); err != nil || string(got) != "loose notes" {
		t.Fatalf("My shares link: %q %v", got, err)
	}
	// The same file again reuses the copy; another file of that name gets a new one.
	if _, err := a.CreateLink(ctx, outside, LinkOptions{}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(other, []byte("other notes"), 0o644)
	if _, err := a.CreateLink(ctx, other, LinkOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := fileIs(filepath.Join(a.cfg.Home, MySharesName), "notes-2.txt", []byte("other notes"))(); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Links(false)); n != 7 {
		t.Fatalf("%d links listed", n)
	}
	if _, err := a.CreateLink(ctx, dir, LinkOptions{}); !errors.Is(err, ErrNotAFile) {
		t.Fatalf("a directory: %v", err)
	}
}

var _ io.Writer = (*memSink)(nil)
