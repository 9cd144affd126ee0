package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/links"
)

// gatewayServer serves n's gateway on a real loopback listener, with a
// client bucket large enough for a test's requests (the limiter has its own
// test).
func gatewayServer(t *testing.T, n *Node) *httptest.Server {
	t.Helper()
	g := n.NewGateway()
	g.lim = newClientLimiter(rate.Inf, 1)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv
}

type gwAnswer struct {
	code int
	body string
	hdr  http.Header
}

// fetch does one request: a POST of the form password when password != "".
func fetch(t *testing.T, method, u, password string, hdr map[string]string) gwAnswer {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"password": {password}}.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return gwAnswer{code: resp.StatusCode, body: string(b), hdr: resp.Header}
}

func (a gwAnswer) is(code int, contains string) error {
	if a.code != code || !strings.Contains(a.body, contains) {
		return fmt.Errorf("got %d %q, want %d containing %q", a.code, a.body, code, contains)
	}
	return nil
}

// TestGatewayRefusals: every download through the gateway of a node holding
// the folder goes through OpenLink: the page and the file for a good link,
// and 403/404/410/429 for a missing or wrong password, a suspended, expired,
// revoked, used-up or unknown link, and too many wrong passwords.
func TestGatewayRefusals(t *testing.T) {
	a := testNode(t, "a")
	dir := t.TempDir()
	content := randomBytes(5, 600<<10)
	os.WriteFile(filepath.Join(dir, "report.bin"), content, 0o644)
	f, err := a.CreateFolder(dir, "shared")
	if err != nil {
		t.Fatal(err)
	}
	srv := gatewayServer(t, a)
	ctx := context.Background()
	mk := func(opt LinkOptions) LinkInfo {
		li, err := a.CreateLink(ctx, filepath.Join(dir, "report.bin"), opt)
		if err != nil {
			t.Fatal(err)
		}
		return li
	}
	check := func(what string, got gwAnswer, code int, contains string) {
		t.Helper()
		if err := got.is(code, contains); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	open := mk(LinkOptions{MaxDownloads: 1})
	if head := fetch(t, "HEAD", srv.URL+"/l/"+open.Token+"/file", "", nil); head.code != 405 {
		t.Fatalf("HEAD of the file: %d (a HEAD must not use up a download)", head.code)
	}
	page := fetch(t, "GET", srv.URL+"/l/"+open.Token, "", nil)
	check("page", page, 200, "report.bin")
	check("page size", page, 200, "600.0 KiB")
	if strings.Contains(page.body, `type="password"`) {
		t.Fatal("a page without a password asks for one")
	}
	got := fetch(t, "GET", srv.URL+"/l/"+open.Token+"/file", "", nil)
	if got.code != 200 || got.body != string(content) || !strings.Contains(got.hdr.Get("Content-Disposition"), `filename=report.bin`) {
		t.Fatalf("download: %d, %d bytes, %q", got.code, len(got.body), got.hdr.Get("Content-Disposition"))
	}
	eventually(t, "the download recorded", func() error {
		if l, _ := f.linkInfo(crdt.LinkID(mustToken(t, open.Token).Link)); l.State != LinkUsedUp {
			return errors.New(l.State)
		}
		return nil
	})
	check("used up", fetch(t, "GET", srv.URL+"/l/"+open.Token+"/file", "", nil), 410, links.ErrUsedUp.Error())
	check("used-up page", fetch(t, "GET", srv.URL+"/l/"+open.Token, "", map[string]string{"Accept": "text/html"}), 410, "download limit is reached</p>")

	pw := mk(LinkOptions{Password: "s3cret"})
	page = fetch(t, "GET", srv.URL+"/l/"+pw.Token, "", nil)
	check("password page", page, 200, `type="password"`)
	check("no password", fetch(t, "GET", srv.URL+"/l/"+pw.Token+"/file", "", nil), 403, ErrNoPassword.Error())
	check("wrong password", fetch(t, "POST", srv.URL+"/l/"+pw.Token+"/file", "guess", nil), 403, links.ErrPassword.Error())
	got = fetch(t, "POST", srv.URL+"/l/"+pw.Token+"/file", "s3cret", nil)
	if got.code != 200 || got.body != string(content) {
		t.Fatalf("password form: %d, %d bytes", got.code, len(got.body))
	}
	got = fetch(t, "GET", srv.URL+"/l/"+pw.Token+"/file", "", map[string]string{GatewayPasswordHeader: "s3cret"})
	if got.code != 200 || got.body != string(content) {
		t.Fatalf("password header: %d, %d bytes", got.code, len(got.body))
	}
	for i := 1; i < MaxPasswordFailures; i++ {
		check("guess", fetch(t, "POST", srv.URL+"/l/"+pw.Token+"/file", "guess", nil), 403, links.ErrPassword.Error())
	}
	check("password rate limit", fetch(t, "POST", srv.URL+"/l/"+pw.Token+"/file", "s3cret", nil), 429, links.ErrRateLimited.Error())

	sus := mk(LinkOptions{})
	if _, err := a.SetLinkState(sus.ID, "suspend"); err != nil {
		t.Fatal(err)
	}
	check("suspended", fetch(t, "GET", srv.URL+"/l/"+sus.Token+"/file", "", nil), 403, links.ErrSuspended.Error())
	if _, err := a.SetLinkState(sus.ID, "revoke"); err != nil {
		t.Fatal(err)
	}
	check("revoked", fetch(t, "GET", srv.URL+"/l/"+sus.Token+"/file", "", nil), 410, links.ErrRevoked.Error())

	// An expiry in the past (recorded directly: the CLI only takes future ones).
	tok := mustToken(t, mk(LinkOptions{}).Token)
	tok.Secret = bytes.Repeat([]byte{7}, links.SecretLength)
	salt := bytes.Repeat([]byte{8}, crdt.LinkSaltLen)
	ver, _ := crdt.LinkVerifier(linkKDFInput(tok.Secret, ""), salt)
	op, err := f.AppendOp(crdt.CreateLink{Path: "report.bin", Role: crdt.RoleViewer, Salt: salt, Verifier: ver,
		ExpiresAt: time.Now().Add(-time.Minute).UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	tok.Link = op.ID.Bytes()
	check("expired", fetch(t, "GET", srv.URL+"/l/"+tok.String()+"/file", "", nil), 410, links.ErrExpired.Error())

	check("bad token", fetch(t, "GET", srv.URL+"/l/mflink1-NOTATOKEN/file", "", nil), 404, links.ErrBadToken.Error())
	check("bad token page", fetch(t, "GET", srv.URL+"/l/garbage", "", nil), 404, links.ErrBadToken.Error())
	long := strings.Repeat("a", links.MaxPasswordLength+1)
	check("long password", fetch(t, "POST", srv.URL+"/l/"+open.Token+"/file", long, nil), 400, "longer than")
}

func mustToken(t *testing.T, s string) links.Token {
	t.Helper()
	tok, err := links.ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGatewayMemberAndReplica: a relay that does not hold the folder fetches
// the file from the member device the token names (chunks verified) and
// passes its refusals on; once the relay is a replica it serves the link with
// the author offline.
func TestGatewayMemberAndReplica(t *testing.T) {
	a := openNode(t, filepath.Join(t.TempDir(), "a"))
	aClosed := false
	defer func() {
		if !aClosed {
			a.Close()
		}
	}()
	r := testNode(t, "relay", a.AddrInfo())
	dir := t.TempDir()
	content := randomBytes(6, 1<<20+123)
	os.WriteFile(filepath.Join(dir, "video.bin"), content, 0o644)
	fa, err := a.CreateFolder(dir, "shared")
	if err != nil {
		t.Fatal(err)
	}
	li, err := a.CreateLink(context.Background(), filepath.Join(dir, "video.bin"), LinkOptions{MaxDownloads: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := gatewayServer(t, r)
	if err := fetch(t, "GET", srv.URL+"/l/"+li.Token, "", nil).is(200, "video.bin"); err != nil {
		t.Fatalf("page through a member: %v", err)
	}
	got := fetch(t, "GET", srv.URL+"/l/"+li.Token+"/file", "", nil)
	if got.code != 200 || got.body != string(content) {
		t.Fatalf("download through a member: %d, %d bytes", got.code, len(got.body))
	}
	eventually(t, "the download recorded", func() error {
		if l, _ := fa.linkInfo(crdt.LinkID(mustToken(t, li.Token).Link)); l.Downloads != 1 {
			return fmt.Errorf("%d downloads", l.Downloads)
		}
		return nil
	})

	// The relay becomes a replica (a viewer device), then the author goes.
	fr := share(t, a, fa, r, crdt.RoleViewer, t.TempDir())
	eventually(t, "the file on the relay", fileIs(fr.root, "video.bin", content))
	eventually(t, "the link and its download on the relay", func() error {
		if l, err := fr.linkInfo(crdt.LinkID(mustToken(t, li.Token).Link)); err != nil || l.Downloads != 1 {
			return fmt.Errorf("%+v %v", l, err)
		}
		return nil
	})
	a.Close()
	aClosed = true
	got = fetch(t, "GET", srv.URL+"/l/"+li.Token+"/file", "", nil)
	if got.code != 200 || got.body != string(content) {
		t.Fatalf("download from the replica: %d, %d bytes", got.code, len(got.body))
	}
	eventually(t, "the replica recorded the download", func() error {
		if l, _ := fr.linkInfo(crdt.LinkID(mustToken(t, li.Token).Link)); l.State != LinkUsedUp {
			return errors.New(l.State)
		}
		return nil
	})
	if err := fetch(t, "GET", srv.URL+"/l/"+li.Token+"/file", "", nil).is(410, links.ErrUsedUp.Error()); err != nil {
		t.Fatalf("used up on the replica: %v", err)
	}
}

// TestGatewayMemberRefusal: a refusal by the member device (here a wrong
// password) reaches the HTTP client as the same status; with no device
// reachable the answer is 503.
func TestGatewayMemberRefusal(t *testing.T) {
	a := openNode(t, filepath.Join(t.TempDir(), "a"))
	r := testNode(t, "relay")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.txt"), []byte("x"), 0o644)
	if _, err := a.CreateFolder(dir, "shared"); err != nil {
		t.Fatal(err)
	}
	li, err := a.CreateLink(context.Background(), filepath.Join(dir, "x.txt"), LinkOptions{Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	srv := gatewayServer(t, r)
	if err := fetch(t, "POST", srv.URL+"/l/"+li.Token+"/file", "nope", nil).is(403, links.ErrPassword.Error()); err != nil {
		t.Fatalf("wrong password through a member: %v", err)
	}
	if err := fetch(t, "POST", srv.URL+"/l/"+li.Token+"/file", "pw", nil).is(200, "x"); err != nil {
		t.Fatalf("right password through a member: %v", err)
	}
	a.Close()
	if err := fetch(t, "POST", srv.URL+"/l/"+li.Token+"/file", "pw", nil).is(503, links.ErrUnavailable.Error()); err != nil {
		t.Fatalf("no device online: %v", err)
	}
}

// TestGatewayClientRateLimit: one client address gets GatewayBurst requests
// at once, then GatewayRate per second; other addresses are not affected;
// the table of addresses is bounded.
func TestGatewayClientRateLimit(t *testing.T) {
	l := newClientLimiter(GatewayRate, GatewayBurst)
	now := time.Unix(1000, 0)
	for i := 0; i < GatewayBurst; i++ {
		if err := l.allow("198.51.100.1", now); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := l.allow("198.51.100.1", now); !errors.Is(err, errTooFast) {
		t.Fatalf("over the burst: %v", err)
	}
	if err := l.allow("198.51.100.2", now); err != nil {
		t.Fatalf("another client: %v", err)
	}
	if err := l.allow("198.51.100.1", now.Add(time.Second/GatewayRate)); err != nil {
		t.Fatalf("after a refill: %v", err)
	}
	for i := 0; len(l.clients) < GatewayMaxClients; i++ {
		l.allow(fmt.Sprintf("client-%d", i), now)
	}
	if err := l.allow("203.0.113.9", now); !errors.Is(err, errGatewayBusy) {
		t.Fatalf("table full: %v", err)
	}
	if err := l.allow("203.0.113.9", now.Add(gatewayClientIdle+time.Second)); err != nil {
		t.Fatalf("idle clients forgotten: %v", err)
	}

	// Over HTTP, with the real limits: a burst from one address gets 429.
	a := testNode(t, "a")
	srv := httptest.NewServer(a.NewGateway().Handler())
	defer srv.Close()
	codes := map[int]int{}
	for i := 0; i < GatewayBurst+10; i++ {
		ans := fetch(t, "GET", srv.URL+"/l/garbage", "", nil)
		codes[ans.code]++
		if ans.code == 429 && ans.hdr.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if codes[404] < GatewayBurst || codes[429] == 0 {
		t.Fatalf("codes %v", codes)
	}
}
