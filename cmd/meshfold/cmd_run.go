package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newRunCommand) }

type runOptions struct {
	home      string
	config    string // config file; "" is <home>/config.toml
	listen    []string
	peers     []string
	relays    []string
	folders   []string
	api       string
	noMDNS    bool
	dht       bool
	dhtServer bool
	maxConns  int
	relayAll  bool
	logFormat string
	logLevel  string

	flagSet func(flag string) bool // was this flag ("--listen") given? nil: none was
}

func newRunCommand() *cobra.Command {
	var opts runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run this device's node in the foreground: sync its folders with peers",
		Long: `run starts the node: it listens for peers (TCP and QUIC on port 22100 by
default, or an ephemeral port if that one is taken), finds them on the LAN by
mDNS and through known addresses, and keeps every folder of this home in sync.
The first start creates the device's identity and prints its device ID.

With --folder DIR, DIR is shared as a new folder if this home does not sync it
yet. Other commands (folder, invite, join, status) talk to the running node
through its control API on 127.0.0.1.

Settings come from the config file (<home>/config.toml, created with commented
defaults on first start; every key is in docs/config.md); flags override it.
Only one daemon may run on a home at a time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.flagSet = func(flag string) bool { return cmd.Flags().Changed(strings.TrimPrefix(flag, "--")) }
			return runRun(cmd.Context(), opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addHomeFlag(cmd, &opts.home)
	cmd.Flags().StringVar(&opts.config, "config", "", "config file (default <home>/config.toml)")
	cmd.Flags().StringArrayVar(&opts.listen, "listen", nil, "multiaddr to listen on (repeatable; default all interfaces, TCP and QUIC, port 22100)")
	cmd.Flags().StringArrayVar(&opts.peers, "peer", nil, "address of a peer to connect to, as a multiaddr ending in /p2p/<device ID> (repeatable)")
	cmd.Flags().StringArrayVar(&opts.folders, "folder", nil, "share this directory as a folder if it is not synced yet (repeatable)")
	cmd.Flags().StringVar(&opts.api, "api", "127.0.0.1:0", "loopback address of the control API")
	cmd.Flags().BoolVar(&opts.noMDNS, "no-mdns", false, "do not look for peers on the LAN")
	cmd.Flags().BoolVar(&opts.dht, "dht", false, "find peers across the internet through meshfold's DHT")
	cmd.Flags().BoolVar(&opts.dhtServer, "dht-server", false, "answer other nodes' DHT queries (always-on, reachable nodes)")
	cmd.Flags().IntVar(&opts.maxConns, "max-connections", node.MaxConns, "cap on all peer connections")
	cmd.Flags().StringArrayVar(&opts.relays, "relay", nil, "a relay ('meshfold relay') to use when not reachable directly, as a multiaddr ending in /p2p/<relay ID> (repeatable)")
	cmd.Flags().BoolVar(&opts.relayAll, "relay-always", false, "reserve relay slots at start instead of waiting until AutoNAT finds this device unreachable")
	cmd.Flags().StringVar(&opts.logFormat, "log-format", "", "text or json (default: text on a terminal, json otherwise)")
	cmd.Flags().StringVar(&opts.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runRun(ctx context.Context, opts runOptions, out, errOut io.Writer) error {
	var err error
	if opts.home == "" {
		if opts.home, err = defaultHome(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(opts.home, 0o700); err != nil {
		return fmt.Errorf("%w: %w", errHomeUnusable, err)
	}
	if err := checkWritable(opts.home); err != nil {
		return err
	}
	if opts.flagSet == nil {
		opts.flagSet = func(string) bool { return false }
	}
	cfgPath := opts.config
	if cfgPath == "" {
		cfgPath = filepath.Join(opts.home, ConfigFile)
	}
	if err := loadConfig(cfgPath, opts.config != "", &opts, opts.flagSet); err != nil {
		return usageError{err}
	}
	if opts.maxConns < 1 || opts.maxConns > maxConfigConns {
		return usageError{fmt.Errorf("--max-connections %d: want 1 to %d", opts.maxConns, maxConfigConns)}
	}
	logger, err := newLogger(errOut, opts.logFormat, opts.logLevel)
	if err != nil {
		return usageError{err}
	}
	boot, err := addrInfos("--peer", opts.peers)
	if err != nil {
		return err
	}
	relays, err := addrInfos("--relay", opts.relays)
	if err != nil {
		return err
	}
	firstStart := !fileExists(filepath.Join(opts.home, node.IdentityFile))
	n, err := node.Open(node.Config{Home: opts.home, ListenAddrs: opts.listen, Bootstrap: boot, Relays: relays, RelayAlways: opts.relayAll,
		MDNS: !opts.noMDNS, DHT: opts.dht, DHTServer: opts.dhtServer, MaxConns: opts.maxConns, Logger: logger})
	if err != nil {
		return err
	}
	defer n.Close()
	if firstStart {
		fmt.Fprintf(out, "Created a new device identity in %s\n", opts.home)
	}
	fmt.Fprintf(out, "Device ID: %s\n", n.ID())
	if err := n.Start(ctx); err != nil {
		return err
	}
	api, err := n.StartAPI(opts.api)
	if err != nil {
		return err
	}
	defer api.Close()
	for _, a := range n.Host().Addrs() {
		fmt.Fprintf(out, "Listening on %s/p2p/%s\n", a, n.ID())
	}
	if n.PausedAll() {
		fmt.Fprintln(out, "All folders are paused ('meshfold resume --all' resumes them).")
	}
	for _, dir := range opts.folders {
		dir, err := expandHome(dir)
		if err != nil {
			return err
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		if id, ok := n.FolderAt(abs); ok {
			fmt.Fprintf(out, "Syncing %s (folder %s)\n", abs, id)
		} else {
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return err
			}
			f, err := n.CreateFolder(abs, filepath.Base(abs))
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Sharing %s as a new folder %s\n", abs, f.ID())
		}
	}
	fmt.Fprintln(out, "Running; press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Fprintln(out, "Stopping.")
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// errHomeUnusable: the node home cannot be created or written.
var errHomeUnusable = errors.New("the node home is not usable")

// checkWritable fails unless a file can be created in dir.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-test-")
	if err != nil {
		return fmt.Errorf("%w: %w", errHomeUnusable, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func addrInfos(flag string, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s %q: %w", flag, s, err)}
		}
		out = append(out, *ai)
	}
	return out, nil
}
