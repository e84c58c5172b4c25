package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// failoverProps make the controller fence a killed broker, and elect other
// leaders for its partitions, 3 s after its last heartbeat instead of 9 s,
// and followers poll their leaders every 100 ms instead of 500 ms at most,
// so that a new leader learns its high watermark sooner.
var failoverProps = []string{"broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500", "replica.fetch.wait.max.ms=100"}

// TestFailover moves partition leaders of a real cluster of its own, one
// version after the other, while a client uses them: a reassignment with a
// preferred election, a leader killed with SIGKILL in the middle of a
// stream and restarted, idempotent producing across a move and a kill,
// and a leader stopped. The client's cached leader is then wrong or gone;
// it refreshes its metadata and retries.
func TestFailover(t *testing.T) {
	for _, v := range kafkatest.Versions() {
		t.Run("kafka-"+v, func(t *testing.T) {
			start := time.Now()
			k := kafkatest.Own(t, v, 3, failoverProps...)
			t.Logf("cluster started in %v", time.Since(start).Round(time.Millisecond))
			t.Run("reassign", func(t *testing.T) { testReassign(t, k) })
			t.Run("kill", func(t *testing.T) { testKillMidStream(t, k) })
			t.Run("produce", func(t *testing.T) { testProduceFailover(t, k) })
			// Last: it leaves the leader it stopped down.
			t.Run("stop", func(t *testing.T) { testStopLeader(t, k) })
		})
	}
}

// leaderOf returns the leader of topic/partition as the cluster reports it.
func leaderOf(t *testing.T, k *kafkatest.Kafka, topic string, partition int32) int32 {
	t.Helper()
	leaders, _ := topicLeaders(t, k, topic)
	l, ok := leaders[partition]
	if !ok || l < 0 {
		t.Fatalf("%s/%d has no leader", topic, partition)
	}
	return l
}

// waitLeader waits until every broker but those in down names leader as the
// leader of topic/partition.
func waitLeader(t *testing.T, k *kafkatest.Kafka, topic string, partition, leader int32, down ...int32) {
	t.Helper()
	k.WaitBrokers(t, topic, func(tm *kmsg.MetadataResponseTopic) bool {
		if tm == nil {
			return false
		}
		for _, p := range tm.Partitions {
			if p.Partition == partition {
				return p.Leader == leader
			}
		}
		return false
	}, down...)
}

