package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything a run produced; it is written as results.json.
type report struct {
	Date    string         `json:"date"`
	Command string         `json:"command"`
	Machine machine        `json:"machine"`
	Cluster string         `json:"cluster"`
	Config  map[string]any `json:"config"`
	Results []*Result      `json:"results"`
	Targets []targetCheck  `json:"targets"`
}

// machine describes where the run happened.
type machine struct {
	CPUs    int     `json:"cpus"`
	MemGiB  float64 `json:"mem_gib"`
	Go      string  `json:"go"`
	OS      string  `json:"os"`
	Kernel  string  `json:"kernel,omitempty"`
	CPUName string  `json:"cpu_name,omitempty"`
}

// targetCheck is one target of the issue with its measured value.
type targetCheck struct {
	Scenario string  `json:"scenario"`
	Target   string  `json:"target"`
	Value    float64 `json:"value"` // -1 when it could not be measured
	Want     string  `json:"want"`
	Met      bool    `json:"met"`
	Note     string  `json:"note,omitempty"`
}

// report assembles the report of the finished run.
func (b *bench) report(args []string) *report {
	cfg := map[string]any{
		"duration_s": b.cfg.duration.Seconds(), "clients": b.cfg.clients, "value_size": b.cfg.valueSize,
		"codecs": b.cfg.codecs, "records_per_partition": b.cfg.records,
		"fanout_clients": b.cfg.fanoutClients, "fanout_backlog": b.cfg.fanoutBacklog, "fanout_rate": b.cfg.fanoutRate,
		"listoffset_clients": b.cfg.listClients, "fixed_commands": b.cfg.fixedCommands, "fixed_rates": b.cfg.fixedRates,
		"fixed_clients": b.cfg.fixedClients, "fixed_duration_s": b.cfg.fixedDuration.Seconds(), "fixed_rounds": b.cfg.fixedRounds,
		"idle_conns": b.cfg.idleConns, "slow_clients": b.cfg.slowClients, "slow_rate": b.cfg.slowRate,
		"slow_max_outbound": b.cfg.slowMaxOutbound, "replication": int(b.cl.replication),
		"subscribe_clients": b.cfg.subClients, "subscribe_rate": b.cfg.subRate, "subscribe_batch": b.cfg.subBatch,
		"subscribe_idle": b.cfg.subIdle, "subscribe_idle_per_conn": b.cfg.subIdlePerConn,
		"catchup_clients": b.cfg.catchupClients, "catchup_records": b.cfg.catchupRecords,
		"groups_members": b.cfg.groupMembers, "groups_partitions": b.cfg.groupPartitions, "groups_leaves": b.cfg.groupLeaves,
		"groups_rate": b.cfg.groupRate, "groups_idle": b.cfg.groupIdle, "group_heartbeat_ms": b.cfg.groupHeartbeat.Milliseconds(),
	}
	switch {
	case b.cl.real != nil:
		cfg["kafka"] = kafkaReal
		cfg["kafka_version"] = b.cfg.kafkaVersion
		jvm := b.cfg.kafkaJVM
		if jvm == nil {
			jvm = benchJVM
		}
		cfg["kafka_jvm"] = strings.Join(jvm, " ")
		cfg["kafka_props"] = b.cfg.brokerProps()
	case b.cl.fake != nil:
		cfg["kafka"] = kafkaKfake
	default:
		cfg["kafka"] = "external"
	}
	switch {
	case b.cl.fake != nil:
		cfg["broker_fetches"] = "kfake's request counter"
	case b.cl.jmx != nil && b.cl.jmx.cheap():
		cfg["broker_fetches"] = "JMX FetchConsumer RequestsPerSec Count (JmxCount reader)"
	case b.cl.jmx != nil:
		cfg["broker_fetches"] = "JMX FetchConsumer RequestsPerSec Count (JmxTool per read)"
	default:
		cfg["broker_fetches"] = "not counted"
	}
	return &report{
		Date:    b.started.UTC().Format(time.RFC3339),
		Command: strings.TrimSpace("kafkaedge-bench " + strings.Join(args, " ")),
		Machine: describeMachine(),
		Cluster: b.cl.desc,
		Config:  cfg,
		Results: b.results,
		Targets: checkTargets(b.results),
	}
}

