package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/meshfold/meshfold/node"
)

// maxSSELine bounds one line of the event stream the CLI reads (a snapshot
// of many folders is one line).
const maxSSELine = 16 << 20

// errDaemonGone: the event stream ended because the daemon stopped.
var errDaemonGone = errors.New("the daemon closed the event stream (stopped?)")

// events opens the daemon's event stream and calls fn with each event until
// ctx ends (nil) or the stream does (errDaemonGone).
func (c *client) events(ctx context.Context, fn func(node.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+c.info.Addr+"/v1/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.info.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req) // no timeout: the stream lasts
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w (%v)", errNoDaemon, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	err = readSSE(resp.Body, fn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// readSSE decodes a server-sent-events stream of node.Event until it ends
// (errDaemonGone), fn fails, or the stream is malformed.
func readSSE(r io.Reader, fn func(node.Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSSELine)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				continue
			}
			var e node.Event
			if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
				return fmt.Errorf("bad event from the daemon: %w", err)
			}
			data.Reset()
			if err := fn(e); err != nil {
				return err
			}
		case strings.HasPrefix(line, "data:"):
			if data.Len()+len(line) > maxSSELine {
				return fmt.Errorf("bad event from the daemon: longer than %d bytes", maxSSELine)
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
		// "event:" repeats the JSON's type; ":" lines are keep-alives.
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the event stream: %w", err)
	}
	return errDaemonGone
}

// watchStatus follows the event stream: progress bars on a terminal, one
// line per event otherwise (JSON lines with asJSON).
func watchStatus(ctx context.Context, c *client, w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		return c.events(ctx, func(e node.Event) error { return enc.Encode(e) })
	}
	if !isTerminal(w) {
		return c.events(ctx, func(e node.Event) error {
			fmt.Fprintln(w, eventLine(e, false))
			return nil
		})
	}
	color := useColor(w)
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	bars := map[string]*progressBar{}
	err := c.events(ctx, func(e node.Event) error {
		if e.Snapshot != nil {
			renderStatus(p, *e.Snapshot, color)
			for _, f := range e.Snapshot.Folders {
				trackProgress(p, bars, f)
			}
			return nil
		}
		if e.Type != node.EventFolderProgress { // the bar shows progress
			fmt.Fprintln(p, eventLine(e, color))
		}
		if e.Folder != nil {
			trackProgress(p, bars, *e.Folder)
		}
		return nil
	})
	for _, b := range bars {
		b.bar.Abort(false)
	}
	p.Shutdown()
	return err
}

// progressBar follows one folder's transfer or scan: its total is the most bytes
// still to go since the bar started.
type progressBar struct {
	bar   *mpb.Bar
	total int64
}

// trackProgress keeps a folder's bars up to date: one for its transfers
// (bytes still needed) and one for a running scan (bytes hashed).
func trackProgress(p *mpb.Progress, bars map[string]*progressBar, f node.FolderReport) {
	need := f.NeedBytes
	if f.NeedFiles == 0 || f.Paused {
		need = -1
	}
	trackBar(p, bars, f.ID, shortID(f.ID), need)
	scanLeft := f.ScanBytes - f.ScanHashed
	if !f.Scanning || f.Paused {
		scanLeft = -1
	}
	trackBar(p, bars, f.ID+"/scan", shortID(f.ID)+" scan", scanLeft)
}

// trackBar moves the bar called key to show left bytes still to go; a
// negative left completes and removes it.
func trackBar(p *mpb.Progress, bars map[string]*progressBar, key, name string, left int64) {
	b := bars[key]
	if left < 0 {
		if b != nil {
			b.bar.SetTotal(b.total, true)
			delete(bars, key)
		}
		return
	}
	if b == nil {
		b = &progressBar{}
		// Built with total 0 so the total may grow (mpb fixes totals set
		// at construction); completion is then triggered by SetTotal.
		b.bar = p.AddBar(0,
			mpb.PrependDecorators(decor.Name(name+" ", decor.WCSyncSpaceR), decor.CountersKiloByte("% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)),
			mpb.BarRemoveOnComplete(),
		)
		bars[key] = b
	}
	if left > b.total || b.total == 0 {
		b.total = max(left, 1)
		b.bar.SetTotal(b.total, false)
	}
	b.bar.SetCurrent(b.total - left)
}

// eventLine is one event as a line of text.
func eventLine(e node.Event, color bool) string {
	ts := e.Time.Local().Format("15:04:05")
	switch {
	case e.Snapshot != nil:
		var b strings.Builder
		renderStatus(&b, *e.Snapshot, color)
		return strings.TrimRight(b.String(), "\n")
	case e.Folder != nil:
		return fmt.Sprintf("%s %-17s %s", ts, e.Type, renderFolder(*e.Folder, color))
	case e.Peer != "":
		return fmt.Sprintf("%s %-17s %s", ts, e.Type, e.Peer)
	}
	return fmt.Sprintf("%s %s", ts, e.Type)
}

func shortID(id string) string {
	if len(id) > 12 {
		return "…" + id[len(id)-12:]
	}
	return id
}
