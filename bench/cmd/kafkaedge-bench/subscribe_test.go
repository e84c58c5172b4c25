package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// pushFrame encodes a kafka_records push as the node does: the fields of
// KafkaPartitionRecords, its messages last (after next_offset).
func pushFrame(seq int64, partition int32, next int64, offsets ...int64) []byte {
	var msgs []byte
	for _, off := range offsets {
		v := make([]byte, 16)
		binary.BigEndian.PutUint64(v, uint64(off*1000))
		msgs = pubsub.AppendKafkaMessageHead(msgs, pubsub.FieldRecordsMessages, off, 0, nil, v, 0)
	}
	body := pubsub.AppendKafkaPartitionRecords(nil, "t", partition, nil, next+5, next, 0, "")
	body = append(body, msgs...)
	return append(pubsub.AppendRespHeader(nil, seq, pubsub.FieldKafkaRecords, len(body)), body...)
}

func TestParseFrame(t *testing.T) {
	type msg struct {
		p   int32
		off int64
		n   int
	}
	var got []msg
	visit := func(p int32, off int64, v []byte) error {
		got = append(got, msg{p, off, len(v)})
		return nil
	}
	// Partition 0 is left out of the encoding (proto3).
	for _, p := range []int32{0, 3} {
		got = nil
		f, err := parseFrame(pushFrame(7, p, 12, 10, 11), -1, visit)
		if err != nil || f.seq != 7 || f.kind != pubsub.FieldKafkaRecords || f.partition != p || f.next != 12 ||
			f.msgs != 2 || f.bytes != 32 || len(got) != 2 || got[0] != (msg{p, 10, 16}) || got[1] != (msg{p, 11, 16}) {
			t.Errorf("push of partition %d: %+v, %v, visited %v", p, f, err, got)
		}
	}

	// A fetch answer names no partition: the one given is used.
	b, _ := proto.Marshal(&pubsub.PubSubResp{Sequence: 3, Resp: &pubsub.PubSubResp_KafkaFetchResp{KafkaFetchResp: &pubsub.KafkaFetchResp{
		Messages: []*pubsub.KafkaMessage{{Offset: 0, Value: []byte("abc")}, {Offset: 1}}}}})
	got = nil
	if f, err := parseFrame(b, 2, visit); err != nil || f.kind != pubsub.FieldKafkaFetchResp || f.msgs != 2 || f.bytes != 3 ||
		len(got) != 2 || got[0] != (msg{2, 0, 3}) || got[1] != (msg{2, 1, 0}) {
		t.Errorf("fetch answer: %+v, %v, visited %v", f, err, got)
	}

	// Other answers keep their body; err says what they were.
	b, _ = proto.Marshal(&pubsub.PubSubResp{Sequence: 4, Resp: &pubsub.PubSubResp_ErrorResp{ErrorResp: &pubsub.ErrorResp{Code: 3, Message: "nope"}}})
	f, err := parseFrame(b, -1, nil)
	var se *wsclient.ServerError
	if err != nil || f.kind != pubsub.FieldErrorResp || !errors.As(f.err(), &se) || se.Code != 3 || se.Message != "nope" {
		t.Errorf("error answer: %+v, %v, %v", f, err, f.err())
	}
	b, _ = proto.Marshal(&pubsub.PubSubResp{Sequence: 5, Resp: &pubsub.PubSubResp_KafkaSubscriptionEndResp{
		KafkaSubscriptionEndResp: &pubsub.KafkaSubscriptionEndResp{Reason: "server shutting down"}}})
	if f, err := parseFrame(b, -1, nil); err != nil || !errors.Is(f.err(), errEnded) || !strings.Contains(f.err().Error(), "shutting down") {
		t.Errorf("end answer: %+v, %v, %v", f, err, f.err())
	}
	b, _ = proto.Marshal(&pubsub.PubSubResp{Sequence: 6, Resp: &pubsub.PubSubResp_KafkaSubscribeResp{KafkaSubscribeResp: &pubsub.KafkaSubscribeResp{
		Topic: "t", Positions: []*pubsub.KafkaPosition{{Partition: 1, Offset: 9}}}}})
	var sr pubsub.KafkaSubscribeResp
	if f, err := parseFrame(b, -1, nil); err != nil || f.kind != pubsub.FieldKafkaSubscribeResp || proto.Unmarshal(f.body, &sr) != nil ||
		sr.GetPositions()[0].GetOffset() != 9 {
		t.Errorf("subscribe answer: %+v, %v", f, err)
	}

	// Truncated frames fail; a frame with no answer is unexpected.
	good := pushFrame(7, 1, 12, 10, 11)
	for n := 1; n < len(good); n++ {
		if _, err := parseFrame(good[:n], -1, nil); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(good))
		}
	}
	if _, err := parseFrame([]byte{0x08, 0x01}, -1, nil); !errors.Is(err, wsclient.ErrUnexpected) {
		t.Errorf("sequence only: %v, want ErrUnexpected", err)
	}
}

