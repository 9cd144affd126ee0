package node

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/meshfold/meshfold/protocol/links"
)

// Link gateway limits (`meshfold relay --gateway ADDR`).
const (
	// GatewayRate and GatewayBurst are the token bucket of one client
	// address: requests per second sustained, and at once.
	GatewayRate  = 2
	GatewayBurst = 20
	// GatewayMaxClients bounds the client addresses tracked at once; a new
	// address beyond it is refused (429) until idle ones are forgotten.
	GatewayMaxClients = 10000
	// gatewayClientIdle: a client address unseen this long is forgotten.
	gatewayClientIdle = 10 * time.Minute
	// GatewayHeaderTimeout bounds reading a request's headers.
	GatewayHeaderTimeout = 10 * time.Second
	// GatewayMaxForm bounds a request body (the password form).
	GatewayMaxForm = 4 << 10
	// gatewayProbeTimeout bounds asking a member device for a file's name
	// and size, for the page.
	gatewayProbeTimeout = 30 * time.Second
	// GatewayPasswordHeader carries the password of a download by curl, as an
	// alternative to the form field "password".
	GatewayPasswordHeader = "X-Meshfold-Password"
)

// ErrNoPassword: the link needs a password and the request carried none.
var ErrNoPassword = errors.New("this link needs a password")

// errGatewayBusy: the gateway tracks GatewayMaxClients addresses already.
var errGatewayBusy = errors.New("too many clients right now; try again later")

// errTooFast: a client address used up its token bucket.
var errTooFast = errors.New("too many requests from your address; slow down")

// errHeadersSent: a member device failed midway and the next one would start
// the file over, but the HTTP response has begun.
var errHeadersSent = errors.New("the download broke off midway")

// Gateway serves share links over HTTP: GET /l/<token> is a page with the
// file's name and size (a password field when the link has one) and a
// download button; GET or POST /l/<token>/file is the file. Every download
// is decided by Node.OpenLink when this node holds the folder, else fetched
// from a member device with GetLink (which verifies every chunk): the same
// checks as over libp2p either way.
type Gateway struct {
	n   *Node
	log *slog.Logger
	lim *clientLimiter
	srv *http.Server
	ln  net.Listener

	requests *prometheus.CounterVec
	bytes    prometheus.Counter
}

// NewGateway returns the gateway of n (not listening: see Handler, Serve).
func (n *Node) NewGateway() *Gateway {
	g := &Gateway{n: n, log: n.log.With("part", "gateway"), lim: newClientLimiter(GatewayRate, GatewayBurst),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshfold_gateway_requests_total", Help: "Link gateway HTTP requests, by status code.",
		}, []string{"code"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshfold_gateway_sent_bytes_total", Help: "File bytes the link gateway sent.",
		}),
	}
	if n.metrics != nil && n.metrics.reg != nil {
		n.metrics.reg.MustRegister(g.requests, g.bytes)
	}
	return g
}

// StartGateway listens on addr and serves the gateway until Close.
func (n *Node) StartGateway(addr string) (*Gateway, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("link gateway: %w", err)
	}
	g := n.NewGateway()
	g.ln = ln
	g.srv = &http.Server{Handler: g.Handler(), ReadHeaderTimeout: GatewayHeaderTimeout}
	go g.srv.Serve(ln)
	g.log.Info("link gateway listening", "addr", ln.Addr().String())
	return g, nil
}

// Addr is where the gateway listens.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Close stops the gateway.
func (g *Gateway) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return g.srv.Shutdown(ctx)
}

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /l/{token}", g.page)
	mux.HandleFunc("GET /l/{token}/file", g.download)
	mux.HandleFunc("POST /l/{token}/file", g.download)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "meshfold link gateway: open the link you were given (/l/<token>).\n")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		client := clientAddr(r)
		if err := g.lim.allow(client, time.Now()); err != nil {
			rec.Header().Set("Retry-After", strconv.Itoa(max(1, GatewayBurst/GatewayRate)))
			g.fail(rec, r, http.StatusTooManyRequests, err)
		} else {
			r.Body = http.MaxBytesReader(rec, r.Body, GatewayMaxForm)
			mux.ServeHTTP(rec, r)
		}
		g.requests.WithLabelValues(strconv.Itoa(rec.code)).Inc()
		g.log.Info("gateway request", "from", client, "method", r.Method, "path", shortPath(r.URL.Path), "status", rec.code, "bytes", rec.n)
	})
}

// shortPath shortens a token in a path for logs (a token is a credential).
func shortPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/l/"); ok && len(rest) > 24 {
		tok, tail, _ := strings.Cut(rest, "/")
		if len(tok) > 20 {
			tok = tok[:20] + "…"
		}
		if tail != "" {
			tail = "/" + tail
		}
		return "/l/" + tok + tail
	}
	return p
}