// describeMachine reads the CPU count, memory, kernel and CPU model.
func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemGiB = math.Round(kb/(1<<20)*10) / 10
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUName = strings.TrimSpace(val)
				break
			}
		}
	}
	return m
}

// find returns the error-free result of scenario on system, or nil.
func find(rs []*Result, scenario, system string) *Result {
	for _, r := range rs {
		if r.Scenario == scenario && r.System == system && r.Error == "" {
			return r
		}
	}
	return nil
}

// checkTargets evaluates the targets on the results present.
func checkTargets(rs []*Result) []targetCheck {
	var out []targetCheck
	ratio := func(scenario, target, want string, ok func(float64) bool, a, b *Result, get func(*Result) float64) {
		tc := targetCheck{Scenario: scenario, Target: target, Want: want, Value: -1}
		switch {
		case a == nil || b == nil:
			tc.Note = "not measured (system skipped or failed)"
		case get(a) < 0 || get(b) <= 0:
			tc.Note = "not measured"
		default:
			tc.Value = get(a) / get(b)
			tc.Met = ok(tc.Value)
		}
		out = append(out, tc)
	}
	msgs := func(r *Result) float64 { return r.MsgsPerSec }
	p99 := func(r *Result) float64 { return r.P99Ms }
	seen := map[string]bool{}
	for _, r := range rs {
		key := family(r.Scenario)
		if seen[key] {
			continue
		}
		seen[key] = true
		ke, conv, ceil := find(rs, r.Scenario, sysKafkaedge), find(rs, r.Scenario, sysConventional), find(rs, r.Scenario, sysCeiling)
		switch {
		case strings.HasPrefix(r.Scenario, "fetch-"):
			ratio(r.Scenario, "msgs/s kafkaedge / conventional", ">= 1.5", func(v float64) bool { return v >= 1.5 }, ke, conv, msgs)
			ratio(r.Scenario, "CPU-s per GB kafkaedge / conventional", "<= 0.5", func(v float64) bool { return v <= 0.5 }, ke, conv,
				func(r *Result) float64 { return r.CPUSecPerGB })
			ratio(r.Scenario, "msgs/s kafkaedge / ceiling", ">= 0.8", func(v float64) bool { return v >= 0.8 }, ke, ceil, msgs)
		case r.Scenario == "fanout":
			tc := targetCheck{Scenario: r.Scenario, Target: "broker fetches / client fetches (kafkaedge)", Want: "<= 0.05", Value: -1}
			if ke != nil && ke.BrokerFetches >= 0 && ke.Requests > 0 {
				tc.Value = float64(ke.BrokerFetches) / float64(ke.Requests)
				tc.Met = tc.Value <= 0.05
			} else {
				tc.Note = "not measured (needs the brokers' fetch count: kfake's counter or JMX)"
			}
			out = append(out, tc)
			ratio(r.Scenario, "msgs/s kafkaedge / conventional", ">= 3", func(v float64) bool { return v >= 3 }, ke, conv, msgs)
		case r.Scenario == "listoffset":
			ratio(r.Scenario, "req/s kafkaedge / conventional", ">= 2", func(v float64) bool { return v >= 2 }, ke, conv,
				func(r *Result) float64 { return r.ReqPerSec })
			ratio(r.Scenario, "p99 kafkaedge / conventional", "< 1", func(v float64) bool { return v < 1 }, ke, conv,
				func(r *Result) float64 { return r.P99Ms })
		case strings.HasPrefix(r.Scenario, "fixed-rate/"):
			ratio(r.Scenario, "p50 kafkaedge / conventional", "<= 1", func(v float64) bool { return v <= 1 }, ke, conv,
				func(r *Result) float64 { return r.P50Ms })
			ratio(r.Scenario, "p99 kafkaedge / conventional", "<= 1", func(v float64) bool { return v <= 1 }, ke, conv,
				func(r *Result) float64 { return r.P99Ms })
		case r.Scenario == "idle":
			tc := targetCheck{Scenario: r.Scenario, Target: "KiB RSS per idle connection (kafkaedge)", Want: "<= 6", Value: -1}
			if ke != nil {
				if v, ok := ke.Extra["kib_per_conn"]; ok {
					tc.Value, tc.Met = v, v <= 6
				}
			}
			if conv != nil {
				if v, ok := conv.Extra["kib_per_conn"]; ok {
					tc.Note = fmt.Sprintf("conventional: %.1f KiB", v)
				}
			}
			out = append(out, tc)
		case r.Scenario == scProduceClosed:
			ratio(r.Scenario, "msgs/s kafkaedge / conventional", ">= 1.5", func(v float64) bool { return v >= 1.5 }, ke, conv, msgs)
			ratio(r.Scenario, "CPU-s per GB kafkaedge / conventional", "<= 0.7", func(v float64) bool { return v <= 0.7 }, ke, conv,
				func(r *Result) float64 { return r.CPUSecPerGB })
		case r.Scenario == scProducePaced:
			tc := targetCheck{Scenario: r.Scenario, Target: "broker Produce requests / client requests (kafkaedge)", Want: "<= 0.05", Value: -1}
			if v := extraOf("broker_produces_per_request")(orEmpty(ke)); v >= 0 {
				tc.Value, tc.Met = v, v <= 0.05
			} else {
				tc.Note = "not measured (needs the brokers' Produce count: kfake's counter or JMX)"
			}
			if v := extraOf("broker_produces_per_request")(orEmpty(conv)); v >= 0 {
				tc.Note = fmt.Sprintf("conventional: %.3f", v)
			}
			out = append(out, tc)
			tc = targetCheck{Scenario: r.Scenario, Target: "ack p99 ms (kafkaedge)", Want: "<= linger + 15 = 20", Value: -1}
			if ke != nil && ke.P99Ms > 0 {
				tc.Value, tc.Met = ke.P99Ms, ke.P99Ms <= 20
				tc.Note = fmt.Sprintf("p50 %.2f ms", ke.P50Ms)
				if conv != nil && conv.P99Ms > 0 {
					tc.Note += fmt.Sprintf("; conventional p99 %.2f ms", conv.P99Ms)
				}
			}
			out = append(out, tc)
			ratio(r.Scenario, "CPU-s per GB kafkaedge / conventional", "<= 0.7", func(v float64) bool { return v <= 0.7 }, ke, conv,
				func(r *Result) float64 { return r.CPUSecPerGB })
		case r.Scenario == "slow-readers":
			tc := targetCheck{Scenario: r.Scenario, Target: "peak RSS / configured cap (kafkaedge)", Want: "<= 1", Value: -1}
			if ke != nil && ke.PeakRSSMiB > 0 && ke.Extra["cap_mib"] > 0 {
				tc.Value = ke.PeakRSSMiB / ke.Extra["cap_mib"]
				tc.Met = tc.Value <= 1
				tc.Note = fmt.Sprintf("peak %.0f MiB, cap %.0f MiB", ke.PeakRSSMiB, ke.Extra["cap_mib"])
			}
			out = append(out, tc)
			tc = targetCheck{Scenario: r.Scenario, Target: "fast clients' msgs/s / solo (kafkaedge)", Want: ">= 0.8", Value: -1}
			if ke != nil {
				if v, ok := ke.Extra["fast_vs_solo"]; ok {
					tc.Value, tc.Met = v, v >= 0.8
				}
			}
			if conv != nil {
				tc.Note = fmt.Sprintf("conventional: %.2f", conv.Extra["fast_vs_solo"])
			}
			out = append(out, tc)
		case key == scSubFanout:
			sub, one := find(rs, scSubFanout, sysKafkaedge), find(rs, scSubFanoutOne, sysKafkaedge)
			kePoll, convPoll := find(rs, scSubFanoutPoll, sysKafkaedge), find(rs, scSubFanoutPoll, sysConventional)
			ratio(key, "broker fetches/s, subscribers / 1 subscriber (kafkaedge)", "<= 1.2", func(v float64) bool { return v <= 1.2 },
				sub, one, extraOf("broker_fetches_per_sec"))
			tc := targetCheck{Scenario: key, Target: "end-to-end p99 ms (kafkaedge subscribers)", Want: "<= 50", Value: -1}
			if sub != nil && sub.P99Ms >= 0 {
				tc.Value, tc.Met = sub.P99Ms, sub.P99Ms <= 50
				tc.Note = fmt.Sprintf("p50 %.2f ms", sub.P50Ms)
			}
			out = append(out, tc)
			ratio(key, "end-to-end p99 subscribers / kafkaedge polling clients", "< 1", func(v float64) bool { return v < 1 }, sub, kePoll, p99)
			ratio(key, "end-to-end p99 subscribers / conventional polling clients", "< 1", func(v float64) bool { return v < 1 }, sub, convPoll, p99)
		case key == scSubIdle:
			tc := targetCheck{Scenario: key, Target: "KiB RSS per idle subscription (kafkaedge)", Want: "<= 4", Value: -1}
			if v := extraOf("kib_per_subscription")(orEmpty(find(rs, scSubIdle, sysKafkaedge))); v >= 0 {
				tc.Value, tc.Met = v, v <= 4
			}
			out = append(out, tc)
		case key == scSubCatchup:
			sub := find(rs, scSubCatchup, sysKafkaedge)
			kePoll, convPoll := find(rs, scSubCatchupPoll, sysKafkaedge), find(rs, scSubCatchupPoll, sysConventional)
			ratio(key, "msgs/s subscribers / kafkaedge polling clients", ">= 1", func(v float64) bool { return v >= 1 }, sub, kePoll, msgs)
			ratio(key, "msgs/s subscribers / conventional polling clients", ">= 1", func(v float64) bool { return v >= 1 }, sub, convPoll, msgs)
		}
	}
	return out
}

