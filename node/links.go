package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/links"
	"github.com/meshfold/meshfold/store"
)

// Share-link settings.
const (
	// MySharesName is the folder, in the node home, that files shared by link
	// from outside every synced folder are copied into. It is a meshfold
	// folder founded by this device's user, so it syncs to the user's own
	// devices (those that join it), which can then serve the links too.
	MySharesName = "My shares"
	// MaxPasswordFailures wrong passwords within PasswordWindow make a link
	// refuse further attempts until the window has passed.
	MaxPasswordFailures = 5
	PasswordWindow      = time.Minute
	// maxPasswordChecks bounds concurrent password checks (each Argon2id
	// run takes crdt.LinkKDFMemory KiB).
	maxPasswordChecks = 2
	// linkIndexWait bounds how long creating a link waits for a newly copied
	// (or not yet scanned) file to be indexed, so the link serves at once.
	linkIndexWait = 30 * time.Second
	// MaxLinkExpiry bounds a link's lifetime.
	MaxLinkExpiry = 10 * 365 * 24 * time.Hour
)

// Link states as reported.
const (
	LinkActive    = "active"
	LinkSuspended = "suspended"
	LinkRevoked   = "revoked"
	LinkExpired   = "expired"
	LinkUsedUp    = "used up"
)

// Share-link errors (refusals of a download are the protocol/links sentinels).
var (
	ErrNoSuchLink     = errors.New("no such link")
	ErrNotAFile       = errors.New("only a file can be shared by link")
	ErrMayNotLink     = errors.New("only members who manage access here may create or change share links")
	ErrNotIndexedYet  = errors.New("the file is not indexed yet; try again in a moment")
	ErrLinkExpiryLong = fmt.Errorf("a link expires after at most %d days", int(MaxLinkExpiry.Hours()/24))
)

// LinkOptions are the settings of a new share link.
type LinkOptions struct {
	Expires      time.Duration // 0: never
	Password     string        // "": none
	MaxDownloads uint32        // 0: unlimited
}

// LinkInfo is a share link as reported.
type LinkInfo struct {
	ID            string    `json:"id"`
	Folder        string    `json:"folder"`
	Path          string    `json:"path"`           // inside the folder
	File          string    `json:"file,omitempty"` // on this device's disk
	State         string    `json:"state"`          // active, suspended, revoked, expired, used up
	Creator       string    `json:"creator"`
	Mine          bool      `json:"mine"`
	Password      bool      `json:"password"`
	Downloads     uint32    `json:"downloads"`
	DownloadLimit uint32    `json:"download_limit,omitempty"` // 0: unlimited
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	Token         string    `json:"token,omitempty"` // only when just created
}

// linkGuard is the node's per-link state for serving: in-flight downloads
// (so one device never starts more than the limit allows) and recent wrong
// passwords.
type linkGuard struct {
	mu       sync.Mutex
	inflight map[crdt.LinkID]int
	failures map[crdt.LinkID][]time.Time
	checks   chan struct{}
}

func (n *Node) linkGuard() *linkGuard {
	n.linkGuardOnce.Do(func() {
		n.linkGuardV = &linkGuard{inflight: map[crdt.LinkID]int{}, failures: map[crdt.LinkID][]time.Time{},
			checks: make(chan struct{}, maxPasswordChecks)}
	})
	return n.linkGuardV
}

// linkKDFInput is what the link verifier in the log is made from: the
// token's secret and the password, so only a token holder can open a link
// (a member who sees the log learns nothing usable from the verifier).
func linkKDFInput(secret []byte, password string) string {
	return hex.EncodeToString(secret) + "\x00" + password
}

