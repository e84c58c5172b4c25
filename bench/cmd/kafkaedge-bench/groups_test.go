package main

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGroupsFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.groupMembers != 100 || c.groupPartitions != 100 || c.groupLeaves != 20 || c.groupRate != 1000 || c.groupIdle != 1000 ||
		c.groupHeartbeat != 0 || slices.Contains(c.scenarios, scGroups) {
		t.Errorf("defaults = %+v", c)
	}
	c, err = parseFlags([]string{"-scenarios", "groups", "-group-heartbeat", "250ms", "-groups-members", "2", "-groups-partitions", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.scenarios, []string{scGroups}) || c.groupHeartbeat != 250*time.Millisecond ||
		!slices.Contains(c.brokerProps(), "group.consumer.heartbeat.interval.ms=250") ||
		!slices.Contains(c.brokerProps(), "group.consumer.min.heartbeat.interval.ms=250") {
		t.Errorf("parsed = %+v, broker props %q", c, c.brokerProps())
	}
	if c, _ := parseFlags(nil, io.Discard); !slices.Equal(c.brokerProps(), realProps) {
		t.Errorf("broker props without -group-heartbeat: %q", c.brokerProps())
	}
	for _, bad := range [][]string{
		{"-groups-members", "1"}, {"-groups-partitions", "0"}, {"-groups-leaves", "0"}, {"-groups-rate", "0"},
		{"-groups-idle", "0"}, {"-group-heartbeat", "50ms"}, {"-group-heartbeat", "1500us"}, {"-group-heartbeat", "2m"},
		{"-group-heartbeat", "1s", "-brokers", "a:1"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
	cfg := config{scenarios: []string{scGroups}, groupMembers: 100, groupIdle: 1000, subIdlePerConn: 1}
	var w bytes.Buffer
	lowerForFiles(&cfg, 1012, &w)
	if cfg.groupIdle != 400 || !strings.Contains(w.String(), "400 idle members") {
		t.Errorf("lowered to %d idle members: %q", cfg.groupIdle, w.String())
	}
}

// fakeMember is a member whose assignment the test sets.
type fakeMember struct {
	mu   sync.Mutex
	next map[int32]int64
}

func (f *fakeMember) assignment() map[int32]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.next)
}
func (f *fakeMember) commit(context.Context, map[int32]int64) error { return nil }
func (f *fakeMember) leave(bool) (string, error)                    { return "close", nil }
func (f *fakeMember) failed() error                                 { return nil }
func (f *fakeMember) close()                                        {}

// TestGroupRunTakeover: a balanced group; a member leaves, another is
// assigned its partitions and pushes them: the latencies are from the leave
// to the assignment and to the first push of each, the leaver's own pushes
// and the later ones do not count.
func TestGroupRunTakeover(t *testing.T) {
	l := newLoad()
	g := newGroupRun("t", "g", 3, l)
	a := &fakeMember{next: map[int32]int64{0: 5, 1: 7}}
	b := &fakeMember{next: map[int32]int64{2: 1}}
	if err := g.waitBalanced(t.Context(), []member{a, b}); err != nil {
		t.Fatalf("2 and 1 partitions of 3: %v", err)
	}
	// A leaves; B is assigned its partitions and pushes them, then once more.
	t0 := time.Now()
	g.mu.Lock()
	g.leaver, g.watch[0], g.watch[1] = 0, t0, t0
	g.mu.Unlock()
	g.pushed(0, 0, 1, 10, t0.Add(time.Millisecond)) // the leaver's own push: not a takeover
	g.assigned(1, []int32{0, 1}, t0.Add(10*time.Millisecond))
	g.pushed(1, 0, 2, 20, t0.Add(20*time.Millisecond))
	g.pushed(1, 1, 1, 10, t0.Add(30*time.Millisecond))
	g.pushed(1, 1, 1, 10, t0.Add(40*time.Millisecond))
	if err := g.waitTakeover(t.Context(), []member{a, b}, 0); err != nil {
		t.Fatal(err)
	}
	g.flush()
	if p50, _, maxv := l.percentiles(); l.reqs.Load() != 2 || p50 != 20 || maxv != 30 {
		t.Errorf("%d takeovers, p50 %v max %v ms; want 2, 20 and 30", l.reqs.Load(), p50, maxv)
	}
	if p50, _, _ := g.assignL.percentiles(); g.assignL.reqs.Load() != 2 || p50 != 10 {
		t.Errorf("%d assignments, p50 %v ms; want 2 at 10", g.assignL.reqs.Load(), p50)
	}
	if l.msgs.Load() != 5 || l.bytes.Load() != 50 {
		t.Errorf("%d messages, %d bytes pushed; want 5 and 50", l.msgs.Load(), l.bytes.Load())
	}
}