// extraOf returns a getter of the scenario figure name, -1 when absent.
func extraOf(name string) func(*Result) float64 {
	return func(r *Result) float64 {
		if v, ok := r.Extra[name]; ok {
			return v
		}
		return -1
	}
}

// orEmpty returns r, or an empty result if r is nil.
func orEmpty(r *Result) *Result {
	if r == nil {
		return &Result{}
	}
	return r
}

// num formats a figure, "-" when not measured.
func num(v float64, prec int) string {
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// printTable writes the results and the targets as aligned tables.
func printTable(w io.Writer, rep *report) {
	fmt.Fprintf(w, "\nkafkaedge-bench %s  (%s; %d CPUs, %.0f GiB, %s)\n\n", rep.Date, rep.Cluster, rep.Machine.CPUs, rep.Machine.MemGiB, rep.Machine.Go)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tsystem\treq/s\tmsgs/s\tMB/s\tp50 ms\tp99 ms\tCPU s\tCPU s/GB\tRSS MiB\tpeak MiB\tbroker fetches\tclient reqs\tbench CPU s\tbroker CPU s\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", r.Scenario, r.System,
			num(r.ReqPerSec, 0), num(r.MsgsPerSec, 0), num(r.MBPerSec, 1), num(r.P50Ms, 2), num(r.P99Ms, 2),
			num(r.CPUSeconds, 2), num(r.CPUSecPerGB, 2), num(r.RSSMiB, 1), num(r.PeakRSSMiB, 1),
			fetchCount(r.BrokerFetches), r.Requests, num(r.BenchCPU, 2), num(r.BrokerCPU, 2))
	}
	tw.Flush()
	for _, r := range rep.Results {
		if n := notes(r); n != "" {
			fmt.Fprintf(w, "  %s %s: %s\n", r.Scenario, r.System, n)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "  %s %s: ERROR %s\n", r.Scenario, r.System, r.Error)
		}
	}
	if len(rep.Targets) == 0 {
		return
	}
	fmt.Fprintln(w, "\ntargets")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\ttarget\tmeasured\twant\tmet\tnote")
	for _, t := range rep.Targets {
		met := "no"
		if t.Met {
			met = "yes"
		}
		if t.Value < 0 {
			met = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Scenario, t.Target, num(t.Value, 2), t.Want, met, t.Note)
	}
	tw.Flush()
}

