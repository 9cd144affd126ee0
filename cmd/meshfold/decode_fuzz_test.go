package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/meshfold/meshfold/node"
)

// FuzzParseConfig: any config text gives a clean error or values of the
// right kinds for known keys only; never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add(defaultConfigText())
	f.Add("listen = [\"/ip4/127.0.0.1/tcp/1\"]\nmdns = false\nmax_connections = 10\n")
	for _, s := range []string{`listn = []`, `mdns = "yes"`, `listen = ["x", 5]`, `api = "0.0.0.0:1"`, `[limits]` + "\nx = 1", `listen = [`, `max_connections = -9`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		vals, err := parseConfig([]byte(text))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for name, v := range vals {
			var k *configKey
			for i := range configKeys {
				if configKeys[i].name == name {
					k = &configKeys[i]
				}
			}
			if k == nil {
				t.Fatalf("unknown key %q accepted", name)
			}
			var o runOptions
			k.set(&o, v) // panics on a value of the wrong kind
		}
	})
}

// FuzzReadSSE: any bytes from the event stream give events or a clean error.
func FuzzReadSSE(f *testing.F) {
	f.Add("event: snapshot\ndata: {\"type\":\"snapshot\",\"snapshot\":{\"device\":\"d\"}}\n\n: keep-alive\n\n")
	f.Add("data: {\"type\":\"peer-connected\",\"peer\":\"p\"}\n\ndata: not json\n\n")
	f.Add("data: {\"type\":\"folder-state\",\"folder\":{\"id\":\"x\",\"State\":\"paused\"}}\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		err := readSSE(strings.NewReader(stream), func(node.Event) error { return nil })
		if err == nil {
			t.Fatal("a stream ended without errDaemonGone")
		}
	})
}

// TestReadSSE: the daemon's format decodes, keep-alives are skipped, a
// broken event is an error, and the end of the stream is errDaemonGone.
func TestReadSSE(t *testing.T) {
	var got []node.Event
	collect := func(e node.Event) error { got = append(got, e); return nil }
	stream := "event: snapshot\ndata: {\"type\":\"snapshot\",\"snapshot\":{\"device\":\"d\"}}\n\n: keep-alive\n\nevent: peer-connected\ndata: {\"type\":\"peer-connected\",\"peer\":\"p\"}\n\n"
	if err := readSSE(strings.NewReader(stream), collect); !errors.Is(err, errDaemonGone) {
		t.Fatalf("end of stream: %v", err)
	}
	if len(got) != 2 || got[0].Snapshot == nil || got[0].Snapshot.Device != "d" || got[1].Peer != "p" {
		t.Fatalf("events %+v", got)
	}
	if err := readSSE(strings.NewReader("data: {oops\n\n"), collect); err == nil || errors.Is(err, errDaemonGone) {
		t.Fatalf("a broken event: %v", err)
	}
}
