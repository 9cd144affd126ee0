package simulations

import (
	"bufio"
	"fmt"
	"html"
	"io"
)

// Report layout, in SVG user units.
const (
	svgWidth    = 900
	svgPanelH   = 180
	svgMargin   = 50
	svgMaxFault = 400 // fault marks drawn on the timeline
)

// WriteSVG writes a hand-drawn SVG report of one run: how many distinct
// rights states and tree views the honest devices hold over time (1 is
// agreement), bytes moved per device, and the faults on the same timeline.
func WriteSVG(out io.Writer, r *Result) error {
	w := bufio.NewWriter(out)
	h := 3*svgPanelH + 4*svgMargin
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", svgWidth, h)
	fmt.Fprintf(w, `<text x="%d" y="20" font-size="14">%s seed %d: converged=%v (%.1f s after heal), %d violations</text>`+"\n",
		svgMargin, html.EscapeString(r.Options.Scenario), r.Options.Seed, r.Converged, float64(r.ConvergeMs)/1000, len(r.Violations))

	var tMax int64 = 1
	maxCount := 1
	for _, s := range r.Series {
		tMax = max(tMax, s.AtMs)
		maxCount = max(maxCount, s.Digests, s.Trees)
	}
	plotW := float64(svgWidth - 2*svgMargin)
	x := func(t int64) float64 { return svgMargin + plotW*float64(t)/float64(tMax) }

	// Panel 1: convergence over time.
	top := float64(svgMargin)
	panel(w, top, "distinct rights states (blue) and tree views (green) among honest devices")
	y := func(c int) float64 { return top + svgPanelH - float64(svgPanelH)*float64(c)/float64(maxCount) }
	for _, series := range []struct {
		color string
		get   func(Sample) int
	}{{"#1f77b4", func(s Sample) int { return s.Digests }}, {"#2ca02c", func(s Sample) int { return s.Trees }}} {
		fmt.Fprintf(w, `<polyline fill="none" stroke="%s" points="`, series.color)
		for _, s := range r.Series {
			fmt.Fprintf(w, "%.1f,%.1f ", x(s.AtMs), y(series.get(s)))
		}
		fmt.Fprintln(w, `"/>`)
	}
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="red" stroke-dasharray="4"/>`+"\n",
		x(r.Options.WorkloadMs), top, x(r.Options.WorkloadMs), top+svgPanelH)

	// Panel 2: bytes per device.
	top += svgPanelH + svgMargin
	panel(w, top, "bytes sent and received per device")
	var bMax int64 = 1
	for _, b := range r.BytesPerNode {
		bMax = max(bMax, b)
	}
	if n := len(r.BytesPerNode); n > 0 {
		bw := plotW / float64(n)
		for i, b := range r.BytesPerNode {
			bh := float64(svgPanelH) * float64(b) / float64(bMax)
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#ff7f0e"><title>n%d: %d bytes</title></rect>`+"\n",
				svgMargin+float64(i)*bw, top+svgPanelH-bh, max(bw-1, 1), bh, i, b)
		}
	}

	// Panel 3: faults on the timeline.
	top += svgPanelH + svgMargin
	panel(w, top, "faults (hover for details); dashed: heal")
	for i, f := range r.Faults {
		if i == svgMaxFault {
			break
		}
		fx := x(f.AtMs)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d62728"><title>%.1f s: %s</title></line>`+"\n",
			fx, top+float64(i%9)*svgPanelH/9, fx, top+float64(i%9+1)*svgPanelH/9, float64(f.AtMs)/1000, html.EscapeString(f.What))
	}
	fmt.Fprintf(w, `<text x="%d" y="%d">0 s</text><text x="%d" y="%d" text-anchor="end">%.0f s</text>`+"\n",
		svgMargin, h-10, svgWidth-svgMargin, h-10, float64(tMax)/1000)
	fmt.Fprintln(w, `</svg>`)
	return w.Flush()
}

func panel(w io.Writer, top float64, title string) {
	fmt.Fprintf(w, `<rect x="%d" y="%.1f" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", svgMargin, top, svgWidth-2*svgMargin, svgPanelH)
	fmt.Fprintf(w, `<text x="%d" y="%.1f">%s</text>`+"\n", svgMargin, top-5, html.EscapeString(title))
}
