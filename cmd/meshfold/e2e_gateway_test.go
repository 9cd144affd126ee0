package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfold/meshfold/node"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestE2ERelayGatewayWitness runs `meshfold relay --gateway --metrics` as a
// process, links it as a device of a's user (device add/link), declares it
// the lock witness with `meshfold witnesses`, takes a lock it grants, and
// downloads a share link through its gateway until the limit refuses.
func TestE2ERelayGatewayWitness(t *testing.T) {
	addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	relay := startWith(t, "relay", "relay", "--listen", addr, "--announce", addr, "--gateway", gw, "--metrics", metrics)
	relayID := relay.status().Device
	a := startDaemon(t, "a")
	dirA := t.TempDir()
	write(t, dirA, "report.txt", "quarterly report")
	a.cli("folder", "add", dirA)

	var dk struct{ Key string }
	if err := json.Unmarshal([]byte(a.cli("device", "add", relayID, "--json")), &dk); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "relay-folders")
	relay.cli("device", "link", dk.Key, base)
	waitUntil(t, "report.txt on the relay", hasContent(filepath.Join(base, filepath.Base(dirA)), "report.txt", "quarterly report"))

	if out, err := a.try("witnesses", dirA, "NOSUCHDEVICE"); err == nil || !strings.Contains(out, "not a device of this folder") {
		t.Fatalf("witnesses with an unknown device: %v %q", err, out)
	}
	a.cli("witnesses", dirA, relayID)
	var rep node.WitnessReport
	if err := json.Unmarshal([]byte(a.cli("witnesses", dirA, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Quorum != 1 || len(rep.Witnesses) != 1 || rep.Witnesses[0].Device != relayID {
		t.Fatalf("witnesses: %+v", rep)
	}
	var li node.LockInfo
	if err := json.Unmarshal([]byte(a.cli("lock", filepath.Join(dirA, "report.txt"), "--json")), &li); err != nil {
		t.Fatal(err)
	}
	if li.State != node.LockGranted || li.Acks != 1 {
		t.Fatalf("lock with the relay witness: %+v", li)
	}

	var link node.LinkInfo
	if err := json.Unmarshal([]byte(a.cli("link", "create", filepath.Join(dirA, "report.txt"), "--max-downloads", "1", "--json")), &link); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the link on the relay", func() error {
		var ls []node.LinkInfo
		if err := json.Unmarshal([]byte(relay.cli("link", "list", "--all", "--json")), &ls); err != nil || len(ls) != 1 {
			return fmt.Errorf("%d links, %v", len(ls), err)
		}
		return nil
	})
	url := "http://" + gw + "/l/" + link.Token
	if code, body := httpGet(t, url); code != 200 || !strings.Contains(body, "report.txt") {
		t.Fatalf("page: %d %q", code, body)
	}
	if code, body := httpGet(t, url+"/file"); code != 200 || body != "quarterly report" {
		t.Fatalf("download: %d %q", code, body)
	}
	if code, body := httpGet(t, url+"/file"); code != 410 || !strings.Contains(body, "download limit") {
		t.Fatalf("second download: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+metrics+node.MetricsPath); code != 200 ||
		!strings.Contains(body, `meshfold_gateway_requests_total{code="410"} 1`) || !strings.Contains(body, "meshfold_gateway_sent_bytes_total 16") {
		t.Fatalf("metrics: %d, gateway lines missing", code)
	}
	if _, body := httpGet(t, "http://"+metrics+node.MetricsPath); !strings.Contains(body, "libp2p_relaysvc_status 1") {
		t.Fatal("metrics: no relay service status")
	}
}
