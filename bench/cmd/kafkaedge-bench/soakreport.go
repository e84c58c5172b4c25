package main

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// soakReport is everything a soak produced; it is written as soak.json.
type soakReport struct {
	Date         string         `json:"date"`
	Command      string         `json:"command"`
	Machine      machine        `json:"machine"`
	Cluster      string         `json:"cluster"`
	LoadAvgStart string         `json:"loadavg_start"` // /proc/loadavg (1, 5, 15 min) before the soak
	LoadAvgEnd   string         `json:"loadavg_end"`   // and after it
	Config       map[string]any `json:"config"`
	Before       soakSample     `json:"before"` // the node after its warm-up, before the load
	Samples      []soakSample   `json:"samples"`
	After        soakSample     `json:"after"`           // the node after the clients left; live_heap_mib from its second GC after that
	IdleGCAfter  float64        `json:"idle_gc_after_s"` // seconds from that sample to that GC; -1: none seen (-soak-idle-gc)
	Totals       soakTotals     `json:"totals"`
	Verdict      soakVerdict    `json:"verdict"`
}

// soakTotals are the clients' counts over the whole soak.
type soakTotals struct {
	Seconds         float64               `json:"seconds"`
	Opened          int64                 `json:"connections_opened"`
	ClosedHandshake int64                 `json:"closed_with_handshake"`
	ClosedAbrupt    int64                 `json:"closed_abruptly"`
	Requests        int64                 `json:"requests"` // answered
	Fetches         int64                 `json:"fetches"`
	ListOffsets     int64                 `json:"list_offsets"`
	Pings           int64                 `json:"pings"`
	Messages        int64                 `json:"messages"` // delivered by the fetches
	ReqPerSec       float64               `json:"req_per_sec"`
	P50Ms           float64               `json:"p50_ms"`
	P99Ms           float64               `json:"p99_ms"`
	MaxMs           float64               `json:"max_ms"`
	Errors          int64                 `json:"errors"`
	ErrorsByClass   map[string]soakErrors `json:"errors_by_class"`
	NodeCPU         float64               `json:"node_cpu_s"`  // kafkaedge, over the load
	BenchCPU        float64               `json:"bench_cpu_s"` // this process: clients, kfake, producer
}

// describe lists the soak's settings for the report.
func (c soakConfig) describe(valueSize int) map[string]any {
	return map[string]any{
		"duration_s": c.duration.Seconds(), "conns": c.conns, "life_min_s": c.lifeMin.Seconds(), "life_max_s": c.lifeMax.Seconds(),
		"req_per_sec": c.rate, "mix": "1/2 fetch, 1/4 ListOffset(-1), 1/4 WebSocket ping frame + CmdPing",
		"partitions": c.partitions, "produce_rate": c.produceRate, "value_size": valueSize,
		"warmup_s": c.warmup.Seconds(), "window_s": c.window.Seconds(), "sample_s": c.sample.Seconds(),
		"timeout_s": c.timeout.Seconds(), "rss_tolerance": c.rssTol, "count_tolerance": c.countTol,
		"count_limit": c.countLimit(), "dial_parallel": soakDialParallel,
	}
}

// soakWindow holds the medians of the samples in [From, To] (seconds);
// -1 where none was read.
type soakWindow struct {
	From       float64 `json:"from_s"`
	To         float64 `json:"to_s"`
	Samples    int     `json:"samples"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_inuse_mib"`
	GoalMiB    float64 `json:"heap_goal_mib"`
	LiveMiB    float64 `json:"live_heap_mib"`
	Goroutines float64 `json:"goroutines"`
	FDs        float64 `json:"fds"`
	ExtraFDs   float64 `json:"fds_beyond_conns"`
	WSConns    float64 `json:"ws_conns"`
	ReqPerSec  float64 `json:"req_per_sec"`
}

