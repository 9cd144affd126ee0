package store

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLogStore(t *testing.T) {
	db, _ := openTestDB(t)
	ls := db.LogStore("folder")
	ids := []string{"b", "a", "c\x00\xff"}
	for _, id := range ids {
		if err := ls.Put([]byte(id), []byte("op "+id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		raw, ok, err := ls.Get([]byte(id))
		if err != nil || !ok || string(raw) != "op "+id {
			t.Fatalf("Get(%q) = %q, %v, %v", id, raw, ok, err)
		}
		if has, err := ls.Has([]byte(id)); !has || err != nil {
			t.Fatalf("Has(%q) = %v, %v", id, has, err)
		}
	}
	if _, ok, err := ls.Get([]byte("absent")); ok || err != nil {
		t.Fatalf("Get(absent) = %v, %v", ok, err)
	}
	if has, err := ls.Has([]byte("absent")); has || err != nil {
		t.Fatalf("Has(absent) = %v, %v", has, err)
	}
	var seen []string
	if err := ls.ForEach(func(id, raw []byte) error {
		if !bytes.Equal(raw, []byte("op "+string(id))) {
			t.Fatalf("ForEach: %q holds %q", id, raw)
		}
		seen = append(seen, string(id))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("ForEach order %q, want %q", seen, want)
	}
	// Folders are separate, also when one ID extends another; the file
	// index of the same folder is untouched.
	for _, other := range []string{"folde", "folder2"} {
		n := 0
		if err := db.LogStore(other).ForEach(func(_, _ []byte) error { n++; return nil }); err != nil || n != 0 {
			t.Fatalf("LogStore(%q) sees %d ops, %v", other, n, err)
		}
	}
	if err := db.Folder("folder").Walk("", func(fi FileInfo) error { return errors.New("file index sees a log op") }); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	if err := ls.ForEach(func(_, _ []byte) error { return stop }); err != stop {
		t.Fatalf("ForEach with failing fn = %v", err)
	}
	// Limits.
	for name, err := range map[string]error{
		"empty id":     ls.Put(nil, []byte("x")),
		"long id":      ls.Put([]byte(strings.Repeat("i", MaxLogOpIDLength+1)), []byte("x")),
		"empty op":     ls.Put([]byte("x"), nil),
		"huge op":      ls.Put([]byte("x"), make([]byte, MaxLogOpSize+1)),
		"empty folder": db.LogStore("").Put([]byte("x"), []byte("x")),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ls.Put([]byte("max"), make([]byte, MaxLogOpSize)); err != nil {
		t.Fatalf("op of MaxLogOpSize: %v", err)
	}
}

func TestPeerAddrs(t *testing.T) {
	db, _ := openTestDB(t)
	a := [][]byte{[]byte("/ip4/10.0.0.1/tcp/4001"), []byte("/ip6/::1/udp/4001/quic-v1")}
	if err := db.PutPeerAddrs("peerB", a); err != nil {
		t.Fatal(err)
	}
	if err := db.PutPeerAddrs("peerA", a[:1]); err != nil {
		t.Fatal(err)
	}
	got, err := db.PeerAddrs("peerB")
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], a[0]) || !bytes.Equal(got[1], a[1]) {
		t.Fatalf("PeerAddrs = %q, %v", got, err)
	}
	if got, err := db.PeerAddrs("unknown"); got != nil || err != nil {
		t.Fatalf("PeerAddrs(unknown) = %q, %v", got, err)
	}
	var order []string
	if err := db.ForEachPeer(func(id string, addrs [][]byte) error {
		order = append(order, id)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"peerA", "peerB"}) {
		t.Fatalf("ForEachPeer order %v", order)
	}
	// Replace, then forget.
	if err := db.PutPeerAddrs("peerB", a[1:]); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.PeerAddrs("peerB"); len(got) != 1 || !bytes.Equal(got[0], a[1]) {
		t.Fatalf("after replace: %q", got)
	}
	if err := db.PutPeerAddrs("peerB", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.PeerAddrs("peerB"); got != nil {
		t.Fatalf("after forget: %q", got)
	}
	tooMany := make([][]byte, MaxPeerAddrs+1)
	for i := range tooMany {
		tooMany[i] = []byte("a")
	}
	for name, err := range map[string]error{
		"empty id":      db.PutPeerAddrs("", a),
		"too many":      db.PutPeerAddrs("p", tooMany),
		"empty address": db.PutPeerAddrs("p", [][]byte{{}}),
		"long address":  db.PutPeerAddrs("p", [][]byte{make([]byte, MaxPeerAddrLength+1)}),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