// fetchCount formats a broker fetch count.
func fetchCount(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// notes formats a result's scenario figures and the brokers' counts
// beyond their fetches: the ListOffsets they received, and the record bytes
// their consumer fetch responses carried (JMX).
func notes(r *Result) string {
	var parts []string
	if len(r.Extra) > 0 {
		parts = append(parts, extraText(r.Extra))
	}
	var br []string
	if r.BrokerListOffsets > 0 {
		br = append(br, fmt.Sprintf("%d ListOffsets", r.BrokerListOffsets))
	}
	if r.BrokerMBOut > 0 {
		s := fmt.Sprintf("%.1f MB out", r.BrokerMBOut)
		if r.BrokerFetches > 0 {
			s += fmt.Sprintf(" (%.1f KB per fetch)", r.BrokerMBOut*1e3/float64(r.BrokerFetches))
		}
		br = append(br, s)
	}
	if len(br) > 0 {
		parts = append(parts, "broker: "+strings.Join(br, ", "))
	}
	return strings.Join(parts, "; ")
}

// extraText formats scenario figures as sorted key=value pairs.
func extraText(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%s=%s", k, trimFloat(m[k]))
	}
	return sb.String()
}

// trimFloat prints v with up to 3 decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// writeJSON writes a report (the suite's or the soak's) as indented JSON.
func writeJSON(path string, rep any) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// panel is one small bar chart of the SVG: one figure, the three systems
// (or the columns of its scenario, columnsOf).
type panel struct {
	scenario string
	title    string
	lower    bool // lower is better
	get      func(*Result) float64
}