// median returns the median of the values of vs that are >= 0, -1 if none.
func median(vs []float64) float64 {
	vs = slices.DeleteFunc(slices.Clone(vs), func(v float64) bool { return v < 0 || math.IsNaN(v) })
	if len(vs) == 0 {
		return -1
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// windowOf takes the medians of the samples taken in [from, to].
func windowOf(samples []soakSample, from, to float64) soakWindow {
	w := soakWindow{From: from, To: to}
	var rss, heap, goal, live, gor, fds, extra, ws, rps []float64
	for _, s := range samples {
		if s.T < from || s.T > to {
			continue
		}
		w.Samples++
		rss, heap, goal, gor = append(rss, s.RSSMiB), append(heap, s.HeapMiB), append(goal, s.HeapGoalMiB), append(gor, s.Goroutines)
		live = append(live, s.LiveMiB)
		fds, extra, ws, rps = append(fds, s.FDs), append(extra, s.extraFDs()), append(ws, s.WSConns), append(rps, s.ReqPerSec)
	}
	w.RSSMiB, w.HeapMiB, w.GoalMiB, w.Goroutines, w.FDs = median(rss), median(heap), median(goal), median(gor), median(fds)
	w.LiveMiB = median(live)
	w.ExtraFDs, w.WSConns, w.ReqPerSec = median(extra), median(ws), median(rps)
	return w
}

// soakCheck is one test of the verdict: Last (the last window, or after
// the clients left) against Limit.
type soakCheck struct {
	What  string  `json:"what"`
	Want  string  `json:"want"`
	First float64 `json:"first"`
	Last  float64 `json:"last"`
	Limit float64 `json:"limit"`
	OK    bool    `json:"ok"`
}

// soakSlopes are least-squares trends per minute over the samples after
// the warm-up (see slope).
type soakSlopes struct {
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_inuse_mib"`
	GoalMiB    float64 `json:"heap_goal_mib"`
	LiveMiB    float64 `json:"live_heap_mib"`
	Goroutines float64 `json:"goroutines"`
	ExtraFDs   float64 `json:"fds_beyond_conns"`
}

// slope is the least-squares slope, per minute, of get over the samples
// taken from second from on whose value was read; 0 with fewer than two.
func slope(samples []soakSample, from float64, get func(soakSample) float64) float64 {
	var n, st, sy, stt, sty float64
	for _, x := range samples {
		y := get(x)
		if x.T < from || y < 0 {
			continue
		}
		t := x.T / 60
		n, st, sy, stt, sty = n+1, st+t, sy+y, stt+t*t, sty+t*y
	}
	if d := n*stt - st*st; n >= 2 && d > 0 {
		return (n*sty - st*sy) / d
	}
	return 0
}

// soakVerdict compares the first window after the warm-up with the last.
type soakVerdict struct {
	First   soakWindow  `json:"first"`
	Last    soakWindow  `json:"last"`
	Checks  []soakCheck `json:"checks"`
	Slopes  soakSlopes  `json:"slopes_per_min"` // trends after the warm-up, for the record (not judged)
	Flat    bool        `json:"flat"`           // every check passed
	OK      bool        `json:"ok"`             // flat, and no error of any class
	Summary string      `json:"summary"`
}

// soakVerdictOf judges a soak from its samples, the node before the load
// and after the clients left, and the error count: RSS (the last window's
// median at most rssTol above the first's), goroutines and the open files
// beyond the connections (at most countLimit above), the connections held
// (at least 90% of conns in both windows), and the node after the clients
// left (no connection, goroutines and open files back within countLimit of
// the first window's; with idleGC, the heap live at its second GC then
// within rssTol of the first window's live heap, plus 2 MiB, of the heap
// live before the load). A figure not measured fails its check.
func soakVerdictOf(samples []soakSample, before, after soakSample, c soakConfig, errs int64) soakVerdict {
	var v soakVerdict
	end := 0.0
	if len(samples) > 0 {
		end = samples[len(samples)-1].T
	}
	v.First = windowOf(samples, c.warmup.Seconds(), (c.warmup + c.window).Seconds())
	v.Last = windowOf(samples, max(end-c.window.Seconds(), 0), end)
	from := c.warmup.Seconds()
	v.Slopes = soakSlopes{
		RSSMiB:     slope(samples, from, func(s soakSample) float64 { return s.RSSMiB }),
		HeapMiB:    slope(samples, from, func(s soakSample) float64 { return s.HeapMiB }),
		GoalMiB:    slope(samples, from, func(s soakSample) float64 { return s.HeapGoalMiB }),
		LiveMiB:    slope(samples, from, func(s soakSample) float64 { return s.LiveMiB }),
		Goroutines: slope(samples, from, func(s soakSample) float64 { return s.Goroutines }),
		ExtraFDs:   slope(samples, from, soakSample.extraFDs),
	}
	tol := c.countLimit()
	check := func(what, want string, first, last, limit float64, ok bool) {
		if first < 0 || last < 0 {
			ok = false
		}
		v.Checks = append(v.Checks, soakCheck{What: what, Want: want, First: first, Last: last, Limit: limit, OK: ok})
	}
	f, l := v.First, v.Last
	check("RSS MiB (median)", fmt.Sprintf("last <= first + %.0f%%", c.rssTol*100), f.RSSMiB, l.RSSMiB,
		f.RSSMiB*(1+c.rssTol), l.RSSMiB <= f.RSSMiB*(1+c.rssTol))
	check("goroutines (median)", fmt.Sprintf("last <= first + %.0f", tol), f.Goroutines, l.Goroutines,
		f.Goroutines+tol, l.Goroutines <= f.Goroutines+tol)
	check("open files beyond connections (median of fds - kafkaedge_connections)", fmt.Sprintf("last <= first + %.0f", tol),
		f.ExtraFDs, l.ExtraFDs, f.ExtraFDs+tol, l.ExtraFDs <= f.ExtraFDs+tol)
	held := 0.9 * float64(c.conns)
	check("WebSocket connections on the node (median)", fmt.Sprintf(">= %.0f (90%% of %d) in both windows", held, c.conns),
		f.WSConns, l.WSConns, held, f.WSConns >= held && l.WSConns >= held)
	check("connections after the clients left", "0", before.NodeConns, after.NodeConns, 0, after.NodeConns == 0 && after.WSConns == 0)
	check("goroutines after the clients left", fmt.Sprintf("<= first window + %.0f", tol), f.Goroutines, after.Goroutines,
		f.Goroutines+tol, after.Goroutines <= f.Goroutines+tol)
	check("open files after the clients left", fmt.Sprintf("<= first window's beyond connections + %.0f", tol), f.ExtraFDs,
		after.FDs, f.ExtraFDs+tol, after.FDs <= f.ExtraFDs+tol)
	if c.idleGC > 0 {
		base := before.LiveMiB // the heap live before the load, or at most the heap in use then
		if base < 0 {
			base = before.HeapMiB
		}
		limit := base + c.rssTol*max(f.LiveMiB, 0) + 2 // gctrace counts in whole MiB
		check("live heap after the clients left (second GC)", fmt.Sprintf("<= before the load + %.0f%% of the first window's + 2 MiB", c.rssTol*100),
			base, after.LiveMiB, limit, base >= 0 && after.LiveMiB <= limit)
	}
	v.Flat = true
	var failed []string
	for _, ch := range v.Checks {
		if !ch.OK {
			v.Flat = false
			failed = append(failed, fmt.Sprintf("%s: %s then %s, want %s", ch.What, num(ch.First, 1), num(ch.Last, 1), ch.Want))
		}
	}
	if errs > 0 {
		failed = append(failed, fmt.Sprintf("%d errors", errs))
	}
	v.OK = v.Flat && errs == 0
	switch {
	case v.OK:
		v.Summary = "flat, and every request answered"
	case v.Flat:
		v.Summary = "flat, but " + strings.Join(failed, "; ")
	default:
		v.Summary = "NOT FLAT: " + strings.Join(failed, "; ")
	}
	return v
}

// printSoak writes the soak's figures, checks and verdict.
func printSoak(w io.Writer, rep *soakReport) {
	t := rep.Totals
	fmt.Fprintf(w, "\nkafkaedge soak %s  (%s; %d CPUs, %.0f GiB, %s; load average %s before, %s after)\n", rep.Date, rep.Cluster,
		rep.Machine.CPUs, rep.Machine.MemGiB, rep.Machine.Go, rep.LoadAvgStart, rep.LoadAvgEnd)
	fmt.Fprintf(w, "%.0fs: %d connections opened (%d closed with a close handshake, %d dropped), %d requests answered (%.0f/s: %d fetches, %d ListOffsets, %d pings; p50 %s ms, p99 %s ms, max %s ms), %d messages fetched, %d errors\n",
		t.Seconds, t.Opened, t.ClosedHandshake, t.ClosedAbrupt, t.Requests, t.ReqPerSec, t.Fetches, t.ListOffsets, t.Pings,
		num(t.P50Ms, 2), num(t.P99Ms, 2), num(t.MaxMs, 0), t.Messages, t.Errors)
	fmt.Fprintf(w, "CPU: kafkaedge %s s (%s cores), this process (clients, kfake, producer) %s s\n",
		num(t.NodeCPU, 1), num(t.NodeCPU/max(t.Seconds, 1e-9), 2), num(t.BenchCPU, 1))
	classes := make([]string, 0, len(t.ErrorsByClass))
	for k := range t.ErrorsByClass {
		classes = append(classes, k)
	}
	slices.Sort(classes)
	for _, k := range classes {
		e := t.ErrorsByClass[k]
		fmt.Fprintf(w, "  errors %s: %d, first: %s\n", k, e.Count, e.First)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "when\tsamples\tRSS MiB\theap MiB\tGC goal MiB\tlive heap MiB\tgoroutines\tfds\tfds-conns\tws conns\treq/s\t")
	row := func(name string, n int, rss, heap, goal, live, gor, fds, extra, ws, rps float64) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, n, num(rss, 1), num(heap, 1), num(goal, 1),
			num(live, 1), num(gor, 0), num(fds, 0), num(extra, 0), num(ws, 0), num(rps, 0))
	}
	b, a := rep.Before, rep.After
	row("before the load", 1, b.RSSMiB, b.HeapMiB, b.HeapGoalMiB, b.LiveMiB, b.Goroutines, b.FDs, b.extraFDs(), b.WSConns, -1)
	for _, x := range []struct {
		name string
		w    soakWindow
	}{{"first window", rep.Verdict.First}, {"last window", rep.Verdict.Last}} {
		row(fmt.Sprintf("%s %s-%s", x.name, shortDur(x.w.From), shortDur(x.w.To)), x.w.Samples, x.w.RSSMiB, x.w.HeapMiB,
			x.w.GoalMiB, x.w.LiveMiB, x.w.Goroutines, x.w.FDs, x.w.ExtraFDs, x.w.WSConns, x.w.ReqPerSec)
	}
	row("after the clients left", 1, a.RSSMiB, a.HeapMiB, a.HeapGoalMiB, a.LiveMiB, a.Goroutines, a.FDs, a.extraFDs(), a.WSConns, -1)
	tw.Flush()
	if rep.IdleGCAfter >= 0 {
		fmt.Fprintf(w, "(after the clients left, the live heap is that of the node's second GC, %.0fs later: %s bytes per connection opened more than before the load)\n",
			rep.IdleGCAfter, num((a.LiveMiB-max(b.LiveMiB, 0))*(1<<20)/float64(max(t.Opened, 1)), 0))
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "check\tfirst\tlast\tlimit\twant\tok")
	for _, c := range rep.Verdict.Checks {
		ok := "no"
		if c.OK {
			ok = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.What, num(c.First, 1), num(c.Last, 1), num(c.Limit, 1), c.Want, ok)
	}
	tw.Flush()
	sl := rep.Verdict.Slopes
	fmt.Fprintf(w, "\ntrend after the warm-up (least squares, not judged): RSS %+.2f MiB/min, heap in use %+.2f MiB/min, GC goal %+.2f MiB/min, live heap %+.2f MiB/min, goroutines %+.2f/min, fds beyond connections %+.2f/min\n",
		sl.RSSMiB, sl.HeapMiB, sl.GoalMiB, sl.LiveMiB, sl.Goroutines, sl.ExtraFDs)
	fmt.Fprintf(w, "verdict: %s\n", rep.Verdict.Summary)
}

