package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the control API serves Prometheus metrics. Unlike
// every other call it needs no token: the API listens on loopback only, and
// the metrics are node-wide counts with no folder, path or peer names in
// them (docs/api.md).
const MetricsPath = "/metrics"

// durationBuckets are the histogram buckets of scan and pull durations, in
// seconds: 1 ms to about 4.6 minutes.
var durationBuckets = prometheus.ExponentialBuckets(0.001, 4, 10)

// nodeMetrics are the node's Prometheus metrics, in a registry of its own
// (several nodes may run in one test process).
type nodeMetrics struct {
	reg              *prometheus.Registry // parts started later (the link gateway) add theirs
	handler          http.Handler
	scan             prometheus.Histogram
	pull             prometheus.Histogram
	rejectedOps      prometheus.Counter
	rejectedChunks   prometheus.Counter
	rejectedVersions prometheus.Counter
}

func newNodeMetrics(n *Node) *nodeMetrics {
	reg := prometheus.NewRegistry()
	m := &nodeMetrics{
		reg: reg,
		scan: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "meshfold_scan_duration_seconds", Help: "Duration of folder scans (full and incremental).", Buckets: durationBuckets,
		}),
		pull: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "meshfold_pull_duration_seconds", Help: "Duration of applying one plan of remote changes, chunk transfers included.", Buckets: durationBuckets,
		}),
		rejectedOps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshfold_rejected_ops_total", Help: "Rights-log ops received from peers and refused (bad signature, no right).",
		}),
		rejectedChunks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshfold_rejected_chunks_total", Help: "Chunks received from peers that failed verification.",
		}),
		rejectedVersions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshfold_rejected_versions_total", Help: "File versions received from peers and refused (no right, bad data).",
		}),
	}
	need := func(bytes bool) func() float64 {
		return func() float64 {
			var total float64
			n.mu.Lock()
			fs := n.folderListLocked()
			n.mu.Unlock()
			for _, f := range fs {
				f.mu.Lock()
				files, b := f.needLocked()
				f.mu.Unlock()
				if bytes {
					total += float64(b)
				} else {
					total += float64(files)
				}
			}
			return total
		}
	}
	reg.MustRegister(
		m.scan, m.pull, m.rejectedOps, m.rejectedChunks, m.rejectedVersions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshfold_connected_peers", Help: "Peers this device has a connection to."},
			func() float64 { return float64(len(n.host.Network().Peers())) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshfold_received_bytes_total", Help: "Bytes received from peers (all protocols)."},
			func() float64 { in, _ := n.BytesOnWire(); return float64(in) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshfold_sent_bytes_total", Help: "Bytes sent to peers (all protocols)."},
			func() float64 { _, out := n.BytesOnWire(); return float64(out) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshfold_needed_files", Help: "Files with a remote version still to apply, all folders."}, need(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshfold_needed_bytes", Help: "Bytes of the remote versions still to apply, all folders."}, need(true)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshfold_folders", Help: "Folders this device syncs."},
			func() float64 { n.mu.Lock(); defer n.mu.Unlock(); return float64(len(n.folders)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meshfold_paused_folders", Help: "Folders paused, by themselves or by the global switch."},
			func() float64 {
				n.mu.Lock()
				defer n.mu.Unlock()
				c := 0
				for _, f := range n.folders {
					if f.run.paused || n.pausedAll {
						c++
					}
				}
				return float64(c)
			}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if n.cfg.RelayService {
		registerRelayMetrics(reg) // gateway.go
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return m
}

// MetricsHandler serves the node's Prometheus metrics (what the control API
// serves at MetricsPath), for a relay's separate --metrics listener.
func (n *Node) MetricsHandler() http.Handler { return n.metrics.handler }