// CreateLink makes a share link for the file at abs. A file outside every
// synced folder is first copied into the MySharesName folder (created on
// demand). It returns the link with its token.
func (n *Node) CreateLink(ctx context.Context, abs string, opt LinkOptions) (LinkInfo, error) {
	if opt.Expires < 0 || opt.Expires > MaxLinkExpiry {
		return LinkInfo{}, ErrLinkExpiryLong
	}
	if len(opt.Password) > links.MaxPasswordLength {
		return LinkInfo{}, fmt.Errorf("the password is longer than %d bytes", links.MaxPasswordLength)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return LinkInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return LinkInfo{}, fmt.Errorf("%s: %w", abs, ErrNotAFile)
	}
	f, rel, err := n.locateFile(abs)
	if errors.Is(err, ErrNotInFolder) {
		f, rel, err = n.copyToMyShares(abs)
	}
	if err != nil {
		return LinkInfo{}, err
	}
	if err := f.waitIndexed(ctx, rel); err != nil {
		return LinkInfo{}, err
	}
	secret := make([]byte, links.SecretLength)
	salt := make([]byte, crdt.LinkSaltLen)
	rand.Read(secret)
	rand.Read(salt)
	verifier, err := crdt.LinkVerifier(linkKDFInput(secret, opt.Password), salt)
	if err != nil {
		return LinkInfo{}, err
	}
	body := crdt.CreateLink{Path: rel, Role: crdt.RoleViewer, Salt: salt, Verifier: verifier, DownloadLimit: opt.MaxDownloads}
	if opt.Expires > 0 {
		body.ExpiresAt = time.Now().Add(opt.Expires).UnixMilli()
	}
	op, err := f.AppendOp(body)
	if errors.Is(err, crdt.ErrUnauthorized) {
		return LinkInfo{}, fmt.Errorf("%s: %w", rel, ErrMayNotLink)
	}
	if err != nil {
		return LinkInfo{}, err
	}
	tok := links.Token{Folder: f.rlog.Folder(), Link: op.ID.Bytes(), Secret: secret, Password: opt.Password != "",
		Addrs: f.linkAddrs(rel)}
	li, err := f.linkInfo(crdt.RefOf(op.ID))
	if err != nil {
		return LinkInfo{}, err
	}
	li.Token = tok.String()
	li.Password = opt.Password != ""
	return li, nil
}

// linkAddrs are the devices a token names: this one first, then the folder's
// peers that may read the file (any of them can serve it while this device
// is offline).
func (f *Folder) linkAddrs(rel string) []peer.AddrInfo {
	out := []peer.AddrInfo{f.n.AddrInfo()}
	f.mu.Lock()
	peers := make([]peer.ID, 0, len(f.peers))
	for p := range f.peers {
		peers = append(peers, p)
	}
	f.mu.Unlock()
	for _, p := range peers {
		if !f.canRead(p, rel) {
			continue
		}
		addrs := f.n.host.Peerstore().Addrs(p)
		if len(addrs) == 0 {
			for _, c := range f.n.host.Network().ConnsToPeer(p) {
				addrs = append(addrs, c.RemoteMultiaddr())
			}
		}
		if len(addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: p, Addrs: addrs})
		}
	}
	return out
}

// copyToMyShares copies the file at abs into the MySharesName folder,
// creating the folder on first use. A file of the same name and content is
// reused; another content gets a numbered name.
func (n *Node) copyToMyShares(abs string) (*Folder, string, error) {
	dir := filepath.Join(n.cfg.Home, MySharesName)
	id, ok := n.FolderAt(dir)
	var f *Folder
	if ok {
		f, _ = n.Folder(id)
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", err
		}
		var err error
		if f, err = n.CreateFolder(dir, MySharesName); err != nil {
			return nil, "", fmt.Errorf("creating %q: %w", MySharesName, err)
		}
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, "", err
	}
	name := filepath.Base(abs)
	for i := 1; i <= MaxConflictSuffix; i++ {
		cand := name
		if i > 1 {
			cand = numbered(name, i)
		}
		dst := filepath.Join(dir, cand)
		have, err := os.ReadFile(dst)
		if err == nil && bytes.Equal(have, src) {
			return f, cand, nil
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, "", err
		}
		if err := writeFileAtomic(dst, src, 0o644); err != nil {
			return nil, "", err
		}
		return f, cand, nil
	}
	return nil, "", fmt.Errorf("no free name for %s in %s", name, dir)
}

// waitIndexed waits until the file at rel is indexed and signed (so it can be
// served), up to linkIndexWait.
func (f *Folder) waitIndexed(ctx context.Context, rel string) error {
	ctx, cancel := context.WithTimeout(ctx, linkIndexWait)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		fi, ok, err := f.idx.Get(rel)
		if err != nil {
			return err
		}
		if ok && !fi.Deleted && fi.Kind == store.KindFile && len(fi.Signature) > 0 {
			if st, err := lstatIn(f.root, rel); err == nil && st.Size() == fi.Size {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", rel, ErrNotIndexedYet)
		case <-t.C:
			f.wake()
		}
	}
}

// linkInfo reports one link of the folder, revoked ones included.
func (f *Folder) linkInfo(id crdt.LinkID) (LinkInfo, error) {
	for _, li := range f.linkInfos() {
		if li.ID == refString(id) {
			return li, nil
		}
	}
	return LinkInfo{}, ErrNoSuchLink
}

