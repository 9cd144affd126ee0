package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newRunCommand) }

type runOptions struct {
	home      string
	listen    []string
	peers     []string
	folder    string
	api       string
	noMDNS    bool
	dht       bool
	relays    []string
	relayAll  bool
	logFormat string
	logLevel  string
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
through its control API on 127.0.0.1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd.Context(), opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addHomeFlag(cmd, &opts.home)
	cmd.Flags().StringArrayVar(&opts.listen, "listen", nil, "multiaddr to listen on (repeatable; default all interfaces, TCP and QUIC, port 22100)")
	cmd.Flags().StringArrayVar(&opts.peers, "peer", nil, "address of a peer to connect to, as a multiaddr ending in /p2p/<device ID> (repeatable)")
	cmd.Flags().StringVar(&opts.folder, "folder", "", "share this directory as a folder if it is not synced yet")
	cmd.Flags().StringVar(&opts.api, "api", "127.0.0.1:0", "loopback address of the control API")
	cmd.Flags().BoolVar(&opts.noMDNS, "no-mdns", false, "do not look for peers on the LAN")
	cmd.Flags().BoolVar(&opts.dht, "dht", false, "find peers across the internet through meshfold's DHT")
	cmd.Flags().StringArrayVar(&opts.relays, "relay", nil, "a relay ('meshfold relay') to use when not reachable directly, as a multiaddr ending in /p2p/<relay ID> (repeatable)")
	cmd.Flags().BoolVar(&opts.relayAll, "relay-always", false, "reserve relay slots at start instead of waiting until AutoNAT finds this device unreachable")
	cmd.Flags().StringVar(&opts.logFormat, "log-format", "", "text or json (default: text on a terminal, json otherwise)")
	cmd.Flags().StringVar(&opts.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runRun(ctx context.Context, opts runOptions, out, errOut io.Writer) error {
	logger, err := newLogger(errOut, opts.logFormat, opts.logLevel)
	if err != nil {
		return usageError{err}
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
	var relays []peer.AddrInfo
	for _, s := range opts.relays {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return usageError{fmt.Errorf("--relay %q: %w", s, err)}
		}
		relays = append(relays, *ai)
	}
	firstStart := !fileExists(filepath.Join(opts.home, node.IdentityFile))
	n, err := node.Open(node.Config{Home: opts.home, ListenAddrs: opts.listen, Bootstrap: boot, MDNS: !opts.noMDNS, DHT: opts.dht,
		Relays: relays, RelayAlways: opts.relayAll, Logger: logger})
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
	if opts.folder != "" {
		abs, err := filepath.Abs(opts.folder)
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