type statusRecorder struct {
	http.ResponseWriter
	code  int
	n     int64
	wrote bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(p)
	s.n += int64(n)
	return n, err
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientLimiter is a token bucket per client address.
type clientLimiter struct {
	mu      sync.Mutex
	rate    rate.Limit
	burst   int
	clients map[string]*clientBucket
}

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newClientLimiter(r rate.Limit, burst int) *clientLimiter {
	return &clientLimiter{rate: r, burst: burst, clients: map[string]*clientBucket{}}
}

func (c *clientLimiter) allow(addr string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.clients[addr]
	if !ok {
		if len(c.clients) >= GatewayMaxClients {
			for a, o := range c.clients {
				if now.Sub(o.seen) > gatewayClientIdle {
					delete(c.clients, a)
				}
			}
			if len(c.clients) >= GatewayMaxClients {
				return errGatewayBusy
			}
		}
		b = &clientBucket{lim: rate.NewLimiter(c.rate, c.burst)}
		c.clients[addr] = b
	}
	b.seen = now
	if !b.lim.AllowN(now, 1) {
		return errTooFast
	}
	return nil
}

// gatewayStatus maps a refusal to its HTTP status.
func gatewayStatus(err error) int {
	switch {
	case errors.Is(err, links.ErrBadToken), errors.Is(err, links.ErrUnknownLink):
		return http.StatusNotFound
	case errors.Is(err, links.ErrRevoked), errors.Is(err, links.ErrExpired), errors.Is(err, links.ErrUsedUp):
		return http.StatusGone
	case errors.Is(err, links.ErrPassword), errors.Is(err, ErrNoPassword), errors.Is(err, links.ErrSuspended):
		return http.StatusForbidden
	case errors.Is(err, links.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, links.ErrBadRequest):
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable // no device holding the file answered
}

// fail answers err: one line of text for curl, a small page for a browser.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	msg := err.Error()
	if code == http.StatusServiceUnavailable && !errors.Is(err, links.ErrUnavailable) {
		msg = links.ErrUnavailable.Error() // no internal detail to strangers
		g.log.Warn("gateway download failed", "err", err)
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		pageTmpl.Execute(w, pageData{Title: http.StatusText(code), Error: msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "%d %s: %s\n", code, http.StatusText(code), msg)
}

func (g *Gateway) token(r *http.Request) (links.Token, error) {
	s := r.PathValue("token")
	if len(s) > links.MaxTokenLength {
		return links.Token{}, links.ErrBadToken
	}
	return links.ParseToken(s)
}

// page shows the file's name and size with a download button, or a password
// field when the link has one (the name is shown once the password opens it).
func (g *Gateway) page(w http.ResponseWriter, r *http.Request) {
	tok, err := g.token(r)
	if err != nil {
		g.fail(w, r, http.StatusNotFound, err)
		return
	}
	d := pageData{Title: "Shared file", Action: "/l/" + r.PathValue("token") + "/file", Password: tok.Password}
	if !tok.Password {
		m, err := g.probe(r.Context(), tok, clientAddr(r))
		if err != nil {
			g.fail(w, r, gatewayStatus(err), err)
			return
		}
		d.Name, d.Size = m.Name, humanSize(m.Size)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	pageTmpl.Execute(w, d)
}

// errProbed ends a probe once the file's metadata arrived.
var errProbed = errors.New("probed")

// probe learns the file's metadata the way a download starts, without
// downloading it (nothing is counted against the limit).
func (g *Gateway) probe(ctx context.Context, tok links.Token, client string) (links.Meta, error) {
	req := links.Request{Folder: tok.Folder.String(), Link: tok.Link, Secret: tok.Secret}
	f, err := g.n.OpenLink(ctx, req, "http:"+client)
	if err == nil {
		defer f.Close()
		return f.Meta(), nil
	}
	if !errors.Is(err, links.ErrUnavailable) && !errors.Is(err, links.ErrUnknownLink) {
		return links.Meta{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, gatewayProbeTimeout)
	defer cancel()
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var got *links.Meta
	sink := &funcSink{begin: func(m links.Meta) error { got = &m; stop(); return errProbed }}
	_, err = GetLink(pctx, g.others(tok), "", sink)
	if got != nil {
		return *got, nil
	}
	if err != nil && ctx.Err() == nil {
		return links.Meta{}, err
	}
	return links.Meta{}, fmt.Errorf("%w: no device answered in time", links.ErrUnavailable)
}

// others is tok without this node among its devices.
func (g *Gateway) others(tok links.Token) links.Token {
	t := tok
	t.Addrs = nil
	for _, ai := range tok.Addrs {
		if ai.ID != g.n.id {
			t.Addrs = append(t.Addrs, ai)
		}
	}
	return t
}

type funcSink struct {
	begin func(links.Meta) error
	write func([]byte) (int, error)
}

func (s *funcSink) Begin(m links.Meta) error { return s.begin(m) }

func (s *funcSink) Write(p []byte) (int, error) {
	if s.write == nil {
		return 0, errProbed
	}
	return s.write(p)
}

// download sends the file: from this node's replica when it holds the
// folder, else relayed from a member device.
func (g *Gateway) download(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		// A HEAD would run the download with the body discarded, and count it.
		w.Header().Set("Allow", "GET, POST")
		g.fail(w, r, http.StatusMethodNotAllowed, errors.New("use GET or POST to download"))
		return
	}
	tok, err := g.token(r)
	if err != nil {
		g.fail(w, r, http.StatusNotFound, err)
		return
	}
	password := r.Header.Get(GatewayPasswordHeader)
	if password == "" && r.Method == http.MethodPost {
		password = r.PostFormValue("password")
	}
	if len(password) > links.MaxPasswordLength {
		g.fail(w, r, http.StatusBadRequest, fmt.Errorf("%w: the password is longer than %d bytes", links.ErrBadRequest, links.MaxPasswordLength))
		return
	}
	if tok.Password && password == "" {
		g.fail(w, r, http.StatusForbidden, ErrNoPassword)
		return
	}
	client := clientAddr(r)
	req := links.Request{Folder: tok.Folder.String(), Link: tok.Link, Secret: tok.Secret, Password: password}
	f, err := g.n.OpenLink(r.Context(), req, "http:"+client)
	switch {
	case err == nil:
		g.sendLocal(w, r, f, client)
		return
	case !errors.Is(err, links.ErrUnavailable) && !errors.Is(err, links.ErrUnknownLink):
		g.fail(w, r, gatewayStatus(err), err)
		return
	}
	// Not held here (or not yet): fetch it from a member device.
	started := false
	var written int64
	var size int64
	sink := &funcSink{
		begin: func(m links.Meta) error {
			if started {
				if written > 0 || m.Size != size {
					return errHeadersSent
				}
				return nil
			}
			started, size = true, m.Size
			fileHeaders(w, m)
			return nil
		},
		write: func(p []byte) (int, error) {
			n, err := w.Write(p)
			written += int64(n)
			g.bytes.Add(float64(n))
			return n, err
		},
	}
	_, err = GetLink(r.Context(), g.others(tok), password, sink)
	if err == nil {
		g.log.Info("share link downloaded through the gateway", "from", client, "bytes", written, "via", "member device")
		return
	}
	if !started {
		g.fail(w, r, gatewayStatus(err), err)
		return
	}
	g.log.Warn("gateway download broke off", "from", client, "bytes", written, "err", err)
}

func fileHeaders(w http.ResponseWriter, m links.Meta) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(m.Size, 10))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": m.Name}))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// sendLocal streams f; the download counts (Complete) only once every byte
// was handed to the connection.
func (g *Gateway) sendLocal(w http.ResponseWriter, r *http.Request, f links.File, client string) {
	defer f.Close()
	m := f.Meta()
	// Read the first chunk before answering, so a missing file is still a
	// clean error.
	var first []byte
	if len(m.Chunks) > 0 {
		var err error
		if first, err = f.Chunk(0); err != nil {
			g.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("%w: %v", links.ErrUnavailable, err))
			return
		}
	}
	fileHeaders(w, m)
	var sent int64
	for i := range m.Chunks {
		data := first
		if i > 0 {
			var err error
			if data, err = f.Chunk(i); err != nil {
				g.log.Warn("gateway download broke off: reading a chunk", "err", err)
				return
			}
		}
		n, err := w.Write(data)
		sent += int64(n)
		g.bytes.Add(float64(n))
		if err != nil {
			g.log.Info("gateway client went away mid-download", "from", client, "bytes", sent)
			return
		}
	}
	if err := f.Complete(); err != nil {
		g.log.Error("recording a gateway download", "err", err)
		return
	}
	g.log.Info("share link downloaded through the gateway", "from", client, "bytes", sent, "via", "replica")
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

type pageData struct {
	Title    string
	Name     string
	Size     string
	Password bool
	Action   string
	Error    string
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}} · meshfold</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
.box{border:1px solid #ccc;border-radius:8px;padding:1.2rem}.err{color:#a00}button{font-size:1rem;padding:.5rem 1.2rem}
input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box;margin:.5rem 0}</style></head>
<body><div class="box">
{{if .Error}}<h1>{{.Title}}</h1><p class="err">{{.Error}}</p>
{{else}}<h1>{{if .Name}}{{.Name}}{{else}}Shared file{{end}}</h1>
{{if .Size}}<p>{{.Size}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{if .Password}}<label for="pw">This link is protected by a password.</label>
<input id="pw" type="password" name="password" required autofocus>{{end}}
<button type="submit">Download</button></form>{{end}}
</div><p><small>Shared with meshfold.</small></p></body></html>
`))

// registerRelayMetrics adds the circuit relay service's metrics
// (libp2p_relaysvc_*: relay status, reservations, relayed connections and
// bytes) to a relay's registry. libp2p keeps them in collectors of its own
// package, which every relay host in the process updates.
func registerRelayMetrics(reg prometheus.Registerer) {
	relayv2.NewMetricsTracer(relayv2.WithRegisterer(reg))
}