// panelsFor lists the charts of a scenario.
func panelsFor(scenario string) []panel {
	msgs := func(r *Result) float64 { return r.MsgsPerSec }
	switch {
	case strings.HasPrefix(scenario, "fetch-"):
		return []panel{
			{scenario, "msgs/s", false, msgs},
			{scenario, "server CPU-s per GB", true, func(r *Result) float64 { return r.CPUSecPerGB }},
		}
	case scenario == "fanout":
		return []panel{
			{scenario, "msgs/s delivered", false, msgs},
			{scenario, "broker fetches per client fetch", true, func(r *Result) float64 {
				if v, ok := r.Extra["broker_fetches_per_client_fetch"]; ok {
					return v
				}
				return -1
			}},
		}
	case scenario == "listoffset":
		return []panel{
			{scenario, "req/s", false, func(r *Result) float64 { return r.ReqPerSec }},
			{scenario, "p99 ms", true, func(r *Result) float64 { return r.P99Ms }},
		}
	case strings.HasPrefix(scenario, "fixed-rate/"):
		// One panel per point (p50 is in the tables).
		return []panel{{scenario, "p99 ms", true, func(r *Result) float64 { return r.P99Ms }}}
	case scenario == "idle":
		return []panel{{scenario, "KiB RSS per connection", true, func(r *Result) float64 {
			if v, ok := r.Extra["kib_per_conn"]; ok {
				return v
			}
			return -1
		}}}
	case scenario == "slow-readers":
		return []panel{
			{scenario, "fast clients, % of solo", false, func(r *Result) float64 {
				if v, ok := r.Extra["fast_vs_solo"]; ok {
					return v * 100
				}
				return -1
			}},
			{scenario, "peak RSS MiB", true, func(r *Result) float64 { return r.PeakRSSMiB }},
		}
	case scenario == scSubFanout:
		return []panel{
			{scenario, "end-to-end p99 ms", true, func(r *Result) float64 { return r.P99Ms }},
			{scenario, "broker fetches/s", true, extraOf("broker_fetches_per_sec")},
			{scenario, "CPU-s per M deliveries", true, extraOf("cpu_s_per_million_deliveries")},
		}
	case scenario == scSubIdle:
		return []panel{{scenario, "KiB RSS per subscription", true, extraOf("kib_per_subscription")}}
	case scenario == scSubCatchup:
		return []panel{
			{scenario, "msgs/s", false, msgs},
			{scenario, "server CPU-s per GB", true, func(r *Result) float64 { return r.CPUSecPerGB }},
		}
	case scenario == scGroups:
		return []panel{
			{scGroups, "leave to first push p99 ms", true, func(r *Result) float64 { return r.P99Ms }},
			{scGroupsCommit, "commits/s", false, func(r *Result) float64 { return r.ReqPerSec }},
			{scGroupsIdle, "CPU-s/s per 1,000 idle members", true, extraOf("cpu_s_per_s_per_1000_members")},
		}
	}
	return nil
}

