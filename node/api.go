package node

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/join"
)

// APIFile, in the node home, tells clients where the running daemon's control
// API listens and the token it wants (mode 0600: only this user may read it).
const APIFile = "api.json"

// Limits of the control API.
const (
	maxAPIBody    = 64 << 10
	apiReadTimout = 30 * time.Second
)

// APIInfo is the content of APIFile.
type APIInfo struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

// apiRoutes are the groups of calls other files of this package add to the
// control API (each file registers its own in an init function).
var apiRoutes []func(a *API, mux *http.ServeMux)

// API is the daemon's control API: HTTP+JSON on a loopback address, every
// request authenticated by the token in APIFile. docs/api.md lists the calls.
type API struct {
	n     *Node
	token string
	srv   *http.Server
	ln    net.Listener

	closing chan struct{} // closed on shutdown: ends event streams
}

// StartAPI listens on addr (a loopback address; "" means 127.0.0.1:0),
// writes APIFile and serves until Close.
func (n *Node) StartAPI(addr string) (*API, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("control API address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("control API address %q: only loopback addresses are allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control API: %w", err)
	}
	var tok [32]byte
	rand.Read(tok[:])
	a := &API{n: n, token: hex.EncodeToString(tok[:]), ln: ln, closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("POST /v1/folders", a.addFolder)
	mux.HandleFunc("POST /v1/folders/{id}/invites", a.invite)
	mux.HandleFunc("POST /v1/join", a.join)
	for _, register := range apiRoutes {
		register(a, mux)
	}
	a.srv = &http.Server{Handler: a.auth(mux), ReadHeaderTimeout: apiReadTimout}
	a.srv.RegisterOnShutdown(func() { close(a.closing) })
	info, _ := json.Marshal(APIInfo{Addr: ln.Addr().String(), Token: a.token})
	if err := writeFileAtomic(filepath.Join(n.cfg.Home, APIFile), info, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	go a.srv.Serve(ln)
	return a, nil
}

// Addr is where the API listens.
func (a *API) Addr() string { return a.ln.Addr().String() }

// Close stops the API and removes APIFile, so clients know no daemon runs.
func (a *API) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	os.Remove(filepath.Join(a.n.cfg.Home, APIFile))
	return a.srv.Shutdown(ctx)
}

func (a *API) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == MetricsPath {
			a.n.metrics.handler.ServeHTTP(w, r) // no token: see MetricsPath
			return
		}
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			apiError(w, http.StatusUnauthorized, errors.New("missing or wrong API token"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
		next.ServeHTTP(w, r)
	})
}

// StatusReport is the answer of GET /v1/status.
type StatusReport struct {
	Device    string   `json:"device"`
	User      string   `json:"user"`
	Addrs     []string `json:"addrs"`
	Connected []string `json:"connected"` // devices this one has a connection to
	// Connections are the connections behind Connected: direct or relayed.
	Connections []ConnReport   `json:"connections"`
	Folders     []FolderReport `json:"folders"`
	PausedAll   bool           `json:"paused_all"` // the global pause switch is on
}

// FolderReport is one folder in a StatusReport.
type FolderReport struct {
	ID    string     `json:"id"`
	Root  string     `json:"root"`
	Locks []LockInfo `json:"locks"` // live locks and lock requests (locks.go)
	Status
	Conflicts     int      `json:"conflicts"`      // conflict copies in the folder
	ConflictNames []string `json:"conflict_names"` // the first MaxConflictNames of them
}

// Report is the node's status.
func (n *Node) Report() StatusReport {
	r := StatusReport{Device: n.id.String(), User: n.User().String()}
	for _, a := range n.host.Addrs() {
		r.Addrs = append(r.Addrs, a.String())
	}
	for _, p := range n.host.Network().Peers() {
		r.Connected = append(r.Connected, p.String())
	}
	sort.Strings(r.Connected)
	r.Connections = n.Connections()
	r.Folders = n.folderReports()
	r.PausedAll = n.PausedAll()
	return r
}

func (a *API) status(w http.ResponseWriter, _ *http.Request) { apiJSON(w, a.n.Report()) }

type addFolderReq struct {
	Path string `json:"path"`
	Name string `json:"name"`
}

func (a *API) addFolder(w http.ResponseWriter, r *http.Request) {
	var req addFolderReq
	if !decode(w, r, &req) {
		return
	}
	if req.Path == "" {
		apiError(w, http.StatusBadRequest, errors.New("path is required"))
		return
	}
	if req.Name == "" {
		req.Name = filepath.Base(req.Path)
	}
	f, err := a.n.CreateFolder(req.Path, req.Name)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	apiJSON(w, map[string]string{"id": f.ID()})
}

type inviteReq struct {
	Role     string `json:"role"`
	Path     string `json:"path"`
	Uses     uint32 `json:"uses"`
	Expires  string `json:"expires"` // a duration: "90m", "7d"; "" never
	Approval bool   `json:"approval"`
}

func (a *API) invite(w http.ResponseWriter, r *http.Request) {
	var req inviteReq
	if !decode(w, r, &req) {
		return
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	exp, err := ParseDuration(req.Expires)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	key, err := a.n.Invite(r.PathValue("id"), InviteOptions{Role: role, Path: req.Path, Uses: req.Uses, Expires: exp, Approval: req.Approval})
	if errors.Is(err, ErrUnknownFolder) {
		apiError(w, http.StatusNotFound, err)
		return
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	f, _ := a.n.Folder(key.Folder.String())
	approval := f != nil && f.InviteNeedsApproval(key.Invite) // set by the daemon for a role the issuer cannot grant
	apiJSON(w, map[string]any{"key": key.String(), "approval": approval})
}

type joinReq struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

func (a *API) join(w http.ResponseWriter, r *http.Request) {
	var req joinReq
	if !decode(w, r, &req) {
		return
	}
	key, err := join.ParseKey(req.Key)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if req.Path == "" {
		apiError(w, http.StatusBadRequest, errors.New("path is required"))
		return
	}
	f, err := a.n.Join(r.Context(), key, req.Path)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	access, request := f.access() // "pending" with an invitation that needs approval
	apiJSON(w, map[string]string{"id": f.ID(), "access": access, "request": request})
}

// ParseRole reads a role name as users type it.
func ParseRole(s string) (crdt.Role, error) {
	switch strings.ToLower(s) {
	case "viewer", "view":
		return crdt.RoleViewer, nil
	case "editor", "edit":
		return crdt.RoleEditor, nil
	case "organizer", "organize":
		return crdt.RoleOrganizer, nil
	case "manager", "collaborate":
		return crdt.RoleManager, nil
	case "owner":
		return crdt.RoleOwner, nil
	}
	return 0, fmt.Errorf("unknown role %q (viewer, editor, organizer, manager or owner)", s)
}

// ParseDuration reads "90s", "15m", "12h" or "7d"; "" is zero.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != days {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad duration %q (examples: 90m, 12h, 7d)", s)
	}
	return d, nil
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	return true
}

func apiJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// APIErrorBody is how the API reports an error.
type APIErrorBody struct {
	Error string `json:"error"`
}

func apiError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(APIErrorBody{Error: err.Error()})
}