// moveLeader makes node to the leader of topic/partition: the replicas are
// reordered with to first (the preferred leader), a preferred election moves
// the leadership, and every broker is waited on to know it.
func moveLeader(t *testing.T, k *kafkatest.Kafka, topic string, partition, to int32) {
	t.Helper()
	// Longer than testCtx: a reassignment under load (and the election
	// loop below, 30 s) can take a while.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := k.Admin(t)
	replicas := []int32{to}
	for id := range int32(len(k.Brokers)) {
		if id+1 != to {
			replicas = append(replicas, id+1)
		}
	}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, partition, replicas)
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	if err == nil {
		err = resp[topic][partition].Err
	}
	if err != nil {
		t.Fatalf("reassign %s/%d to %v: %v", topic, partition, replicas, err)
	}
	var set kadm.TopicsSet
	set.Add(topic, partition)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
		if err == nil {
			err = res[topic][partition].Err
		}
		if err == nil || errors.Is(err, kerr.ElectionNotNeeded) {
			break
		}
		// The preferred replica may still be catching up (not in sync).
		if time.Now().After(deadline) {
			t.Fatalf("preferred election of %s/%d: %v", topic, partition, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitLeader(t, k, topic, partition, to)
}

// testReassign moves the leader of a partition twice between calls:
// the client's next call goes to the old leader with the old leader epoch,
// which answers FENCED_LEADER_EPOCH or NOT_LEADER_OR_FOLLOWER; the client
// refreshes and retries. For about a second the new leader does not know
// its high watermark: it answers ListOffsets with OFFSET_NOT_AVAILABLE,
// which ListOffset repeats until it knows, and a Fetch with no records (an
// empty result: the next fetch gets them).
func testReassign(t *testing.T, k *kafkatest.Kafka) {
	tp := k.ReplicatedTopic(t, "move", 1)
	recs := makeRecords(tp, 0, 10, time.UnixMilli(1_700_000_000_000), "m")
	k.Produce(t, nil, recs...)
	rec := newRecorder()
	c := newClient(t, Config{Brokers: k.Brokers[:1], Observer: rec})
	ctx := testCtx(t)
	listOffset := func(what string) {
		t.Helper()
		if off, err := c.ListOffset(ctx, tp, 0, -1); err != nil || off != 10 {
			t.Fatalf("ListOffset %s: %d, %v", what, off, err)
		}
	}
	fetch := func(what string, wait bool) {
		t.Helper()
		fetchRecords(t, c, tp, 3, recs[3:], what, wait)
	}
	fetch("before the moves", false)
	listOffset("before the moves")
	for i := range 2 {
		from := leaderOf(t, k, tp, 0)
		to := from%3 + 1
		moveLeader(t, k, tp, 0, to)
		what := fmt.Sprintf("after moving the leader from %d to %d", from, to)
		if i == 0 {
			// Once ListOffset -1 has the high watermark, so does a Fetch.
			listOffset(what)
			fetch(what, false)
		} else {
			fetch(what, true)
			listOffset(what)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	t.Logf("requests: %v", rec.requests)
	moved := 0
	for _, api := range []string{"Fetch", "ListOffsets"} {
		moved += rec.requests[api+" NOT_LEADER_OR_FOLLOWER"] + rec.requests[api+" FENCED_LEADER_EPOCH"]
	}
	if moved < 2 {
		t.Errorf("%d answers from an old leader for 2 moves: %v", moved, rec.requests)
	}
}

// fetchRecords fetches topic/0 from offset and compares the records with
// want. With wait, empty answers are fetched again for up to 10 s: a leader
// elected moments ago answers with no records until it knows its high
// watermark.
func fetchRecords(t *testing.T, c *Client, topic string, offset int64, want []*kgo.Record, what string, wait bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for empty := 0; ; empty++ {
		res, err := c.Fetch(testCtx(t), topic, 0, offset)
		if err != nil {
			t.Fatalf("Fetch %s: %v", what, err)
		}
		if len(res.Records) > 0 || !wait || time.Now().After(deadline) {
			sameRecords(t, res.Records, want, offset)
			res.Release()
			if empty > 0 {
				t.Logf("Fetch %s: %d empty answers first", what, empty)
			}
			return
		}
		res.Release()
		time.Sleep(20 * time.Millisecond)
	}
}

// testStopLeader stops the leader of a partition (a controlled shutdown:
// its leaderships move first). The client's connection to it closes, its
// metadata still names it, and the next call fails on the dead connection
// or the refused dial, refreshes and goes to the new leader (which may
// answer with no records at first, as after a reassignment).
func testStopLeader(t *testing.T, k *kafkatest.Kafka) {
	tp := k.ReplicatedTopic(t, "stop", 1)
	recs := makeRecords(tp, 0, 10, time.UnixMilli(1_700_000_000_000), "s")
	k.Produce(t, nil, recs...)
	leader := leaderOf(t, k, tp, 0)
	var boot []string
	for id := range int32(len(k.Brokers)) {
		if id+1 != leader {
			boot = append(boot, k.Brokers[id])
		}
	}
	c := newClient(t, Config{Brokers: boot})
	ctx := testCtx(t)
	res, err := c.Fetch(ctx, tp, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, res.Records, recs, 0)
	res.Release()

	if err := k.Real.Stop(leader); err != nil {
		t.Fatal(err)
	}
	k.WaitBrokers(t, tp, func(tm *kmsg.MetadataResponseTopic) bool {
		return tm != nil && tm.Partitions[0].Leader >= 0 && tm.Partitions[0].Leader != leader
	}, leader)
	fetchRecords(t, c, tp, 4, recs[4:], fmt.Sprintf("after the leader %d stopped", leader), true)
	if off, err := c.ListOffset(ctx, tp, 0, -1); err != nil || off != 10 {
		t.Fatalf("ListOffset after the leader %d stopped: %d, %v", leader, off, err)
	}
}

// activeController returns the node that is the active controller (the
// leader of the metadata quorum).
func activeController(t *testing.T, k *kafkatest.Kafka) int32 {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), k.Client(t))
	if err == nil && (len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1) {
		err = fmt.Errorf("answer %+v", resp)
	}
	if err != nil {
		t.Fatalf("describe quorum: %v", err)
	}
	return resp.Topics[0].Partitions[0].LeaderID
}

// testKillMidStream kills the leader of a partition with SIGKILL while a
// producer writes to it and a consumer goroutine fetches from it in a loop,
// then restarts it. The consumer's calls fail (refused dials, closed
// connections, an old leader) with errors of the documented form until the
// controller has fenced the dead broker and elected another leader; then
// the stream goes on from where it stopped: the consumer's records are
// exactly the partition's log, without a gap or a repeat. The leader killed
// is not the active controller, whose death would add a controller election
// (several seconds on Kafka 3.9) to the wait for the new leader.
func testKillMidStream(t *testing.T, k *kafkatest.Kafka) {
	tp := k.ReplicatedTopic(t, "kill", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The partition of the stream: one not led by the active controller
	// (the 3 partitions have 3 different leaders).
	controller := activeController(t, k)
	leaders, _ := topicLeaders(t, k, tp)
	part := int32(-1)
	for p := range int32(3) {
		if l := leaders[p]; l >= 0 && l != controller && part < 0 {
			part = p
		}
	}
	if part < 0 {
		t.Fatalf("every partition of %s is led by the controller %d: %v", tp, controller, leaders)
	}
	leader := leaders[part]

	// The producer: 5 records at a time, until stopped.
	prod := k.Client(t, kgo.DefaultProduceTopic(tp), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.ProducerLinger(time.Millisecond))
	var produced atomic.Int64
	stopProducing := make(chan struct{})
	prodDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopProducing:
				prodDone <- nil
				return
			default:
			}
			batch := make([]*kgo.Record, 5)
			for j := range batch {
				batch[j] = &kgo.Record{Partition: part, Value: []byte(strconv.Itoa(5*i + j))}
			}
			if err := prod.ProduceSync(ctx, batch...).FirstErr(); err != nil {
				prodDone <- err
				return
			}
			produced.Add(int64(len(batch)))
		}
	}()

	// The consumer: from the offset after its last record, pausing a
	// little after a failure as a consumer would.
	c := newClient(t, Config{Brokers: k.Brokers, RequestTimeout: 5 * time.Second})
	type got struct {
		offset int64
		value  string
	}
	var (
		mu      sync.Mutex
		records []got
		reasons = map[string]int{}
		bad     []string
	)
	var next atomic.Int64
	stopConsuming := make(chan struct{})
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for {
			select {
			case <-stopConsuming:
				return
			default:
			}
			from := next.Load()
			res, err := c.Fetch(ctx, tp, part, from)
			if err != nil {
				var e *Error
				mu.Lock()
				prefix := fmt.Sprintf("fetch %s/%d@%d: ", tp, part, from)
				if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), prefix) || len(err.Error()) == len(prefix) || strings.Contains(err.Error(), "\n") {
					bad = append(bad, err.Error())
				} else {
					reasons[strings.TrimPrefix(err.Error(), prefix)]++
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				continue
			}
			mu.Lock()
			for _, r := range res.Records {
				records = append(records, got{r.Offset, string(r.Value)})
			}
			mu.Unlock()
			if n := len(res.Records); n > 0 {
				next.Store(res.Records[n-1].Offset + 1)
			}
			res.Release()
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: consumer at %d, %d produced", what, next.Load(), produced.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stopProducer := sync.OnceFunc(func() { close(stopProducing) })
	stopConsumer := sync.OnceFunc(func() { close(stopConsuming) })
	defer func() { // on failure too
		stopProducer()
		stopConsumer()
		cancel()
		<-consDone
	}()

	start := time.Now()
	waitFor("the stream to start", func() bool { return next.Load() >= 50 })
	at := next.Load()
	if err := k.Real.Kill(leader); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: killed leader %d of %s/%d (the controller is %d) with the consumer at offset %d",
		time.Since(start).Round(time.Millisecond), leader, tp, part, controller, at)
	waitFor("the stream to go on with another leader", func() bool { return next.Load() >= at+100 })
	at = next.Load()
	t.Logf("%v: the consumer is at %d, restarting %d", time.Since(start).Round(time.Millisecond), at, leader)
	if err := k.Real.Restart(ctx, leader); err != nil {
		t.Fatal(err)
	}
	at = next.Load()
	t.Logf("%v: restarted %d with the consumer at offset %d", time.Since(start).Round(time.Millisecond), leader, at)
	waitFor("the stream to go on after the restart", func() bool { return next.Load() >= at+100 })
	t.Logf("%v: the consumer is at %d", time.Since(start).Round(time.Millisecond), next.Load())

	stopProducer()
	if err := <-prodDone; err != nil {
		t.Fatalf("producer: %v", err)
	}
	end := produced.Load()
	waitFor("the consumer to reach the end", func() bool { return next.Load() >= end })
	stopConsumer()
	<-consDone

	// The log as an independent consumer (kgo) reads it.
	var log []got
	cons := k.Client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tp: {part: kgo.NewOffset().At(0)}}))
	for int64(len(log)) < next.Load() {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kgo consumer: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { log = append(log, got{r.Offset, string(r.Value)}) })
	}
	mu.Lock()
	defer mu.Unlock()
	// The consumer stopped at the producer's last acknowledged record; the
	// log has nothing past it unless the producer wrote a record twice.
	if len(log) > len(records) {
		t.Logf("the log has %d records past the %d acknowledged", len(log)-len(records), end)
		log = log[:len(records)]
	}
	if !slices.Equal(records, log) {
		n := 0
		for n < min(len(records), len(log)) && records[n] == log[n] {
			n++
		}
		t.Fatalf("the consumer read %d records, the log has %d; they differ from %d on", len(records), len(log), n)
	}
	for i, r := range records {
		if r.offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, r.offset)
		}
	}
	if len(bad) > 0 {
		t.Errorf("errors not of the documented form: %q", bad)
	}
	if len(reasons) == 0 {
		t.Error("no call failed: the kill did not hit the stream")
	}
	t.Logf("%d records, %d produced; failures by reason: %v", len(records), end, reasons)
}