// column is one bar of a panel: the result of scenario on system, with a
// label under the system's name.
type column struct {
	scenario, system, label string
}

// columnsOf returns the bars of a scenario's panels: its result on each of
// the three systems, or for a subscription scenario, its subscribers and
// the polling clients of the same run side by side, or for a result of
// groups, kafkaedge and the ceiling (the conventional server has no
// groups).
func columnsOf(scenario string) []column {
	switch scenario {
	case scSubFanout:
		return []column{{scSubFanoutOne, sysKafkaedge, "1 sub"}, {scSubFanout, sysKafkaedge, "subs"},
			{scSubFanoutPoll, sysKafkaedge, "poll"}, {scSubFanoutPoll, sysConventional, "poll"}}
	case scSubIdle:
		return []column{{scSubIdle, sysKafkaedge, "subs"}}
	case scSubCatchup:
		return []column{{scSubCatchup, sysKafkaedge, "subs"}, {scSubCatchupPoll, sysKafkaedge, "poll"},
			{scSubCatchupPoll, sysConventional, "poll"}}
	case scGroups, scGroupsCommit:
		return []column{{scenario, sysKafkaedge, "2 nodes"}, {scenario, sysCeiling, "kgo"}}
	case scGroupsIdle:
		return []column{{scenario, sysKafkaedge, "2 nodes"}}
	}
	cols := make([]column, len(allSystems))
	for i, sys := range allSystems {
		cols[i] = column{scenario: scenario, system: sys}
	}
	return cols
}

// systemColor is each system's bar color.
var systemColor = map[string]string{sysKafkaedge: "#1f77b4", sysConventional: "#ff7f0e", sysCeiling: "#7f7f7f"}

