package main

// The daemon's config file: TOML, <home>/config.toml unless --config names
// another. configKeys is the one table both the commented default file and
// docs/config.md are generated from (config_test.go checks they agree).

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"

	"github.com/meshfold/meshfold/node"
)

// ConfigFile is the config file's name in the node home.
const ConfigFile = "config.toml"

// maxConfigSize bounds the config file a daemon reads.
const maxConfigSize = 1 << 20

// errConfig: the config file is unreadable or holds a bad key or value.
var errConfig = errors.New("config file")

type keyKind int

const (
	kindString keyKind = iota
	kindBool
	kindStrings
	kindInt
)

// maxConfigConns bounds max_connections.
const maxConfigConns = 65536

// configKey is one key of the config file.
type configKey struct {
	name  string
	kind  keyKind
	def   string // the default as TOML
	flag  string // the run flag that overrides it
	doc   string
	check func(v any) error // validates a value of the right kind
	set   func(o *runOptions, v any)
}

var configKeys = []configKey{
	{name: "listen", kind: kindStrings, flag: "--listen",
		def:   tomlStrings(node.DefaultListenAddrs(node.DefaultPort)),
		doc:   "Multiaddrs to listen on for peers (TCP and QUIC). If the port is taken, the node falls back to an ephemeral one.",
		check: eachString(checkMultiaddr),
		set:   func(o *runOptions, v any) { o.listen = v.([]string) }},
	{name: "bootstrap", kind: kindStrings, flag: "--peer", def: "[]",
		doc:   "Peers to connect to at start, as multiaddrs ending in /p2p/ and the device ID.",
		check: eachString(checkPeerAddr),
		set:   func(o *runOptions, v any) { o.peers = v.([]string) }},
	{name: "relays", kind: kindStrings, flag: "--relay", def: "[]",
		doc:   "Circuit relays to reserve a slot on when this device is not publicly reachable, as multiaddrs ending in /p2p/ and the relay ID.",
		check: eachString(checkPeerAddr),
		set:   func(o *runOptions, v any) { o.relays = v.([]string) }},
	{name: "api", kind: kindString, flag: "--api", def: `"127.0.0.1:0"`,
		doc:   "Loopback address of the control API (port 0: any free port; the CLI finds it through api.json in the home).",
		check: func(v any) error { return checkAPIAddr(v.(string)) },
		set:   func(o *runOptions, v any) { o.api = v.(string) }},
	{name: "mdns", kind: kindBool, flag: "--no-mdns", def: "true",
		doc: "Find peers on the local network by mDNS.",
		set: func(o *runOptions, v any) { o.noMDNS = !v.(bool) }},
	{name: "dht", kind: kindBool, flag: "--dht", def: "false",
		doc: "Find peers across the internet through meshfold's DHT.",
		set: func(o *runOptions, v any) { o.dht = v.(bool) }},
	{name: "dht_server", kind: kindBool, flag: "--dht-server", def: "false",
		doc: "Answer other nodes' DHT queries (for always-on, publicly reachable nodes).",
		set: func(o *runOptions, v any) { o.dhtServer = v.(bool) }},
	{name: "folders", kind: kindStrings, flag: "--folder", def: "[]",
		doc: "Directories to share as new folders at start if this home does not sync them yet (`~/` is the home directory).",
		check: eachString(func(s string) error {
			if s == "" {
				return errors.New("empty directory name")
			}
			return nil
		}),
		set: func(o *runOptions, v any) { o.folders = v.([]string) }},
	{name: "max_connections", kind: kindInt, flag: "--max-connections", def: fmt.Sprint(node.MaxConns),
		doc: "Cap on all peer connections; the connection manager trims idle ones at 3/4 of it.",
		check: func(v any) error {
			if n := v.(int); n < 1 || n > maxConfigConns {
				return fmt.Errorf("%d: want 1 to %d", n, maxConfigConns)
			}
			return nil
		},
		set: func(o *runOptions, v any) { o.maxConns = v.(int) }},
	{name: "log_format", kind: kindString, flag: "--log-format", def: `""`,
		doc: `"text" or "json"; "" is text on a terminal and json otherwise.`,
		check: func(v any) error {
			if s := v.(string); s != "" && s != "text" && s != "json" {
				return fmt.Errorf("%q: want \"text\", \"json\" or \"\"", s)
			}
			return nil
		},
		set: func(o *runOptions, v any) { o.logFormat = v.(string) }},
	{name: "log_level", kind: kindString, flag: "--log-level", def: `"info"`,
		doc: `"debug", "info", "warn" or "error".`,
		check: func(v any) error {
			if s := v.(string); !slices.Contains([]string{"debug", "info", "warn", "error"}, s) {
				return fmt.Errorf("%q: want debug, info, warn or error", s)
			}
			return nil
		},
		set: func(o *runOptions, v any) { o.logLevel = v.(string) }},
}

func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func eachString(check func(string) error) func(any) error {
	return func(v any) error {
		for _, s := range v.([]string) {
			if err := check(s); err != nil {
				return err
			}
		}
		return nil
	}
}

func checkMultiaddr(s string) error {
	if _, err := ma.NewMultiaddr(s); err != nil {
		return fmt.Errorf("%q is not a multiaddr: %w", s, err)
	}
	return nil
}

