package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newRelayCommand) }

type relayOptions struct {
	home      string
	listen    []string
	announce  []string
	peers     []string
	api       string
	gateway   string
	metrics   string
	logFormat string
	logLevel  string
	duration  time.Duration
	mib       int64
}

func newRelayCommand() *cobra.Command {
	var opts relayOptions
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run a headless relay: circuit relay, DHT server, AutoNAT service, always-on replica",
		Long: fmt.Sprintf(`relay runs the same node as 'meshfold run', headless, on a server with a public
address, and adds what devices behind NATs need:

  - a circuit relay (v2) through which two devices that cannot dial each other
    meet, and then try to connect directly (hole punching);
  - meshfold's DHT in server mode, where devices announce their folders;
  - the AutoNAT service, which tells devices whether they are reachable.

--announce is required: the public address(es) devices dial, as multiaddrs,
e.g. --announce /ip4/203.0.113.7/tcp/22100 --announce /ip4/203.0.113.7/udp/22100/quic-v1.
Devices use the relay with 'meshfold run --relay <announce addr>/p2p/<relay ID>',
and learn it from invitation keys of devices that use it.

Limits of the relay service (per relayed connection unless noted):
  reservations (devices holding a slot)   %d, each lasting %s unless refreshed
  relayed connections per device          %d
  duration of one relayed connection      %s (--circuit-duration)
  bytes per direction per connection      %d MiB (--circuit-mib)
A relayed connection that reaches a limit is reset; devices open a new one,
and move bulk transfers to a direct connection when hole punching succeeds.

The relay keeps an always-on replica of the folders it is added to: use
'meshfold join <key> <dir> --home <relay home>' while it runs, or make it a
device of your user ('meshfold device add' / 'meshfold device link'). A folder
owner makes it a lock witness with 'meshfold witnesses <folder> <relay ID>'.

--gateway ADDR (off by default) serves share links over HTTP: a browser opens
http://ADDR/l/<token>; curl downloads with
  curl --fail-with-body -OJ http://ADDR/l/<token>/file
  curl --fail-with-body -OJ --data-urlencode password=SECRET http://ADDR/l/<token>/file
Each client address gets %d requests at once, then %d per second.

Metrics (Prometheus) are on the control API at /metrics (loopback), and on
--metrics ADDR for a scraper on another host.`,
			node.RelayMaxReservations, node.RelayReservationTTL, node.RelayMaxCircuits,
			node.RelayCircuitDuration, node.RelayCircuitData>>20, node.GatewayBurst, node.GatewayRate),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRelay(cmd.Context(), opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addHomeFlag(cmd, &opts.home)
	cmd.Flags().StringArrayVar(&opts.listen, "listen", nil, "multiaddr to listen on (repeatable; default all interfaces, TCP and QUIC, port 22100)")
	cmd.Flags().StringArrayVar(&opts.announce, "announce", nil, "public multiaddr to announce, e.g. /ip4/203.0.113.7/tcp/22100 (repeatable; required)")
	cmd.Flags().StringArrayVar(&opts.peers, "peer", nil, "address of another relay or peer to connect to, ending in /p2p/<ID> (repeatable)")
	cmd.Flags().DurationVar(&opts.duration, "circuit-duration", node.RelayCircuitDuration, "how long one relayed connection may last")
	cmd.Flags().Int64Var(&opts.mib, "circuit-mib", node.RelayCircuitData>>20, "MiB one relayed connection may carry in each direction")
	cmd.Flags().StringVar(&opts.api, "api", "127.0.0.1:0", "loopback address of the control API")
	cmd.Flags().StringVar(&opts.gateway, "gateway", "", "address to serve share links over HTTP on, e.g. :8080 (off when empty)")
	cmd.Flags().StringVar(&opts.metrics, "metrics", "", "address to serve Prometheus metrics on (besides the control API), e.g. :9100")
	cmd.Flags().StringVar(&opts.logFormat, "log-format", "", "text or json (default: text on a terminal, json otherwise)")
	cmd.Flags().StringVar(&opts.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runRelay(ctx context.Context, opts relayOptions, out, errOut io.Writer) error {
	logger, err := newLogger(errOut, opts.logFormat, opts.logLevel)
	if err != nil {
		return usageError{err}
	}
	if len(opts.announce) == 0 {
		return usageError{node.ErrNoAnnounce}
	}
	if _, err := node.AnnounceOption(opts.announce); err != nil {
		return usageError{fmt.Errorf("--announce: %w", err)}
	}
	limits := node.RelayLimits{Duration: opts.duration, Data: opts.mib << 20}
	if opts.duration <= 0 || opts.mib <= 0 {
		return usageError{fmt.Errorf("--circuit-duration and --circuit-mib must be positive: %w", node.ErrRelayLimit)}
	}
	if _, err := node.RelayServiceOptions(limits); err != nil {
		return usageError{fmt.Errorf("--circuit-duration/--circuit-mib: %w", err)}
	}
	if opts.home == "" {
		if opts.home, err = defaultHome(); err != nil {
			return err
		}
	}
	var boot []peer.AddrInfo
	for _, s := range opts.peers {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return usageError{fmt.Errorf("--peer %q: %w", s, err)}
		}
		boot = append(boot, *ai)
	}
	firstStart := !fileExists(filepath.Join(opts.home, node.IdentityFile))
	n, err := node.Open(node.Config{
		Home: opts.home, ListenAddrs: opts.listen, Bootstrap: boot,
		DHT: true, DHTServer: true, RelayService: true, Announce: opts.announce, RelayLimits: limits, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer n.Close()
	if firstStart {
		fmt.Fprintf(out, "Created a new device identity in %s\n", opts.home)
	}
	fmt.Fprintf(out, "Relay ID: %s\n", n.ID())
	if err := n.Start(ctx); err != nil {
		return err
	}
	api, err := n.StartAPI(opts.api)
	if err != nil {
		return err
	}
	defer api.Close()
	if opts.gateway != "" {
		gw, err := n.StartGateway(opts.gateway)
		if err != nil {
			return err
		}
		defer gw.Close()
		fmt.Fprintf(out, "Link gateway at http://%s/l/<token>\n", gw.Addr())
	}
	if opts.metrics != "" {
		ms, err := startMetrics(opts.metrics, n)
		if err != nil {
			return err
		}
		defer ms.Close()
		fmt.Fprintf(out, "Metrics at http://%s%s\n", ms.Addr, node.MetricsPath)
	}
	for _, a := range n.Host().Addrs() {
		fmt.Fprintf(out, "Relaying at %s/p2p/%s\n", a, n.ID())
	}
	logger.Info("relay running", "reservations", node.RelayMaxReservations, "circuits_per_device", node.RelayMaxCircuits,
		"circuit_duration", opts.duration.String(), "circuit_bytes", limits.Data)
	fmt.Fprintln(out, "Running; press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Fprintln(out, "Stopping.")
	return nil
}

// metricsServer serves the node's metrics alone on an address of its own.
type metricsServer struct {
	Addr string
	srv  *http.Server
}

func startMetrics(addr string, n *node.Node) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+node.MetricsPath, n.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: node.GatewayHeaderTimeout}
	go srv.Serve(ln)
	return &metricsServer{Addr: ln.Addr().String(), srv: srv}, nil
}

func (m *metricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.srv.Shutdown(ctx)
}