// renderSVG draws one small bar chart per scenario figure, three systems
// per chart (a subscription scenario's runs: columnsOf), with hand-written
// SVG.
func renderSVG(rep *report) []byte {
	var panels []panel
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if key := family(r.Scenario); !seen[key] {
			seen[key] = true
			panels = append(panels, panelsFor(key)...)
		}
	}
	const (
		cols   = 4
		pw, ph = 250, 190 // panel size
		top    = 70
		plotH  = 105
	)
	rows := max(1, (len(panels)+cols-1)/cols)
	width, height := cols*pw+20, top+rows*ph+20
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">kafkaedge-bench: kafkaedge vs conventional (net/http + gorilla + franz-go) vs direct franz-go ceiling</text>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#555">%s · %s · %d CPUs, %.0f GiB · %s</text>`+"\n",
		html.EscapeString(rep.Date), html.EscapeString(rep.Cluster), rep.Machine.CPUs, rep.Machine.MemGiB, html.EscapeString(rep.Machine.Go))
	lx := 10
	for _, sys := range allSystems {
		fmt.Fprintf(&b, `<rect x="%d" y="50" width="10" height="10" fill="%s"/><text x="%d" y="59">%s</text>`+"\n", lx, systemColor[sys], lx+14, sys)
		lx += 110
	}
	for i, p := range panels {
		x0, y0 := 10+(i%cols)*pw, top+(i/cols)*ph
		better := "higher is better"
		if p.lower {
			better = "lower is better"
		}
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)">`+"\n", x0, y0)
		fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="none" stroke="#ddd"/>`+"\n", pw-10, ph-10)
		fmt.Fprintf(&b, `<text x="8" y="16" font-weight="bold">%s</text>`+"\n", html.EscapeString(p.scenario))
		fmt.Fprintf(&b, `<text x="8" y="30" fill="#555">%s (%s)</text>`+"\n", html.EscapeString(p.title), better)
		cs := columnsOf(p.scenario)
		var vals []float64
		for _, c := range cs {
			v := -1.0
			if r := find(rep.Results, c.scenario, c.system); r != nil {
				v = p.get(r)
			}
			vals = append(vals, v)
		}
		// Three bars of 50 at steps of 75; more get narrower.
		step, barW, font := 75, 50, ""
		if len(cs) > 3 {
			step = (pw - 40) / len(cs)
			barW, font = step-12, ` font-size="8"`
		}
		top := 0.0
		for _, v := range vals {
			top = max(top, v)
		}
		base := 46 + plotH
		fmt.Fprintf(&b, `<line x1="10" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", base, pw-20, base)
		for j, v := range vals {
			x := 20 + j*step
			sys := cs[j].system
			if v < 0 || top <= 0 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#999">n/a</text>`+"\n", x+barW/2, base-4)
			} else {
				h := int(math.Round(v / top * plotH))
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, base-h, barW, h, systemColor[sys])
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+barW/2, base-h-3, shortNum(v))
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#333"%s>%s</text>`+"\n", x+barW/2, base+14, font, sys)
			if l := cs[j].label; l != "" {
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555"%s>%s</text>`+"\n", x+barW/2, base+26, font, l)
			}
		}
		fmt.Fprintln(&b, `</g>`)
	}
	fmt.Fprintln(&b, `</svg>`)
	return b.Bytes()
}

// shortNum formats a bar label: 1234567 -> 1.23M.
func shortNum(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// renderMarkdown formats the results and targets as Markdown tables, as
// docs/benchmarks.md shows them.
func renderMarkdown(rep *report) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Run %s: `%s`; %s; %d CPUs (%s), %.1f GiB, %s, Linux %s.\n\n", rep.Date, rep.Command, rep.Cluster,
		rep.Machine.CPUs, rep.Machine.CPUName, rep.Machine.MemGiB, rep.Machine.Go, rep.Machine.Kernel)
	fmt.Fprintln(&b, "| scenario | system | req/s | msgs/s | MB/s | p50 ms | p99 ms | CPU s | CPU s/GB | RSS MiB | peak MiB | broker fetches | client reqs | bench CPU s | broker CPU s |")
	fmt.Fprintln(&b, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range rep.Results {
		sys := r.System
		if r.Error != "" {
			sys += " (error: " + strings.ReplaceAll(r.Error, "|", "/") + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", r.Scenario, sys,
			num(r.ReqPerSec, 0), num(r.MsgsPerSec, 0), num(r.MBPerSec, 1), num(r.P50Ms, 2), num(r.P99Ms, 2),
			num(r.CPUSeconds, 2), num(r.CPUSecPerGB, 2), num(r.RSSMiB, 1), num(r.PeakRSSMiB, 1),
			fetchCount(r.BrokerFetches), r.Requests, num(r.BenchCPU, 2), num(r.BrokerCPU, 2))
	}
	fmt.Fprintln(&b)
	for _, r := range rep.Results {
		if n := notes(r); n != "" {
			fmt.Fprintf(&b, "- %s, %s: %s\n", r.Scenario, r.System, n)
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(&b, "\n| scenario | target | measured | want | met | note |")
		fmt.Fprintln(&b, "|---|---|--:|---|---|---|")
		for _, t := range rep.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			if t.Value < 0 {
				met = "-"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", t.Scenario, t.Target, num(t.Value, 2), t.Want, met, t.Note)
		}
	}
	return b.Bytes()
}