// shortDur formats seconds as a short duration: 90 -> 1m30s, 60 -> 1m.
func shortDur(sec float64) string {
	s := time.Duration(math.Round(sec*10) * float64(time.Second) / 10).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// soakSeries is one line of a chart.
type soakSeries struct {
	name  string
	color string
	get   func(soakSample) float64
}

// soakPanel is one chart of the soak's SVG.
type soakPanel struct {
	title  string
	series []soakSeries
	limit  float64 // the verdict's limit, drawn dashed; <= 0: none
}

// renderSoakSVG draws the samples over time, one chart per figure, with
// the warm-up greyed and the two windows compared shaded.
func renderSoakSVG(rep *soakReport) []byte {
	v := rep.Verdict
	limit := func(i int) float64 {
		if i < len(v.Checks) && v.Checks[i].First >= 0 {
			return v.Checks[i].Limit
		}
		return -1
	}
	const blue, orange, green, red, grey = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f"
	panels := []soakPanel{
		{"memory MiB: RSS, Go heap in use, GC goal, live heap", []soakSeries{
			{"RSS", blue, func(s soakSample) float64 { return s.RSSMiB }},
			{"in use", orange, func(s soakSample) float64 { return s.HeapMiB }},
			{"goal", green, func(s soakSample) float64 { return s.HeapGoalMiB }},
			{"live at GC", grey, func(s soakSample) float64 { return s.LiveMiB }}}, limit(0)},
		{"goroutines (go_goroutines)", []soakSeries{{"goroutines", blue, func(s soakSample) float64 { return s.Goroutines }}}, limit(1)},
		{"open files (/proc/PID/fd)", []soakSeries{
			{"fds", blue, func(s soakSample) float64 { return s.FDs }},
			{"fds - connections", orange, soakSample.extraFDs}}, limit(2)},
		{"connections", []soakSeries{
			{"node WebSocket", blue, func(s soakSample) float64 { return s.WSConns }},
			{"clients", green, func(s soakSample) float64 { return float64(s.ClientConns) }}}, -1},
		{"requests answered per second", []soakSeries{{"req/s", blue, func(s soakSample) float64 { return s.ReqPerSec }}}, -1},
		{"errors so far", []soakSeries{
			{"client-side", red, func(s soakSample) float64 { return float64(s.Errors) }},
			{"node requests_total{result=error}", orange, func(s soakSample) float64 { return s.NodeErrors }}}, -1},
		{"the machine's load average (1 min)", []soakSeries{{"load", grey, func(s soakSample) float64 { return s.Load1 }}}, -1},
	}
	const (
		cols   = 4
		pw, ph = 340, 230 // panel size
		top    = 80
		ml, mr = 52, 14 // plot margins in a panel
		mt, mb = 38, 34
	)
	rows := (len(panels) + cols - 1) / cols
	width, height := cols*pw+20, top+rows*ph+10
	tmax := 1.0
	if n := len(rep.Samples); n > 0 {
		tmax = max(rep.Samples[n-1].T, 1e-3)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	cfg := rep.Config
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">kafkaedge soak: %v connections churning (each lives %vs-%vs), %v req/s, %s</text>`+"\n",
		cfg["conns"], cfg["life_min_s"], cfg["life_max_s"], cfg["req_per_sec"], shortDur(rep.Totals.Seconds))
	verdictColor := "#2ca02c"
	if !v.OK {
		verdictColor = red
	}
	fmt.Fprintf(&b, `<text x="10" y="40" font-weight="bold" fill="%s">verdict: %s</text>`+"\n", verdictColor, html.EscapeString(v.Summary))
	fmt.Fprintf(&b, `<text x="10" y="56" fill="#555">%s · %s · %d CPUs, %.0f GiB · %s · load average %s → %s · %d connections opened, %d requests, %d errors</text>`+"\n",
		html.EscapeString(rep.Date), html.EscapeString(rep.Cluster), rep.Machine.CPUs, rep.Machine.MemGiB, html.EscapeString(rep.Machine.Go),
		html.EscapeString(rep.LoadAvgStart), html.EscapeString(rep.LoadAvgEnd), rep.Totals.Opened, rep.Totals.Requests, rep.Totals.Errors)
	fmt.Fprintf(&b, `<text x="10" y="72" fill="#555">grey: warm-up; green: the first and the last window compared; dashed red: the verdict's limit</text>`+"\n")
	plotW, plotH := float64(pw-10-ml-mr), float64(ph-10-mt-mb)
	for i, p := range panels {
		x0, y0 := 10+(i%cols)*pw, top+(i/cols)*ph
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)">`+"\n", x0, y0)
		fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="none" stroke="#ddd"/>`+"\n", pw-10, ph-10)
		fmt.Fprintf(&b, `<text x="8" y="16" font-weight="bold">%s</text>`+"\n", html.EscapeString(p.title))
		lx := 8
		for _, s := range p.series {
			fmt.Fprintf(&b, `<rect x="%d" y="22" width="9" height="9" fill="%s"/><text x="%d" y="30">%s</text>`+"\n", lx, s.color, lx+12, html.EscapeString(s.name))
			lx += 24 + 6*len(s.name)
		}
		ymax := max(p.limit, 0)
		for _, s := range p.series {
			for _, x := range rep.Samples {
				ymax = max(ymax, s.get(x))
			}
		}
		ymax = niceCeil(ymax * 1.1)
		px := func(t float64) float64 { return float64(ml) + t/tmax*plotW }
		py := func(y float64) float64 { return float64(mt) + plotH - y/ymax*plotH }
		shade := func(from, to float64, fill string) {
			from, to = max(from, 0), min(to, tmax)
			if to > from {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%.0f" fill="%s"/>`+"\n", px(from), mt, px(to)-px(from), plotH, fill)
			}
		}
		shade(0, v.First.From, "#eeeeee")
		shade(v.First.From, v.First.To, "#e3f4e3")
		shade(v.Last.From, v.Last.To, "#e3f4e3")
		for k := 0; k <= 4; k++ { // y axis
			y := ymax * float64(k) / 4
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", ml, py(y), float64(ml)+plotW, py(y))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", ml-4, py(y)+4, axisNum(y))
		}
		step := tickStep(tmax)
		for t := 0.0; t <= tmax+1e-9; t += step { // x axis
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`+"\n", px(t), float64(mt)+plotH+14, shortDur(t))
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", ml, py(0), float64(ml)+plotW, py(0))
		if p.limit > 0 {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/>`+"\n", ml, py(p.limit), float64(ml)+plotW, py(p.limit), red)
		}
		for _, s := range p.series {
			var pts []string
			for _, x := range rep.Samples {
				if y := s.get(x); y >= 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x.T), py(y)))
				}
			}
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
			}
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle" fill="#555">time since the load started</text>`+"\n", float64(ml)+plotW/2, ph-14)
		fmt.Fprintln(&b, `</g>`)
	}
	fmt.Fprintln(&b, `</svg>`)
	return b.Bytes()
}

// axisNum formats an axis label: 12.5, 250, 12.5k.
func axisNum(v float64) string {
	if v >= 1e4 {
		return shortNum(v)
	}
	return trimFloat(v)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// tickStep picks the x axis step, in seconds, for at most 10 ticks over
// tmax seconds.
func tickStep(tmax float64) float64 {
	for _, s := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800} {
		if tmax/s <= 10 {
			return s
		}
	}
	return 3600
}