// linkInfos lists the folder's links.
func (f *Folder) linkInfos() []LinkInfo {
	me := f.n.User()
	now := time.Now()
	f.logMu.Lock()
	defer f.logMu.Unlock()
	live := map[crdt.LinkID]crdt.Link{}
	for _, k := range f.rlog.Links() {
		live[k.ID] = k
	}
	var out []LinkInfo
	for _, s := range f.rlog.Snapshot().Links {
		li := LinkInfo{ID: refString(s.ID), Folder: f.id, Path: s.Path, File: filepath.Join(f.root, filepath.FromSlash(s.Path))}
		k, ok := live[s.ID]
		if !ok { // revoked, or its creator may no longer share it
			c, err := s.ID.Cid()
			if err != nil {
				continue
			}
			op, found := f.rlog.Get(c)
			if !found {
				continue
			}
			b, _ := op.Body.(crdt.CreateLink)
			u, _ := f.rlog.DeviceUser(op.Author)
			k = crdt.Link{ID: s.ID, Creator: u, Path: b.Path, ExpiresAt: b.ExpiresAt, DownloadLimit: b.DownloadLimit, Verifier: b.Verifier}
		}
		li.Creator, li.Mine = k.Creator.String(), k.Creator == me
		li.Downloads, li.DownloadLimit = k.Downloads, k.DownloadLimit
		if k.ExpiresAt != 0 {
			li.ExpiresAt = time.UnixMilli(k.ExpiresAt).UTC()
		}
		li.State = linkState(ok, k, now)
		out = append(out, li)
	}
	return out
}

func linkState(live bool, k crdt.Link, now time.Time) string {
	switch {
	case !live:
		return LinkRevoked
	case k.ExpiresAt != 0 && now.UnixMilli() > k.ExpiresAt:
		return LinkExpired
	case k.DownloadLimit > 0 && k.Downloads >= k.DownloadLimit:
		return LinkUsedUp
	case k.Suspended:
		return LinkSuspended
	}
	return LinkActive
}

// Links lists the share links this device's user made, in every folder
// (every link of every folder with all).
func (n *Node) Links(all bool) []LinkInfo {
	out := []LinkInfo{}
	for _, f := range n.folderList() {
		for _, li := range f.linkInfos() {
			if all || li.Mine {
				out = append(out, li)
			}
		}
	}
	return out
}

// findLink resolves a link given as its ID, a unique prefix of it, or a token.
func (n *Node) findLink(s string) (*Folder, crdt.LinkID, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, links.TokenPrefix) {
		tok, err := links.ParseToken(s)
		if err != nil {
			return nil, "", err
		}
		f, ok := n.Folder(tok.Folder.String())
		if !ok {
			return nil, "", fmt.Errorf("%w: its folder is not synced here", ErrNoSuchLink)
		}
		return f, crdt.LinkID(tok.Link), nil
	}
	var found *Folder
	var id crdt.LinkID
	matches := 0
	for _, f := range n.folderList() {
		for _, li := range f.linkInfos() {
			if li.ID == s || (len(s) >= 8 && strings.HasPrefix(li.ID, s)) || (len(s) >= 8 && strings.HasSuffix(li.ID, s)) {
				c, err := cid.Decode(li.ID)
				if err != nil {
					continue
				}
				found, id, matches = f, crdt.RefOf(c), matches+1
			}
		}
	}
	switch matches {
	case 0:
		return nil, "", fmt.Errorf("%q: %w", s, ErrNoSuchLink)
	case 1:
		return found, id, nil
	}
	return nil, "", fmt.Errorf("%q names %d links: give more of the ID", s, matches)
}

// SetLinkState suspends, resumes or revokes a link (by ID, unique ID prefix
// or token).
func (n *Node) SetLinkState(link, action string) (LinkInfo, error) {
	f, id, err := n.findLink(link)
	if err != nil {
		return LinkInfo{}, err
	}
	var body crdt.Body
	switch action {
	case "suspend":
		body = crdt.SuspendLink{Link: id}
	case "resume":
		body = crdt.ResumeLink{Link: id}
	case "revoke":
		body = crdt.RevokeLink{Link: id}
	default:
		return LinkInfo{}, fmt.Errorf("unknown link action %q", action)
	}
	if _, err := f.AppendOp(body); err != nil {
		switch {
		case errors.Is(err, crdt.ErrUnauthorized):
			return LinkInfo{}, ErrMayNotLink
		case errors.Is(err, crdt.ErrBadTarget):
			return LinkInfo{}, fmt.Errorf("the link is revoked already: %w", ErrNoSuchLink)
		}
		return LinkInfo{}, err
	}
	return f.linkInfo(id)
}