func TestReaderVisit(t *testing.T) {
	var progress, target atomic.Int64
	target.Store(-1)
	l := newLoad()
	r := &reader{next: []int64{10, 0}, progress: &progress, target: &target, l: l, rec: l.recorder(), stamped: true, now: 15_000}
	for _, off := range []int64{10, 11} {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, uint64(off*1000))
		if err := r.visit(0, off, v); err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
	}
	for _, tc := range []struct {
		p   int32
		off int64
	}{{0, 11}, {0, 13}, {1, 1}, {2, 0}, {-1, 0}} {
		if err := r.visit(tc.p, tc.off, nil); err == nil {
			t.Errorf("partition %d offset %d after 0@11, 1@-: no error", tc.p, tc.off)
		}
	}
	if r.update() || progress.Load() != 12 {
		t.Errorf("progress %d, done with no target", progress.Load())
	}
	target.Store(12)
	if !r.update() {
		t.Error("not done at the target")
	}
	r.rec.flush()
	// Produced at 10 and 11 µs, received at 15.
	if p50, _, maxv := l.percentiles(); p50 != 0.004 || maxv != 0.005 {
		t.Errorf("latencies p50 %v max %v ms, want 0.004 and 0.005", p50, maxv)
	}
}

func TestCheckSubscribeTargets(t *testing.T) {
	rs := []*Result{
		{Scenario: scSubFanoutOne, System: sysKafkaedge, P99Ms: 1, Extra: map[string]float64{"broker_fetches_per_sec": 200}},
		{Scenario: scSubFanout, System: sysKafkaedge, P50Ms: 2, P99Ms: 20, Extra: map[string]float64{"broker_fetches_per_sec": 220}},
		{Scenario: scSubFanoutPoll, System: sysKafkaedge, P99Ms: 40},
		{Scenario: scSubFanoutPoll, System: sysConventional, P99Ms: 10},
		{Scenario: scSubIdle, System: sysKafkaedge, Extra: map[string]float64{"kib_per_subscription": 5}},
		{Scenario: scSubCatchup, System: sysKafkaedge, MsgsPerSec: 300},
		{Scenario: scSubCatchupPoll, System: sysKafkaedge, MsgsPerSec: 200},
		{Scenario: scSubCatchupPoll, System: sysConventional, MsgsPerSec: 100, Error: "boom"},
	}
	want := map[string]targetWant{
		"subscribe-fanout/broker fetches/s, subscribers / 1 subscriber (kafkaedge)":  {1.1, true},
		"subscribe-fanout/end-to-end p99 ms (kafkaedge subscribers)":                 {20, true},
		"subscribe-fanout/end-to-end p99 subscribers / kafkaedge polling clients":    {0.5, true},
		"subscribe-fanout/end-to-end p99 subscribers / conventional polling clients": {2, false},
		"subscribe-idle/KiB RSS per idle subscription (kafkaedge)":                   {5, false},
		"subscribe-catchup/msgs/s subscribers / kafkaedge polling clients":           {1.5, true},
		"subscribe-catchup/msgs/s subscribers / conventional polling clients":        {-1, false},
	}
	wantTargets(t, rs, want)
}

func TestRenderSubscribeSVG(t *testing.T) {
	rep := &report{Date: "2026-01-01T00:00:00Z", Cluster: "kfake", Machine: machine{CPUs: 2, Go: "go1.26"},
		Results: []*Result{
			{Scenario: scSubFanoutOne, System: sysKafkaedge, P99Ms: 1, Extra: map[string]float64{"broker_fetches_per_sec": 200, "cpu_s_per_million_deliveries": 20}},
			{Scenario: scSubFanout, System: sysKafkaedge, P99Ms: 5, Extra: map[string]float64{"broker_fetches_per_sec": 200, "cpu_s_per_million_deliveries": 0.2}},
			{Scenario: scSubFanoutPoll, System: sysKafkaedge, P99Ms: 30, Extra: map[string]float64{"broker_fetches_per_sec": 60, "cpu_s_per_million_deliveries": 0.3}},
			{Scenario: scSubFanoutPoll, System: sysConventional, P99Ms: 60, Extra: map[string]float64{"broker_fetches_per_sec": 9000}},
			{Scenario: scSubIdle, System: sysKafkaedge, Extra: map[string]float64{"kib_per_subscription": 1.5}},
		}}
	svg := renderSVG(rep)
	rects := countElements(t, svg, "rect")
	// background + legend (3) + 4 panels (3 of subscribe-fanout, 1 of
	// subscribe-idle) + bars: 4 + 4 + 3 (no conventional CPU) + 1.
	if want := 1 + 3 + 4 + 4 + 4 + 3 + 1; rects != want {
		t.Errorf("SVG has %d rects, want %d", rects, want)
	}
	for _, s := range []string{"end-to-end p99 ms", "broker fetches/s", "1 sub", "poll", "KiB RSS per subscription", ">9000<"} {
		if !bytes.Contains(svg, []byte(s)) {
			t.Errorf("SVG lacks %q", s)
		}
	}
	if bytes.Contains(svg, []byte(">subscribe-fanout/poll<")) {
		t.Error("subscribe-fanout/poll has panels of its own")
	}
}

func TestSubscribeFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.subClients != 1000 || c.subRate != 2000 || c.subBatch != 10 || c.subIdle != 10_000 || c.subIdlePerConn != 10 ||
		c.catchupClients != 20 || c.catchupRecords != 100_000 {
		t.Errorf("defaults = %+v", c)
	}
	for _, bad := range [][]string{
		{"-subscribe-clients", "0"}, {"-subscribe-rate", "0"}, {"-subscribe-batch", "0"},
		{"-subscribe-rate", "10", "-subscribe-batch", "20"}, {"-subscribe-idle", "0"}, {"-subscribe-idle-per-conn", "0"},
		{"-catchup-clients", "0"}, {"-catchup-records", "0"}, {"-scenarios", "subscribe"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
	cfg := config{scenarios: []string{scSubFanout, scSubIdle}, subClients: 1000, subIdle: 10_000, subIdlePerConn: 10}
	var w bytes.Buffer
	lowerForFiles(&cfg, 1012, &w)
	if cfg.subClients != 500 || cfg.subIdle != 5000 || strings.Count(w.String(), "open-file limit") != 2 {
		t.Errorf("lowered to %d clients, %d subscriptions: %q", cfg.subClients, cfg.subIdle, w.String())
	}
}

// TestRunSubscribeSmall runs the three subscription scenarios end to end,
// small, against kafkaedge and the conventional server built here, on
// kfake: every message delivered, in order, to every client.
func TestRunSubscribeSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs kafkaedge and the conventional server")
	}
	dir := t.TempDir()
	bin := buildCmd(t, dir, "kafkaedge", "github.com/kafkaedge/kafkaedge/cmd/kafkaedge")
	conv := buildConventional(t, dir)
	out := filepath.Join(dir, "results")
	start := time.Now()
	rep, got, stdout := runSuite(t, out, []string{"-systems", "kafkaedge,conventional,ceiling", "-kafkaedge-bin", bin, "-conventional-bin", conv, "-out", out,
		"-scenarios", "subscribe-fanout,subscribe-idle,subscribe-catchup", "-duration", "1s",
		"-subscribe-clients", "5", "-subscribe-rate", "200", "-subscribe-batch", "10",
		"-subscribe-idle", "30", "-subscribe-idle-per-conn", "4", "-catchup-clients", "2", "-catchup-records", "2000"})
	if len(rep.Results) != 8 {
		t.Errorf("%d results, want 8 (fanout: 1 subscriber, subscribers, poll x 2; idle; catch-up: subscribers, poll x 2)", len(rep.Results))
	}
	for _, key := range []string{scSubFanoutOne + "/kafkaedge", scSubFanout + "/kafkaedge", scSubFanoutPoll + "/kafkaedge", scSubFanoutPoll + "/conventional"} {
		r := got[key]
		if r == nil {
			t.Errorf("no result for %s", key)
			continue
		}
		// 200 records/s for 1 s, every one to every client.
		produced := int64(r.Extra["records"])
		if produced < 100 || r.Messages != int64(r.Clients)*produced || r.Extra["undelivered"] != 0 || r.P99Ms <= 0 ||
			r.Extra["broker_fetches_per_sec"] <= 0 || r.Extra["cpu_s_per_million_deliveries"] <= 0 {
			t.Errorf("%s: %d clients, %d records, %d messages, extra %v, p99 %v", key, r.Clients, produced, r.Messages, r.Extra, r.P99Ms)
		}
	}
	if r := got[scSubFanout+"/kafkaedge"]; r != nil && r.Extra["node_pushed_msgs"] != float64(r.Messages) {
		t.Errorf("the node pushed %v messages, the subscribers received %d", r.Extra["node_pushed_msgs"], r.Messages)
	}
	if r := got[scSubIdle+"/kafkaedge"]; r == nil || r.Requests != 30 || r.Extra["conns"] != 8 || r.Extra["rss_after_mib"] <= 0 {
		t.Errorf("subscribe-idle: %+v", r)
	}
	for _, key := range []string{scSubCatchup + "/kafkaedge", scSubCatchupPoll + "/kafkaedge", scSubCatchupPoll + "/conventional"} {
		if r := got[key]; r == nil || r.Messages != 2*4*2000 || r.Extra["caught_up_clients"] != 2 || r.MsgsPerSec <= 0 {
			t.Errorf("%s: %+v", key, r)
		}
	}
	for _, key := range []string{scSubFanout + "/ceiling", scSubIdle + "/conventional", scSubCatchup + "/conventional"} {
		if _, ok := got[key]; ok {
			t.Errorf("a result for %s", key)
		}
	}
	if !strings.Contains(stdout, "subscribe-catchup") || !strings.Contains(stdout, "KiB RSS per idle subscription") {
		t.Errorf("table lacks rows:\n%s", stdout)
	}
	t.Logf("took %s", time.Since(start).Round(time.Second))
}
