package main

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshfold/meshfold/node"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/config.md from the key table")

// TestConfigDocMatchesTable: docs/config.md is what the key table generates.
func TestConfigDocMatchesTable(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "config.md")
	if *updateDocs {
		if err := os.WriteFile(path, []byte(configDoc()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != configDoc() {
		t.Fatal("docs/config.md differs from the key table; run: go test ./cmd/meshfold -run TestConfigDocMatchesTable -update")
	}
	for _, k := range configKeys {
		if !strings.Contains(string(got), "| `"+k.name+"` |") {
			t.Errorf("docs/config.md lacks key %s", k.name)
		}
	}
}

// TestDefaultConfigFileIsTheDefaults: the commented default file, with every
// key uncommented, parses and gives exactly the daemon's defaults; as written
// (all commented) it sets nothing.
func TestDefaultConfigFileIsTheDefaults(t *testing.T) {
	text := defaultConfigText()
	vals, err := parseConfig([]byte(text))
	if err != nil || len(vals) != 0 {
		t.Fatalf("commented default file: %v, %v", vals, err)
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		for _, k := range configKeys {
			if strings.HasPrefix(l, "# "+k.name+" = ") {
				l = strings.TrimPrefix(l, "# ")
			}
		}
		lines = append(lines, l)
	}
	vals, err = parseConfig([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != len(configKeys) {
		t.Fatalf("uncommented default file sets %d keys, the table has %d", len(vals), len(configKeys))
	}
	// The flags' defaults: what runRun uses when neither file nor flag says.
	var flagDefaults runOptions
	cmd := newRunCommand()
	flagDefaults.api, _ = cmd.Flags().GetString("api")
	flagDefaults.logLevel, _ = cmd.Flags().GetString("log-level")
	flagDefaults.maxConns, _ = cmd.Flags().GetInt("max-connections")
	flagDefaults.listen = node.DefaultListenAddrs(node.DefaultPort) // empty flag means these
	var fromFile runOptions
	for _, k := range configKeys {
		k.set(&fromFile, vals[k.name])
	}
	if fromFile.api != flagDefaults.api || fromFile.logLevel != flagDefaults.logLevel || !slices.Equal(fromFile.listen, flagDefaults.listen) ||
		fromFile.maxConns != flagDefaults.maxConns || fromFile.noMDNS || fromFile.dht || fromFile.dhtServer || fromFile.logFormat != "" ||
		len(fromFile.peers)+len(fromFile.relays)+len(fromFile.folders) != 0 {
		t.Fatalf("default file gives %+v; the flags' defaults are %+v", fromFile, flagDefaults)
	}
}

func TestConfigBadInputNamesTheKey(t *testing.T) {
	cases := []struct{ text, want string }{
		{`listn = []`, `unknown key "listn"`},
		{`mdns = "yes"`, `key "mdns": want true or false, got a string`},
		{`listen = "/ip4/0.0.0.0/tcp/1"`, `key "listen": want a list of strings, got a string`},
		{`listen = ["/ip4/0.0.0.0/tcp/1", 5]`, `key "listen": want a list of strings, got a list holding an integer`},
		{`listen = ["not an address"]`, `key "listen": "not an address" is not a multiaddr`},
		{`bootstrap = ["/ip4/127.0.0.1/tcp/1"]`, `key "bootstrap": "/ip4/127.0.0.1/tcp/1" is not a multiaddr ending in /p2p/<ID>`},
		{`relays = ["x"]`, `key "relays"`},
		{`api = "0.0.0.0:8080"`, `key "api": "0.0.0.0:8080": only loopback addresses are allowed`},
		{`api = "nonsense"`, `key "api": "nonsense" is not host:port`},
		{`log_level = "loud"`, `key "log_level": "loud": want debug, info, warn or error`},
		{`log_format = "xml"`, `key "log_format"`},
		{`folders = [""]`, `key "folders": empty directory name`},
		{`max_connections = 0`, `key "max_connections": 0: want 1 to 65536`},
		{`max_connections = 99999999999`, `key "max_connections": 99999999999 is out of range`},
		{`max_connections = "10"`, `key "max_connections": want an integer, got a string`},
		{`[limits]` + "\nx = 1", `unknown key "limits"`},
		{`listen = [`, `line 1 column`},
	}
	for _, c := range cases {
		_, err := parseConfig([]byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.text, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is not one line: %q", c.text, err)
		}
	}
}

// TestConfigFlagsOverrideFile: a key applies unless its flag was given.
func TestConfigFlagsOverrideFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(path, []byte("api = \"127.0.0.1:4000\"\nmdns = false\nlog_level = \"debug\"\n"), 0o600)
	o := runOptions{api: "127.0.0.1:5000", logLevel: "info"}
	given := func(flag string) bool { return flag == "--api" }
	if err := loadConfig(path, true, &o, given); err != nil {
		t.Fatal(err)
	}
	if o.api != "127.0.0.1:5000" || !o.noMDNS || o.logLevel != "debug" {
		t.Fatalf("got %+v: want the --api flag kept, mdns off and log level debug from the file", o)
	}
	// A missing file named by --config is an error; at the default place it is created.
	if err := loadConfig(filepath.Join(t.TempDir(), "absent.toml"), true, &o, given); err == nil {
		t.Fatal("a missing --config file was accepted")
	}
	def := filepath.Join(t.TempDir(), ConfigFile)
	if err := loadConfig(def, false, &o, given); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(def); string(b) != defaultConfigText() {
		t.Fatal("the default config file was not created with the commented defaults")
	}
}