func checkPeerAddr(s string) error {
	if _, err := peer.AddrInfoFromString(s); err != nil {
		return fmt.Errorf("%q is not a multiaddr ending in /p2p/<ID>: %w", s, err)
	}
	return nil
}

func checkAPIAddr(s string) error {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q: only loopback addresses are allowed", s)
	}
	return nil
}

// defaultConfigText is the commented default config file written on first start.
func defaultConfigText() string {
	var b strings.Builder
	b.WriteString("# meshfold daemon configuration (TOML). Every key is optional; the value\n")
	b.WriteString("# shown is the default. Flags of 'meshfold run' override these keys.\n")
	b.WriteString("# Every key and its default are documented in docs/config.md.\n")
	for _, k := range configKeys {
		fmt.Fprintf(&b, "\n# %s (flag %s)\n# %s = %s\n", k.doc, k.flag, k.name, k.def)
	}
	return b.String()
}

// configDoc is docs/config.md.
func configDoc() string {
	var b strings.Builder
	b.WriteString(`# The daemon's config file

` + "`meshfold run`" + ` reads ` + "`config.toml`" + ` in the node home (or the file named by ` + "`--config`" + `).
On first start, if the file is absent, it is created with every key below commented out
at its default. Flags given on the command line override the file. An unknown key, a
value of the wrong type or a bad value stops the daemon with a one-line error naming
the key (exit code 2).

This page is generated from the same table as the default file (` + "`cmd/meshfold/config.go`" + `);
a test checks they agree.

| key | type | default | flag | meaning |
| --- | --- | --- | --- | --- |
`)
	kinds := map[keyKind]string{kindString: "string", kindBool: "bool", kindStrings: "list of strings", kindInt: "integer"}
	for _, k := range configKeys {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | `%s` | %s |\n", k.name, kinds[k.kind], k.def, k.flag, k.doc)
	}
	b.WriteString("\nExample:\n\n```toml\nlisten = [\"/ip4/0.0.0.0/tcp/22100\"]\napi = \"127.0.0.1:22101\"\nmdns = false\nbootstrap = [\"/ip4/192.0.2.7/tcp/22100/p2p/12D3KooW...\"]\nfolders = [\"~/Meshfold\"]\n```\n")
	return b.String()
}

// loadConfig applies the config file at path to o (keys whose flag was not
// given). A missing file at the default place is created with the commented
// defaults; a missing file named by --config is an error.
func loadConfig(path string, explicit bool, o *runOptions, flagSet func(flag string) bool) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		if err := os.WriteFile(path, []byte(defaultConfigText()), 0o600); err != nil {
			return fmt.Errorf("%w %s: %w", errConfig, path, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	if len(raw) > maxConfigSize {
		return fmt.Errorf("%w %s: larger than %d bytes", errConfig, path, maxConfigSize)
	}
	vals, err := parseConfig(raw)
	if err != nil {
		return fmt.Errorf("%w %s: %w", errConfig, path, err)
	}
	for _, k := range configKeys {
		if v, ok := vals[k.name]; ok && !flagSet(k.flag) {
			k.set(o, v)
		}
	}
	return nil
}

// parseConfig decodes and checks a config file: every key known, of its
// kind, with a good value. The error names the first bad key.
func parseConfig(raw []byte) (map[string]any, error) {
	var doc map[string]any
	if err := toml.Unmarshal(raw, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("line %d column %d: %s", row, col, oneLine(strings.TrimPrefix(de.Error(), "toml: ")))
		}
		return nil, errors.New(oneLine(err.Error()))
	}
	names := make([]string, 0, len(doc))
	for name := range doc {
		names = append(names, name)
	}
	slices.Sort(names)
	out := map[string]any{}
	for _, name := range names {
		i := slices.IndexFunc(configKeys, func(k configKey) bool { return k.name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown key %q (see docs/config.md)", name)
		}
		k := configKeys[i]
		v, err := k.value(doc[name])
		if err == nil && k.check != nil {
			err = k.check(v)
		}
		if err != nil {
			return nil, fmt.Errorf("key %q: %s", name, oneLine(err.Error()))
		}
		out[name] = v
	}
	return out, nil
}

// value converts a decoded TOML value to the key's kind.
func (k configKey) value(v any) (any, error) {
	switch k.kind {
	case kindString:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("want a string, got %s", tomlType(v))
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("want true or false, got %s", tomlType(v))
	case kindInt:
		if n, ok := v.(int64); ok && n >= -maxConfigConns-1 && n <= maxConfigConns+1 {
			return int(n), nil
		} else if ok {
			return nil, fmt.Errorf("%d is out of range", n)
		}
		return nil, fmt.Errorf("want an integer, got %s", tomlType(v))
	case kindStrings:
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("want a list of strings, got %s", tomlType(v))
		}
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, got a list holding %s", tomlType(e))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown kind")
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// expandHome turns a leading ~/ into the user's home directory.
func expandHome(p string) (string, error) {
	rest, ok := strings.CutPrefix(p, "~/")
	if !ok && p != "~" {
		return p, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, rest), nil
}

// oneLine escapes line breaks and other control characters, so an error
// quoting a bad input stays one line.
func oneLine(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
