package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfold/meshfold/node"
	"github.com/meshfold/meshfold/protocol/join"
)

// startWith starts a daemon like startDaemon, but with the given command and
// flags (relay, or run with relay flags) instead of the default run.
func startWith(t *testing.T, name string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, name: name, bin: meshfoldBinary(t), home: filepath.Join(t.TempDir(), name), logs: &bytes.Buffer{}}
	d.cmd = exec.Command(d.bin, append(args, "--home", d.home, "--log-format", "text", "--log-level", "info")...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("--- logs of %s:\n%s", d.name, d.logs.String())
		}
	})
	waitUntil(t, name+"'s control API", func() error {
		_, err := os.Stat(filepath.Join(d.home, node.APIFile))
		return err
	})
	return d
}

// TestE2ERelay runs `meshfold relay` as a process: a device configured with
// it puts a relayed address in its invitation keys, the joiner learns the
// relay from the key, and the status lists connections as direct or relayed.
func TestE2ERelay(t *testing.T) {
	bin := meshfoldBinary(t)
	out, err := exec.Command(bin, "relay", "--home", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--announce") {
		t.Fatalf("relay without --announce: err %v, output %q", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	relay := startWith(t, "relay", "relay", "--listen", addr, "--announce", addr)
	relayID := relay.status().Device
	a := startWith(t, "a", "run", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--relay", addr+"/p2p/"+relayID, "--relay-always")
	b := startDaemon(t, "b")

	dirA, dirB := t.TempDir(), filepath.Join(t.TempDir(), "b")
	write(t, dirA, "hello.txt", "hello")
	a.cli("folder", "add", dirA)
	key := a.cli("invite", folderID(t, a))
	parsed, err := join.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(parsed.Addrs), relayID+"/p2p-circuit") {
		t.Fatalf("the key carries no address through the relay: %v", parsed.Addrs)
	}
	b.cli("join", key, dirB)
	waitUntil(t, "hello.txt at b", hasContent(dirB, "hello.txt", "hello"))
	raw, err := os.ReadFile(filepath.Join(b.home, node.RelaysFile))
	if err != nil || !strings.Contains(string(raw), relayID) {
		t.Fatalf("b did not keep the relay of the key: %q %v", raw, err)
	}
	var found bool
	for _, c := range b.status().Connections {
		found = found || (c.Peer == a.status().Device && c.Addr != "")
	}
	if !found {
		t.Fatalf("b's status lists no connection to a: %+v", b.status().Connections)
	}
}
