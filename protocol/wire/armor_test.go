package wire

import (
	"bytes"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestArmorRoundTripAndRefusals(t *testing.T) {
	body := []byte("an invitation's fields")
	s := Armor("mftest1-", body)
	if !strings.HasPrefix(s, "mftest1-") || strings.ToLower(s) != s {
		t.Fatalf("armored = %q", s)
	}
	got, err := Unarmor("mftest1-", "  "+s+"\n", 1<<10)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("Unarmor = %q, %v", got, err)
	}
	flipped := []byte(s)
	flipped[len(s)-3] ^= 1 // a typo inside the checksum or body
	for name, c := range map[string]struct{ s, want string }{
		"other prefix": {"mfother-" + s[8:], "does not start"},
		"typo":         {string(flipped), ""},
		"truncated":    {s[:len(s)-4], ""},
		"not base32":   {"mftest1-!!!!", "not base32"},
		"too long":     {s + strings.Repeat("a", 1<<10), "characters"},
	} {
		if _, err := Unarmor("mftest1-", c.s, 1<<10); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, c.want)
		}
	}
}

func TestAddrInfosKeepOrderAndGroupByDevice(t *testing.T) {
	a, _ := peer.Decode("12D3KooWAP5JMqdCC75aWMdYr9NW8UH9Zftp7eghHqTbkvtTEoD7")
	b, _ := peer.Decode("12D3KooWK4baf4kaLvP53V6m7DKoUjXFDtzSmBnzFJm4wiLK3AL8")
	m := func(s string) ma.Multiaddr { x, _ := ma.NewMultiaddr(s); return x }
	in := []peer.AddrInfo{
		{ID: b, Addrs: []ma.Multiaddr{m("/ip4/10.0.0.2/tcp/1"), m("/ip4/10.0.0.2/udp/1/quic-v1")}},
		{ID: a, Addrs: []ma.Multiaddr{m("/ip4/10.0.0.1/tcp/1")}},
	}
	var e Encoder
	e.AddrInfos(in, 2, 256) // the cap keeps the first two addresses: both of b's
	d := NewDecoder(e.Out())
	out := d.AddrInfos(2, 256)
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].ID != b || len(out[0].Addrs) != 2 {
		t.Fatalf("decoded %v", out)
	}
	var e2 Encoder
	e2.AddrInfos(in, 16, 256)
	d2 := NewDecoder(e2.Out())
	out = d2.AddrInfos(16, 256)
	if d2.Finish() != nil || len(out) != 2 || out[0].ID != b || out[1].ID != a {
		t.Fatalf("order not kept: %v", out)
	}
}

func FuzzUnarmor(f *testing.F) {
	var e Encoder
	e.AddrInfos(nil, 4, 64)
	f.Add(Armor("mftest1-", e.Out()))
	f.Add(Armor("mftest1-", []byte{3, 1, 2, 3}))
	f.Add("mftest1-")
	f.Fuzz(func(t *testing.T, s string) {
		body, err := Unarmor("mftest1-", s, 1<<10)
		if err != nil {
			return
		}
		if again, err := Unarmor("mftest1-", Armor("mftest1-", body), 1<<12); err != nil || !bytes.Equal(again, body) {
			t.Fatalf("round trip of an accepted body failed: %v", err)
		}
		d := NewDecoder(body)
		infos := d.AddrInfos(4, 64) // must not panic on any body
		for _, ai := range infos {
			if ai.ID == "" {
				t.Fatal("a decoded device without an ID")
			}
		}
	})
}