// testProduceFailover: 20 callers produce one record per call, one call
// after the other, to the 2 partitions of a replicated topic while the
// leader of partition 0 is moved and the leader of partition 1 is killed
// (SIGKILL) and restarted. The idempotent producer sends failed batches
// again with their sequence numbers: every record acknowledged is in the
// topic exactly once, no record twice (acknowledged or not), and each
// caller's records in the order produced.
func testProduceFailover(t *testing.T, k *kafkatest.Kafka) {
	tp := k.ReplicatedTopic(t, "produce-failover", 2)
	c := newClient(t, Config{Brokers: k.Brokers, RequestTimeout: 20 * time.Second, MetadataRefresh: time.Second})
	const callers = 20
	type ack struct {
		caller, seq int
		p           Produced
	}
	var (
		mu    sync.Mutex
		acked []ack
		fails int
		total atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for caller := range callers {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				out := produceWait(t, c, tp, int32(caller%2), AcksAll, []record.Record{{Value: fmt.Appendf(nil, "%d/%d", caller, seq)}})
				mu.Lock()
				if out[0].Err != nil {
					fails++
				} else {
					acked = append(acked, ack{caller, seq, out[0]})
				}
				mu.Unlock()
				total.Add(1)
			}
		})
	}
	defer func() { // on failure too
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	waitN := func(what string, n int64) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for total.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d calls answered, want %d", what, total.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitN("the start", 200)
	l0 := leaderOf(t, k, tp, 0)
	moveLeader(t, k, tp, 0, l0%3+1)
	t.Logf("moved the leader of %s/0 from %d to %d at %d calls", tp, l0, l0%3+1, total.Load())
	waitN("after the move", total.Load()+200)
	l1 := leaderOf(t, k, tp, 1)
	if err := k.Real.Kill(l1); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %d, the leader of %s/1, at %d calls", l1, tp, total.Load())
	waitN("after the kill", total.Load()+200)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := k.Real.Restart(ctx, l1); err != nil {
		t.Fatal(err)
	}
	waitN("after the restart", total.Load()+200)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d records acknowledged, %d failed", len(acked), fails)
	var want int
	for p := range int32(2) {
		hw, err := c.ListOffset(testCtx(t), tp, p, -1)
		if err != nil {
			t.Fatal(err)
		}
		want += int(hw)
	}
	got := readAll(t, k, tp, want)
	seen := map[string]int64{}
	at := map[int32]map[int64]string{}
	for p, rs := range got {
		at[p] = map[int64]string{}
		for _, r := range rs {
			if o, dup := seen[string(r.Value)]; dup {
				t.Fatalf("record %s written twice: at %d and %d of partition %d", r.Value, o, r.Offset, p)
			}
			seen[string(r.Value)] = r.Offset
			at[p][r.Offset] = string(r.Value)
		}
	}
	last := map[int]int64{}
	for _, a := range acked {
		if v := at[a.p.Partition][a.p.Offset]; v != fmt.Sprintf("%d/%d", a.caller, a.seq) {
			t.Fatalf("caller %d record %d acknowledged at %d/%d, which holds %q", a.caller, a.seq, a.p.Partition, a.p.Offset, v)
		}
		if o, ok := last[a.caller]; ok && a.p.Offset <= o {
			t.Fatalf("caller %d: record %d at offset %d, after one at %d", a.caller, a.seq, a.p.Offset, o)
		}
		last[a.caller] = a.p.Offset
	}
}
