package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// Event stream limits and timings.
const (
	// eventBuffer is how many events a subscriber may fall behind by; a
	// slower one is dropped (its stream ends; the client reconnects and gets
	// a fresh snapshot).
	eventBuffer = 256
	// eventPollInterval is how often folder states are compared with the
	// last ones sent, while someone listens.
	eventPollInterval = 250 * time.Millisecond
	// sseKeepAlive is how often an idle event stream gets a comment line, so
	// proxies and clients see it alive.
	sseKeepAlive = 15 * time.Second
)

// Event types of GET /v1/events (docs/api.md).
const (
	EventSnapshot         = "snapshot"          // first event of a stream: the whole StatusReport
	EventFolderAdded      = "folder-added"      // Folder set
	EventFolderRemoved    = "folder-removed"    // Folder set (its last report)
	EventFolderState      = "folder-state"      // State changed (idle, syncing, paused, error...)
	EventFolderProgress   = "folder-progress"   // NeedFiles, NeedBytes, Applied, Candidates or a scan's progress changed
	EventConflicts        = "conflicts"         // the folder's conflict copies changed
	EventError            = "folder-error"      // a folder entered the error state; Folder.Err says why
	EventPeerConnected    = "peer-connected"    // Peer set
	EventPeerDisconnected = "peer-disconnected" // Peer set
)

// Event is one message of the event stream.
type Event struct {
	Type     string        `json:"type"`
	Time     time.Time     `json:"time"`
	Folder   *FolderReport `json:"folder,omitempty"`
	Peer     string        `json:"peer,omitempty"`
	Snapshot *StatusReport `json:"snapshot,omitempty"`
}

type eventHub struct {
	mu   sync.Mutex
	subs map[chan Event]bool

	// pollMu guards last: the folder reports the poller compares with. nil
	// while nobody listens; a new listener's subscription sets it first.
	pollMu sync.Mutex
	last   map[string]FolderReport
}

func newEventHub() *eventHub { return &eventHub{subs: map[chan Event]bool{}} }

// subscribe returns a channel of events, closed when the subscriber falls
// too far behind or cancels.
func (h *eventHub) subscribe() (<-chan Event, func()) {
	ch := make(chan Event, eventBuffer)
	h.mu.Lock()
	h.subs[ch] = true
	h.mu.Unlock()
	return ch, func() { h.drop(ch) }
}

func (h *eventHub) drop(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[ch] {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *eventHub) listening() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

func (h *eventHub) publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// startEvents feeds the hub: peer connections from the host, folder changes
// by comparing reports while someone listens.
func (n *Node) startEvents() {
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(net network.Network, c network.Conn) {
			if len(net.ConnsToPeer(c.RemotePeer())) == 1 {
				n.events.publish(Event{Type: EventPeerConnected, Peer: c.RemotePeer().String()})
			}
		},
		DisconnectedF: func(net network.Network, c network.Conn) {
			if net.Connectedness(c.RemotePeer()) != network.Connected {
				n.events.publish(Event{Type: EventPeerDisconnected, Peer: c.RemotePeer().String()})
			}
		},
		ListenF:      func(network.Network, ma.Multiaddr) {},
		ListenCloseF: func(network.Network, ma.Multiaddr) {},
	})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(eventPollInterval)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			}
			h := n.events
			h.pollMu.Lock()
			if !h.listening() {
				h.last = nil
			} else {
				h.last = n.diffFolders(h.last)
			}
			h.pollMu.Unlock()
		}
	}()
}

// subscribeEvents subscribes to the hub after making sure the poller has a
// baseline taken before the subscriber's snapshot, so no change falls between.
func (n *Node) subscribeEvents() (<-chan Event, func()) {
	h := n.events
	h.pollMu.Lock()
	defer h.pollMu.Unlock()
	if h.last == nil {
		h.last = n.diffFolders(nil)
	}
	return h.subscribe()
}

// diffFolders publishes what changed since last and returns the new reports.
func (n *Node) diffFolders(last map[string]FolderReport) map[string]FolderReport {
	now := map[string]FolderReport{}
	for _, f := range n.folderReports() {
		now[f.ID] = f
	}
	if last == nil {
		return now
	}
	for _, f := range now {
		prev, ok := last[f.ID]
		if !ok {
			n.events.publish(Event{Type: EventFolderAdded, Folder: &f})
			continue
		}
		if prev.State != f.State || prev.Err != f.Err {
			n.events.publish(Event{Type: EventFolderState, Folder: &f})
			if f.State == "error" && f.Err != "" {
				n.events.publish(Event{Type: EventError, Folder: &f})
			}
		}
		if prev.NeedFiles != f.NeedFiles || prev.NeedBytes != f.NeedBytes || prev.Applied != f.Applied || prev.Candidates != f.Candidates ||
			prev.Scanning != f.Scanning || prev.ScanHashed != f.ScanHashed {
			n.events.publish(Event{Type: EventFolderProgress, Folder: &f})
		}
		if !slices.Equal(prev.ConflictNames, f.ConflictNames) {
			n.events.publish(Event{Type: EventConflicts, Folder: &f})
		}
	}
	for id, f := range last {
		if _, ok := now[id]; !ok {
			n.events.publish(Event{Type: EventFolderRemoved, Folder: &f})
		}
	}
	return now
}

// events serves GET /v1/events: server-sent events, a snapshot first.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		apiError(w, http.StatusInternalServerError, fmt.Errorf("streaming unsupported"))
		return
	}
	ch, cancel := a.n.subscribeEvents()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	snap := a.n.Report()
	if writeSSE(w, Event{Type: EventSnapshot, Time: time.Now().UTC(), Snapshot: &snap}) != nil {
		return
	}
	fl.Flush()
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.closing:
			return
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case e, ok := <-ch:
			if !ok {
				return // fell behind: the client reconnects
			}
			if writeSSE(w, e) != nil {
				return
			}
		}
		fl.Flush()
	}
}

func writeSSE(w http.ResponseWriter, e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
	return err
}