// OpenLink decides a share-link download (links.Provider): the file to send,
// or an error wrapping a links refusal sentinel. from identifies the
// requester for logs ("p2p:<device>", or an HTTP gateway's client address).
// The libp2p server and the relay's HTTP gateway both call it.
func (n *Node) OpenLink(ctx context.Context, req links.Request, from string) (links.File, error) {
	f, ok := n.Folder(req.Folder)
	if !ok {
		return nil, links.ErrUnavailable
	}
	id := crdt.LinkID(req.Link)
	g := n.linkGuard()
	if g.limited(id, time.Now()) {
		return nil, links.ErrRateLimited
	}
	f.logMu.Lock()
	var k crdt.Link
	live := false
	for _, l := range f.rlog.Links() {
		if l.ID == id {
			k, live = l, true
		}
	}
	exists := live
	if !live {
		for _, s := range f.rlog.Snapshot().Links {
			exists = exists || s.ID == id
		}
	}
	f.logMu.Unlock()
	if !exists {
		return nil, links.ErrUnknownLink
	}
	if !live {
		return nil, links.ErrRevoked
	}
	select {
	case g.checks <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	okPass := k.CheckPassword(linkKDFInput(req.Secret, req.Password))
	<-g.checks
	if !okPass {
		g.fail(id, time.Now())
		f.log.Warn("share link: wrong password or secret", "link", shortFolder(refString(id)), "from", from)
		return nil, links.ErrPassword
	}
	if k.ExpiresAt != 0 && time.Now().UnixMilli() > k.ExpiresAt {
		return nil, fmt.Errorf("%w%w", links.ErrExpired, &links.Detail{Text: "on " + time.UnixMilli(k.ExpiresAt).UTC().Format(time.RFC3339)})
	}
	if k.Suspended {
		return nil, links.ErrSuspended
	}
	if !g.begin(id, k) {
		return nil, fmt.Errorf("%w%w", links.ErrUsedUp, &links.Detail{Text: fmt.Sprintf("%d of %d downloads", k.Downloads, k.DownloadLimit)})
	}
	file, err := f.linkFile(id, k.Path)
	if err != nil {
		g.end(id)
		return nil, err
	}
	file.guard = g
	return file, nil
}

func (g *linkGuard) limited(id crdt.LinkID, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	recent := g.failures[id][:0]
	for _, t := range g.failures[id] {
		if now.Sub(t) < PasswordWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) == 0 {
		delete(g.failures, id)
	} else {
		g.failures[id] = recent
	}
	return len(recent) >= MaxPasswordFailures
}

func (g *linkGuard) fail(id crdt.LinkID, now time.Time) {
	g.mu.Lock()
	g.failures[id] = append(g.failures[id], now)
	g.mu.Unlock()
}

// begin counts a download in flight on this device, unless the recorded and
// in-flight downloads already reach the limit.
func (g *linkGuard) begin(id crdt.LinkID, k crdt.Link) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if k.DownloadLimit > 0 && uint64(k.Downloads)+uint64(g.inflight[id]) >= uint64(k.DownloadLimit) {
		return false
	}
	g.inflight[id]++
	return true
}

func (g *linkGuard) end(id crdt.LinkID) {
	g.mu.Lock()
	if g.inflight[id]--; g.inflight[id] <= 0 {
		delete(g.inflight, id)
	}
	g.mu.Unlock()
}

// linkFile is a linked file opened for one download.
type linkFile struct {
	f     *Folder
	id    crdt.LinkID
	path  string
	meta  links.Meta
	guard *linkGuard
	done  bool
}

func (f *Folder) linkFile(id crdt.LinkID, p string) (*linkFile, error) {
	f.logMu.Lock()
	mayRead := f.rlog.Can(f.n.User(), crdt.ActionRead, p)
	f.logMu.Unlock()
	if !mayRead {
		return nil, fmt.Errorf("%w%w", links.ErrUnavailable, &links.Detail{Text: "this device may not read the file"})
	}
	fi, ok, err := f.idx.Get(p)
	if err != nil {
		return nil, err
	}
	if !ok || fi.Deleted {
		return nil, fmt.Errorf("%w%w", links.ErrUnavailable, &links.Detail{Text: "the file is not here (deleted?)"})
	}
	if fi.Kind != store.KindFile {
		return nil, fmt.Errorf("%w%w", links.ErrUnavailable, &links.Detail{Text: "links to folders are not served"})
	}
	m := links.Meta{Name: path.Base(p), Size: fi.Size, ModTime: fi.ModTime}
	for _, c := range fi.Chunks {
		m.Chunks = append(m.Chunks, links.Chunk{CID: c.CID, Size: c.Size})
	}
	return &linkFile{f: f, id: id, path: p, meta: m}, nil
}