// TestRunGroupsSmall runs the groups scenario end to end, small and with a
// 200 ms heartbeat, against two kafkaedge nodes it builds and franz-go
// members, on kfake: every partition of a leaver pushed by another member,
// commits answered, idle members stable.
func TestRunGroupsSmall(t *testing.T) {
	bin, out := buildKafkaedge(t)
	start := time.Now()
	rep, got, stdout := runSuite(t, out, []string{"-systems", "kafkaedge,ceiling", "-kafkaedge-bin", bin, "-out", out,
		"-scenarios", "groups", "-duration", "1s", "-group-heartbeat", "200ms", "-groups-members", "4", "-groups-partitions", "6",
		"-groups-leaves", "4", "-groups-rate", "300", "-groups-idle", "12"})
	if len(rep.Results) != 5 {
		t.Errorf("%d results, want 5 (groups and groups/commit x kafkaedge, ceiling; groups/idle)", len(rep.Results))
	}
	for _, sys := range []string{sysKafkaedge, sysCeiling} {
		// 6 partitions over 4 members: each leaver owns 1 or 2.
		if r := got[scGroups+"/"+sys]; r == nil || r.Requests < 4 || r.Requests > 8 || r.P50Ms <= 0 || r.Messages == 0 ||
			r.Extra["assign_p50_ms"] <= 0 || r.Extra["assign_p50_ms"] > r.P50Ms || r.Extra["kip848"] != 1 || r.Extra["heartbeat_interval_ms"] != 200 {
			t.Errorf("%s/%s: %+v", scGroups, sys, r)
		}
		if r := got[scGroupsCommit+"/"+sys]; r == nil || r.Requests == 0 || r.Errors != 0 || r.P99Ms <= 0 || r.Extra["committing_members"] != 4 {
			t.Errorf("%s/%s: %+v", scGroupsCommit, sys, r)
		}
	}
	if r := got[scGroups+"/"+sysKafkaedge]; r != nil && (r.Extra["leaves_unsubscribe"] != 2 || r.Extra["leaves_close"] != 2 ||
		r.Extra["nodes"] != 2 || r.CPUSeconds < 0 || r.RSSMiB <= 0) {
		t.Errorf("groups/kafkaedge: %+v", r)
	}
	if r := got[scGroupsIdle+"/"+sysKafkaedge]; r == nil || r.Requests != 12 || r.Extra["groups"] != 1 || r.RSSMiB <= 0 ||
		r.Extra["cpu_s_per_s"] <= 0 || r.Extra["cpu_s_per_s_no_members"] < 0 || r.Extra["window_s"] != 1 {
		t.Errorf("groups/idle: %+v", r)
	}
	svg, err := os.ReadFile(filepath.Join(out, "results.svg"))
	if err != nil || !bytes.Contains(svg, []byte("commits/s")) || !bytes.Contains(svg, []byte(">kgo<")) {
		t.Errorf("results.svg lacks the groups panels: %v", err)
	}
	if !strings.Contains(stdout, scGroupsIdle) {
		t.Errorf("table lacks rows:\n%s", stdout)
	}
	t.Logf("took %s", time.Since(start).Round(time.Second))
}
