package wire

import (
	"context"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ServeFunc serves one stream from remote. It answers request-level failures
// with an Error frame and returns nil; it returns an error only when the
// exchange itself broke.
type ServeFunc func(ctx context.Context, rw io.ReadWriter, remote peer.ID) error

// Handle makes h answer protocol id with serve, one call per stream, bounded
// by timeout (0: none; the server then bounds itself, e.g. by idle time). A
// broken exchange resets the stream; otherwise it is closed, so an Error
// frame written just before always reaches the client.
func Handle(h host.Host, id protocol.ID, timeout time.Duration, serve ServeFunc) {
	h.SetStreamHandler(id, func(st network.Stream) {
		ctx := context.Background()
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		if err := serve(ctx, st, st.Conn().RemotePeer()); err != nil {
			_ = st.Reset()
			return
		}
		_ = st.Close()
	})
}