func (l *linkFile) Meta() links.Meta { return l.meta }

func (l *linkFile) Chunk(i int) ([]byte, error) {
	return l.f.idx.ReadChunkFrom(l.f.root, l.meta.Chunks[i].CID, func(p string) bool { return p == l.path })
}

// Complete records the download in the log (it counts against the limit on
// every device once the op has spread).
func (l *linkFile) Complete() error {
	if l.done {
		return nil
	}
	l.done = true
	defer l.guard.end(l.id)
	if _, err := l.f.AppendOp(crdt.LinkDownload{Link: l.id}); err != nil {
		l.f.log.Error("recording a share-link download", "err", err)
		return err
	}
	return nil
}

func (l *linkFile) Close() error {
	if !l.done {
		l.done = true
		l.guard.end(l.id)
	}
	return nil
}

var _ links.Provider = (*Node)(nil)
var _ io.Closer = (*linkFile)(nil)

type linkCreateReq struct {
	Path         string `json:"path"`
	Expires      string `json:"expires"` // a duration ("7d"); "" never
	Password     string `json:"password"`
	MaxDownloads uint32 `json:"max_downloads"`
}

func init() {
	apiRoutes = append(apiRoutes, func(a *API, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/links", func(w http.ResponseWriter, r *http.Request) {
			apiJSON(w, a.n.Links(r.URL.Query().Get("all") == "true"))
		})
		mux.HandleFunc("POST /v1/links", a.createLink)
		mux.HandleFunc("POST /v1/links/{link}/{action}", a.setLinkState)
	})
}

func (a *API) createLink(w http.ResponseWriter, r *http.Request) {
	var req linkCreateReq
	if !decode(w, r, &req) {
		return
	}
	exp, err := ParseDuration(req.Expires)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	li, err := a.n.CreateLink(r.Context(), req.Path, LinkOptions{Expires: exp, Password: req.Password, MaxDownloads: req.MaxDownloads})
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	apiJSON(w, li)
}

func (a *API) setLinkState(w http.ResponseWriter, r *http.Request) {
	li, err := a.n.SetLinkState(r.PathValue("link"), r.PathValue("action"))
	switch {
	case errors.Is(err, ErrNoSuchLink):
		apiError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrMayNotLink):
		apiError(w, http.StatusForbidden, err)
	case err != nil:
		apiError(w, http.StatusBadRequest, err)
	default:
		apiJSON(w, li)
	}
}

// linkDialTimeout bounds connecting to one device a token names.
const linkDialTimeout = 10 * time.Second

// GetLink downloads the file behind tok into sink with a throwaway libp2p
// host (no node needed), trying each device the token names in turn until
// one serves it. A refusal other than "not here" (wrong password, expired,
// suspended, revoked, used up) ends the attempt at once. sink.Begin is called
// again (and must start over) when a device fails midway and the next one is
// tried.
func GetLink(ctx context.Context, tok links.Token, password string, sink links.Sink) (links.Meta, error) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return links.Meta{}, err
	}
	h, err := NewHost(HostConfig{Key: key, ListenAddrs: []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}})
	if err != nil {
		return links.Meta{}, err
	}
	defer h.Close()
	if len(tok.Addrs) == 0 {
		return links.Meta{}, errors.New("the token names no device to download from")
	}
	req := links.Request{Folder: tok.Folder.String(), Link: tok.Link, Secret: tok.Secret, Password: password}
	var errs []error
	unknown := false
	for _, ai := range tok.Addrs {
		dctx, cancel := context.WithTimeout(ctx, linkDialTimeout)
		err := h.Connect(dctx, ai)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: unreachable", ShortID(ai.ID)))
			continue
		}
		m, err := links.Get(ctx, h, ai.ID, req, sink)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return m, ctx.Err()
		}
		if errors.Is(err, links.ErrUnknownLink) {
			unknown = true // this device may not have the link's op yet: ask the next
			continue
		}
		var refusal bool
		for _, e := range []error{links.ErrRevoked, links.ErrSuspended, links.ErrExpired,
			links.ErrUsedUp, links.ErrPassword, links.ErrRateLimited, links.ErrBadRequest} {
			refusal = refusal || errors.Is(err, e)
		}
		if refusal {
			return m, err
		}
		errs = append(errs, fmt.Errorf("device %s: %w", ShortID(ai.ID), err))
	}
	if unknown && len(errs) == 0 {
		return links.Meta{}, links.ErrUnknownLink
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return links.Meta{}, fmt.Errorf("%w: no device named in the token served the file (%s)", links.ErrUnavailable, strings.Join(msgs, "; "))
}
