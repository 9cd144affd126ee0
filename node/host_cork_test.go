package node

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// countingConn counts the writes that reach it.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// corkedPair returns the two ends of a corked TLS session over an in-memory
// pipe, and the counter of the writes the client end makes to the pipe.
func corkedPair(t *testing.T) (client, server sec.SecureConn, clientWrites *atomic.Int64) {
	t.Helper()
	keyC, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyS, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	serverID, err := peer.IDFromPrivateKey(keyS)
	if err != nil {
		t.Fatal(err)
	}
	trC, err := newCorkedTLS(libp2ptls.ID, keyC, nil)
	if err != nil {
		t.Fatal(err)
	}
	trS, err := newCorkedTLS(libp2ptls.ID, keyS, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	ca := &countingConn{Conn: a}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var serr error
	var wg sync.WaitGroup
	wg.Go(func() { server, serr = trS.SecureInbound(ctx, b, "") })
	client, err = trC.SecureOutbound(ctx, ca, serverID)
	wg.Wait()
	if err != nil || serr != nil {
		t.Fatalf("handshake: client %v, server %v", err, serr)
	}
	// Closing the pipe first: a TLS close would wait 5 s to send its alert
	// to a peer that no longer reads.
	t.Cleanup(func() { a.Close(); b.Close(); client.Close(); server.Close() })
	return client, server, &ca.writes
}

// One Write of the secured connection reaches the socket in as few writes
// as its size over corkMaxBuffer (crypto/tls alone makes one per 16 KiB
// record: 64 for 1 MiB), the bytes arrive intact, and both directions
// flow at once.
func TestCorkedTLSWritesRecordsTogether(t *testing.T) {
	client, server, writes := corkedPair(t)
	up := randomBytes(80, 1<<20)
	down := randomBytes(81, 3<<20/2)
	var gotUp, gotDown []byte
	var upErr, downErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		gotUp = make([]byte, len(up))
		_, upErr = io.ReadFull(server, gotUp)
		if upErr == nil {
			_, upErr = server.Write(down)
		}
	})
	wg.Go(func() {
		gotDown = make([]byte, len(down))
		_, downErr = io.ReadFull(client, gotDown)
	})
	before := writes.Load()
	if _, err := client.Write(up); err != nil {
		t.Fatal(err)
	}
	n := writes.Load() - before
	wg.Wait()
	if upErr != nil || downErr != nil {
		t.Fatalf("reading: %v, %v", upErr, downErr)
	}
	if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		t.Fatal("bytes changed on the way")
	}
	if limit := int64(len(up)/corkMaxBuffer + 1); n > limit {
		t.Fatalf("1 MiB written with %d socket writes, want at most %d", n, limit)
	}
}
