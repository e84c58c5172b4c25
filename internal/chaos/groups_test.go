package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/internal/syncbuf"
	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file is the consumer groups' end-to-end test (issue 13): one group
// of WebSocket members on two kafkaedge processes, a franz-go member and a
// kcat (librdkafka) member, on one 12-partition topic, through members
// joining and leaving in every way a member can.

const (
	fleetPartitions = 12
	fleetRound      = 5 // records produced to each partition per round
	// fleetSession is the session timeout of every member (-group-session-timeout,
	// kcat's, and the brokers' for KIP-848): how long a killed node's members
	// hold their partitions.
	fleetSession = 10 * time.Second
)

// fleetBrokerConfig makes the brokers' KIP-848 members heartbeat every
// second and expire after fleetSession (5 s and 45 s by default), so that
// the test waits seconds, not minutes, for each rebalance.
var fleetBrokerConfig = map[string]string{
	"group.consumer.heartbeat.interval.ms":     "1000",
	"group.consumer.min.heartbeat.interval.ms": "1000",
	"group.consumer.session.timeout.ms":        strconv.Itoa(int(fleetSession / time.Millisecond)),
	"group.consumer.min.session.timeout.ms":    "6000",
}

// TestGroupFleet: every partition is owned by exactly one member at a
// time, whatever joins or leaves, on kfake (the classic protocol: kfake
// has no mixed groups), Kafka 3.9 (classic) and Kafka 4.x (KIP-848's
// consumer protocol for the edge and franz-go, kcat a classic member of
// the same group). See runGroupFleet for the steps and what is checked.
func TestGroupFleet(t *testing.T) {
	if kcat, _ := exec.LookPath("kcat"); kcat == "" {
		t.Skip("kcat not on PATH (Debian package kcat)")
	}
	t.Run("kfake", func(t *testing.T) {
		k := kafkatest.Fake(t, 1, kfake.BrokerConfigs(fleetBrokerConfig))
		runGroupFleet(t, k, "classic")
	})
	for _, v := range kafkatest.Versions() {
		t.Run("kafka-"+v, func(t *testing.T) {
			var props []string
			for key, val := range fleetBrokerConfig {
				props = append(props, key+"="+val)
			}
			slices.Sort(props)
			k := kafkatest.Own(t, v, 1, props...)
			protocol := "consumer"
			if strings.HasPrefix(v, "3.") {
				protocol = "classic"
			}
			runGroupFleet(t, k, protocol)
		})
	}
}

// fleet is one run: the members, the nodes, and every delivery of every
// member.
type fleet struct {
	t        *testing.T
	k        *kafkatest.Kafka
	topic    string
	group    string
	protocol string // "classic" or "consumer": the edge's and franz-go's
	began    time.Time

	mu      sync.Mutex
	members []fleetMember
	log     [fleetPartitions][]delivery // by partition, in the order received
	next    [fleetPartitions]int64      // produced so far, by partition
	changed chan struct{}               // signalled on every delivery or assignment
}

// delivery is one message received by one member.
type delivery struct {
	member string
	offset int64
}

// fleetMember is what the checks need of any member.
type fleetMember interface {
	name() string
	live() bool
	// owned is the partitions the member owns, as it was told.
	owned() []int32
	// problems is what the member saw that breaks a promise.
	problems() []string
}

func (f *fleet) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fleet) logf(format string, args ...any) {
	f.t.Helper()
	f.t.Logf("%5.1fs "+format, append([]any{time.Since(f.began).Seconds()}, args...)...)
}

// delivered notes a message received by member.
func (f *fleet) delivered(member string, p int32, offset int64) {
	f.mu.Lock()
	f.log[p] = append(f.log[p], delivery{member, offset})
	f.mu.Unlock()
	f.signal()
}

func (f *fleet) add(m fleetMember) {
	f.mu.Lock()
	f.members = append(f.members, m)
	f.mu.Unlock()
}

// await waits, up to waitLimit, until cond holds, rechecking on every
// delivery or assignment (and every 100 ms, for what has no event: a
// process's death).
func (f *fleet) await(what string, cond func() (bool, string)) {
	f.t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within %s: %s", what, waitLimit, state)
		}
		select {
		case <-f.changed:
		case <-tick.C:
		}
	}
}

// stable waits until the live members own every partition exactly once,
// balanced (each member ceil or floor of its share, as every assignor of
// the test makes it for one topic), and no member saw a broken promise.
func (f *fleet) stable(what string) map[int32]string {
	f.t.Helper()
	var owners map[int32]string
	f.await(what+": every partition owned once, balanced", func() (bool, string) {
		f.check()
		f.mu.Lock()
		members := slices.Clone(f.members)
		f.mu.Unlock()
		owners = map[int32]string{}
		var live []fleetMember
		var desc []string
		ok := true
		for _, m := range members {
			if !m.live() {
				continue
			}
			live = append(live, m)
			ps := m.owned()
			desc = append(desc, fmt.Sprintf("%s %v", m.name(), ps))
			for _, p := range ps {
				if o, dup := owners[p]; dup {
					ok = false
					desc = append(desc, fmt.Sprintf("partition %d owned by %s and %s", p, o, m.name()))
				}
				owners[p] = m.name()
			}
		}
		if len(owners) != fleetPartitions || len(live) == 0 {
			ok = false
		}
		lo := fleetPartitions / max(1, len(live))
		hi := lo
		if fleetPartitions%max(1, len(live)) != 0 {
			hi++
		}
		for _, m := range live {
			if n := len(m.owned()); n < lo || n > hi {
				ok = false
			}
		}
		return ok, strings.Join(desc, "; ")
	})
	f.logf("%s: stable: %v", what, f.ownerList(owners))
	return owners
}

func (f *fleet) ownerList(owners map[int32]string) string {
	by := map[string][]int32{}
	for p, m := range owners {
		by[m] = append(by[m], p)
	}
	var out []string
	for m, ps := range by {
		slices.Sort(ps)
		out = append(out, fmt.Sprintf("%s %v", m, ps))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// check fails the test with the broken promises any member saw.
func (f *fleet) check() {
	f.t.Helper()
	f.mu.Lock()
	members := slices.Clone(f.members)
	f.mu.Unlock()
	for _, m := range members {
		if ps := m.problems(); len(ps) > 0 {
			f.t.Fatalf("%s: %s", m.name(), strings.Join(ps, "; "))
		}
	}
}

// produce writes fleetRound records to every partition and returns the
// offsets they took, from and to (exclusive), by partition.
func (f *fleet) produce() (from, to [fleetPartitions]int64) {
	f.t.Helper()
	f.mu.Lock()
	from = f.next
	f.mu.Unlock()
	var recs []*kgo.Record
	for p := range int32(fleetPartitions) {
		for i := range fleetRound {
			recs = append(recs, &kgo.Record{Topic: f.topic, Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, from[p]+int64(i))})
		}
	}
	f.k.Produce(f.t, nil, recs...)
	f.mu.Lock()
	defer f.mu.Unlock()
	for p := range f.next {
		f.next[p] += fleetRound
	}
	return from, f.next
}

// round produces fleetRound records to every partition and waits until
// each is delivered. With the group stable at owners (no rebalance in
// between), each is delivered exactly once, by the partition's owner:
// nothing is pushed twice within a generation.
func (f *fleet) round(what string, owners map[int32]string) {
	f.t.Helper()
	from, to := f.produce()
	f.await(what+": every record of the round delivered", func() (bool, string) {
		f.check()
		f.mu.Lock()
		defer f.mu.Unlock()
		if miss := f.missing(from, to); miss != "" {
			return false, miss + " (owners " + f.ownerList(owners) + ")"
		}
		return true, ""
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	for p := range int32(fleetPartitions) {
		for _, d := range f.log[p] {
			if d.offset >= from[p] && d.offset < to[p] && d.member != owners[p] {
				f.t.Fatalf("%s: partition %d offset %d delivered to %s, but %s owns it (the group was stable)", what, p, d.offset, d.member, owners[p])
			}
		}
		seen := map[int64]bool{}
		for _, d := range f.log[p] {
			if d.offset >= from[p] && d.offset < to[p] {
				if seen[d.offset] {
					f.t.Fatalf("%s: partition %d offset %d delivered twice within one generation", what, p, d.offset)
				}
				seen[d.offset] = true
			}
		}
	}
	f.logf("%s: %d records delivered once each", what, fleetPartitions*fleetRound)
}

// missing names the first record from..to (by partition) that no member
// read, or is "". Called with f.mu held.
func (f *fleet) missing(from, to [fleetPartitions]int64) string {
	for p := range fleetPartitions {
		got := map[int64]bool{}
		for _, d := range f.log[p] {
			got[d.offset] = true
		}
		for o := from[p]; o < to[p]; o++ {
			if !got[o] {
				return fmt.Sprintf("partition %d offset %d not read", p, o)
			}
		}
	}
	return ""
}

// handoff checks where the next owners of gone's partitions started:
// exactly at want[p] (exact), or at most there (atLeastOnce: a member that
// died without committing leaves its partitions to be read again from the
// last commit, never past what it read).
func (f *fleet) handoff(what, gone string, want map[int32]int64, atLeastOnce bool) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, next := range want {
		last := -1
		for i, d := range f.log[p] {
			if d.member == gone {
				last = i
			}
		}
		var first *delivery
		for i := last + 1; i < len(f.log[p]); i++ {
			if f.log[p][i].member != gone {
				first = &f.log[p][i]
				break
			}
		}
		switch {
		case first == nil:
			f.t.Fatalf("%s: nobody read partition %d after %s", what, p, gone)
		case atLeastOnce && first.offset > next:
			f.t.Fatalf("%s: %s read partition %d from %d, past %d where %s stopped: messages lost", what, first.member, p, first.offset, next, gone)
		case !atLeastOnce && first.offset != next:
			f.t.Fatalf("%s: %s read partition %d from %d, want %d where %s's commit left it", what, first.member, p, first.offset, next, gone)
		}
	}
	f.logf("%s: %s's partitions %v taken over from %v", what, gone, keys(want), want)
}

// keys returns the partitions of m, sorted.
func keys[V any](m map[int32]V) []int32 {
	var ks []int32
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// wsMember is a group subscription of one WebSocket connection. Its reader
// checks each push against what the connection was told: a message of a
// partition the member does not own, or not the next offset, is a broken
// promise.
type wsMember struct {
	f       *fleet
	label   string
	node    *node
	conn    *wsclient.Conn
	tcp     net.Conn
	auto    bool
	replies chan *pubsub.PubSubResp

	mu       sync.Mutex
	own      map[int32]int64 // owned partition: the next offset expected
	last     map[int32]int64 // every partition it read: the next offset after its last message
	memberID string
	gen      int32
	ended    bool
	broken   []string
	done     chan struct{}
}

// joinWS opens a connection to n and subscribes it to the group.
func (f *fleet) joinWS(label string, n *node, auto bool) *wsMember {
	f.t.Helper()
	m := &wsMember{f: f, label: label, node: n, auto: auto, replies: make(chan *pubsub.PubSubResp, 16),
		own: map[int32]int64{}, last: map[int32]int64{}, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws://"+n.listen+"/g", wsclient.Options{WrapConn: func(c net.Conn) net.Conn {
		m.tcp = c
		return c
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	m.conn = c
	f.t.Cleanup(func() { c.Close() })
	if err := c.Send(&pubsub.PubSubReq{Sequence: 1, Req: &pubsub.PubSubReq_CmdKafkaSubscribe{CmdKafkaSubscribe: &pubsub.CmdKafkaSubscribe{
		Topic: f.topic, Group: f.group, AutoCommit: auto, Start: &pubsub.CmdKafkaSubscribe_Offset{Offset: -2}}}}); err != nil {
		f.t.Fatal(err)
	}
	go m.read()
	r := m.reply()
	if r.GetKafkaSubscribeResp() == nil {
		f.t.Fatalf("%s: subscribe answered %v", label, r)
	}
	f.add(m)
	return m
}

func (m *wsMember) name() string { return m.label }

func (m *wsMember) live() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.ended
}

func (m *wsMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return nil
	}
	return keys(m.own)
}

func (m *wsMember) problems() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.broken)
}

// lastRead returns, for each partition the member owns, the next offset
// after the last message it read.
func (m *wsMember) lastRead() map[int32]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32]int64{}
	for p, next := range m.own {
		out[p] = next
	}
	return out
}

func (m *wsMember) breakf(format string, args ...any) {
	m.broken = append(m.broken, fmt.Sprintf(format, args...))
}

// read receives until the connection ends.
func (m *wsMember) read() {
	defer close(m.done)
	defer func() {
		m.mu.Lock()
		m.ended = true
		m.mu.Unlock()
		m.f.signal()
	}()
	for {
		r, err := m.conn.Recv()
		if err != nil {
			return
		}
		switch {
		case r.GetKafkaAssignmentResp() != nil:
			a := r.GetKafkaAssignmentResp()
			m.mu.Lock()
			for _, p := range a.GetRevoked() {
				delete(m.own, p)
			}
			for _, pos := range a.GetAssigned() {
				if _, had := m.own[pos.GetPartition()]; !had {
					m.own[pos.GetPartition()] = pos.GetOffset()
				}
			}
			m.memberID, m.gen = a.GetMemberId(), a.GetGeneration()
			m.mu.Unlock()
			m.f.signal()
		case r.GetKafkaRecords() != nil:
			rec := r.GetKafkaRecords()
			p := rec.GetPartition()
			m.mu.Lock()
			next, ok := m.own[p]
			if !ok {
				m.breakf("pushed partition %d, which it does not own", p)
			}
			for _, msg := range rec.GetMessages() {
				if ok && msg.GetOffset() != next {
					m.breakf("partition %d: pushed offset %d, want %d", p, msg.GetOffset(), next)
				}
				next = msg.GetOffset() + 1
				m.f.delivered(m.label, p, msg.GetOffset())
			}
			if ok {
				m.own[p] = max(next, rec.GetNextOffset())
				m.last[p] = m.own[p]
			}
			m.mu.Unlock()
		case r.GetKafkaSubscriptionEndResp() != nil:
			m.mu.Lock()
			m.breakf("the subscription ended: %v", r.GetKafkaSubscriptionEndResp())
			m.ended = true
			m.mu.Unlock()
			m.f.signal()
		default:
			m.replies <- r
		}
	}
}

// reply waits for the answer to the member's last request.
func (m *wsMember) reply() *pubsub.PubSubResp {
	m.f.t.Helper()
	select {
	case r := <-m.replies:
		return r
	case <-m.done:
		m.f.t.Fatalf("%s: the connection ended before the answer", m.label)
	case <-time.After(waitLimit):
		m.f.t.Fatalf("%s: no answer in %s", m.label, waitLimit)
	}
	return nil
}

// commit commits offs as the member and returns the answer.
func (m *wsMember) commit(seq int64, offs map[int32]int64) *pubsub.PubSubResp {
	m.f.t.Helper()
	var list []*pubsub.KafkaPartitionOffset
	for _, p := range keys(offs) {
		list = append(list, &pubsub.KafkaPartitionOffset{Partition: p, Offset: offs[p]})
	}
	if err := m.conn.Send(&pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaCommit{CmdKafkaCommit: &pubsub.CmdKafkaCommit{
		Group: m.f.group, Topic: m.f.topic, Offsets: list, Subscription: 1}}}); err != nil {
		m.f.t.Fatal(err)
	}
	return m.reply()
}

// committed reads the group's committed offsets through the edge.
func (m *wsMember) committed(seq int64) map[int32]int64 {
	m.f.t.Helper()
	if err := m.conn.Send(&pubsub.PubSubReq{Sequence: seq, Req: &pubsub.PubSubReq_CmdKafkaCommitted{CmdKafkaCommitted: &pubsub.CmdKafkaCommitted{
		Group: m.f.group, Topic: m.f.topic}}}); err != nil {
		m.f.t.Fatal(err)
	}
	r := m.reply()
	if r.GetKafkaCommittedResp() == nil {
		m.f.t.Fatalf("%s: committed answered %v", m.label, r)
	}
	out := map[int32]int64{}
	for _, o := range r.GetKafkaCommittedResp().GetOffsets() {
		out[o.GetPartition()] = o.GetOffset()
	}
	return out
}

// closeClean ends the connection with a close handshake.
func (m *wsMember) closeClean() {
	_ = m.conn.CloseGracefully()
	<-m.done
}

// reset ends the connection with a TCP reset, as a crashed device's
// network would.
func (m *wsMember) reset() {
	_ = m.tcp.(*net.TCPConn).SetLinger(0)
	_ = m.tcp.Close()
	<-m.done
}

// kgoMember is a franz-go member of the group: it commits what it read
// after every poll (and rebalances only between polls).
type kgoMember struct {
	f  *fleet
	cl *kgo.Client

	mu   sync.Mutex
	own  map[int32]bool
	done chan struct{}
}

func (f *fleet) joinKgo() *kgoMember {
	m := &kgoMember{f: f, own: map[int32]bool{}, done: make(chan struct{})}
	note := func(ps map[string][]int32, own bool) {
		m.mu.Lock()
		for _, p := range ps[f.topic] {
			if own {
				m.own[p] = true
			} else {
				delete(m.own, p)
			}
		}
		m.mu.Unlock()
		f.signal()
	}
	opts := []kgo.Opt{kgo.ConsumerGroup(f.group), kgo.ConsumeTopics(f.topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(fleetSession), kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { note(ps, true) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			// Commit what was read before giving the partitions up.
			_ = cl.CommitUncommittedOffsets(ctx)
			note(ps, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { note(ps, false) }),
		kgo.BlockRebalanceOnPoll()}
	if f.protocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer())
	} else {
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	m.cl = f.k.Client(f.t, opts...)
	go func() {
		defer close(m.done)
		for {
			fs := m.cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { f.delivered("kgo", r.Partition, r.Offset) })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = m.cl.CommitUncommittedOffsets(ctx)
			cancel()
			m.cl.AllowRebalance()
		}
	}()
	f.add(m)
	return m
}

func (m *kgoMember) name() string       { return "kgo" }
func (m *kgoMember) live() bool         { return true }
func (m *kgoMember) problems() []string { return nil }

func (m *kgoMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return keys(m.own)
}

// kcatMember is kcat in balanced consumer mode (librdkafka's classic
// protocol, cooperative-sticky): its stdout is "partition offset" per
// message, its stderr says each rebalance.
type kcatMember struct {
	f      *fleet
	cmd    *exec.Cmd
	stderr *syncbuf.Buffer

	mu   sync.Mutex
	own  map[int32]bool
	done chan struct{}
}

// kcatRebalance is kcat's line for a rebalance: "% Group g rebalanced:
// incremental assignment of 2 partition(s) (memberid m, COOPERATIVE
// rebalance protocol): t [6], t [10]" (or revoke; "rebalanced
// (memberid m): assigned: t [0]" or revoked with the eager protocol).
var (
	kcatRebalance = regexp.MustCompile(`rebalanced(?: \(memberid [^)]*\))?: (?:incremental (assignment|unassignment|revoke) of \d+ partition\(s\) \([^)]*\)|(assigned|revoked)):(.*)`)
	kcatPartition = regexp.MustCompile(`\[(\d+)\]`)
)

func (f *fleet) joinKcat() *kcatMember {
	f.t.Helper()
	m := &kcatMember{f: f, stderr: &syncbuf.Buffer{}, own: map[int32]bool{}, done: make(chan struct{})}
	m.cmd = exec.Command("kcat", "-b", strings.Join(f.k.Brokers, ","), "-G", f.group, "-f", "%p %o\n", "-u",
		"-X", "auto.offset.reset=earliest", "-X", "partition.assignment.strategy=cooperative-sticky",
		"-X", "session.timeout.ms="+strconv.Itoa(int(fleetSession/time.Millisecond)), "-X", "heartbeat.interval.ms=1000",
		"-X", "auto.commit.interval.ms=500", f.topic)
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var p int32
			var o int64
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &p, &o); err == nil {
				f.delivered("kcat", p, o)
			}
		}
	})
	wg.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = m.stderr.Write([]byte(line + "\n"))
			g := kcatRebalance.FindStringSubmatch(line)
			if g == nil {
				continue
			}
			m.mu.Lock()
			assigned := g[1] == "assignment" || g[2] == "assigned"
			for _, pm := range kcatPartition.FindAllStringSubmatch(g[3], -1) {
				p, _ := strconv.Atoi(pm[1])
				if assigned {
					m.own[int32(p)] = true
				} else {
					delete(m.own, int32(p))
				}
			}
			m.mu.Unlock()
			f.signal()
		}
	})
	go func() {
		wg.Wait()
		_ = m.cmd.Wait()
		close(m.done)
	}()
	f.t.Cleanup(func() {
		if f.t.Failed() {
			f.t.Logf("kcat's stderr:\n%s", m.stderr)
		}
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
	f.add(m)
	return m
}

func (m *kcatMember) name() string { return "kcat" }

func (m *kcatMember) live() bool {
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

func (m *kcatMember) problems() []string {
	if !m.live() {
		return []string{"kcat exited: " + m.stderr.String()}
	}
	return nil
}

func (m *kcatMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return keys(m.own)
}

// runGroupFleet is the test on one cluster. protocol is the one the edge's
// members and franz-go's use ("classic" or "consumer").
//
//  1. Members join: ws1 (manual commits) and ws2 (auto_commit) on node A,
//     ws3 (auto_commit) on node B, kgo, kcat. Stable: every partition owned
//     exactly once, balanced; a round of records is delivered once each,
//     by the owners.
//  2. Offsets committed through the edge are what franz-go's admin client
//     reads, and franz-go's commits are what the edge reads.
//  3. ws2 closes cleanly, ws3's TCP connection is reset: their partitions
//     are taken over exactly at what the node pushed (auto_commit commits
//     what was pushed when a subscription ends: at most once).
//  4. ws1 commits two messages short of what it read on each partition and
//     reconnects (on node B): its partitions are read again from its
//     commit (at least once across a reconnect).
//  5. ws4 (auto_commit) joins on node A, which is then killed (SIGKILL):
//     after the session timeout its partitions are taken over from its last
//     commit, never past what it read.
//  6. A member the coordinator removed (a LeaveGroup or leaving heartbeat
//     sent for it) commits with its old generation: refused, and the
//     committed offsets do not move.
//
// Every member's pushes are checked as they arrive: only owned partitions,
// each offset the next one.
func runGroupFleet(t *testing.T, k *kafkatest.Kafka, protocol string) {
	f := &fleet{t: t, k: k, protocol: protocol, began: time.Now(), changed: make(chan struct{}, 1)}
	f.topic = k.Topic(t, "group-fleet", fleetPartitions)
	f.group = "fleet-" + strings.ReplaceAll(t.Name(), "/", "-")
	args := []string{"-route", "/g=" + strings.Join(k.Brokers, ","), "-group-protocol", protocol,
		"-group-session-timeout", fleetSession.String()}
	a := startNode(t, nodeBin, args...)
	b := startNode(t, nodeBin, args...)
	f.produce()

	// 1.
	ws1 := f.joinWS("ws1", a, false)
	ws2 := f.joinWS("ws2", a, true)
	ws3 := f.joinWS("ws3", b, true)
	kg := f.joinKgo()
	f.joinKcat()
	owners := f.stable("joined")
	f.round("joined", owners)

	// 2.
	mine := ws1.lastRead()
	commit := map[int32]int64{}
	for p, next := range mine {
		commit[p] = next - 1
	}
	if r := ws1.commit(2, commit); r.GetKafkaCommitResp() == nil {
		t.Fatalf("ws1's commit: %v", r)
	}
	adm := k.Admin(t)
	got, err := adm.FetchOffsets(context.Background(), f.group)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range commit {
		if c, ok := got.Lookup(f.topic, p); !ok || c.At != o {
			t.Fatalf("partition %d: franz-go reads committed %v, the edge committed %d", p, c.At, o)
		}
	}
	// franz-go commits after each poll: once it committed all it read...
	f.await("franz-go's commits", func() (bool, string) {
		got, err = adm.FetchOffsets(context.Background(), f.group)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range kg.owned() {
			if c, _ := got.Lookup(f.topic, p); c.At != f.next[p] {
				return false, fmt.Sprintf("partition %d committed at %d, read to %d", p, c.At, f.next[p])
			}
		}
		return true, ""
	})
	// ... the edge reads the same.
	edge := ws1.committed(3)
	for _, p := range kg.owned() {
		if c, _ := got.Lookup(f.topic, p); edge[p] != c.At {
			t.Fatalf("partition %d (franz-go's): the edge reads committed %d, franz-go's admin %d", p, edge[p], c.At)
		}
	}
	f.logf("commits: the edge's read by franz-go (%v), franz-go's read by the edge (%v)", keys(commit), kg.owned())

	// 3.
	left := ws2.lastRead()
	ws2.closeClean()
	owners = f.stable("ws2 closed")
	f.round("ws2 closed", owners)
	f.handoff("ws2 closed", "ws2", left, false)
	left = ws3.lastRead()
	ws3.reset()
	owners = f.stable("ws3 reset")
	f.round("ws3 reset", owners)
	f.handoff("ws3 reset", "ws3", left, false)

	// 4.
	mine = ws1.lastRead()
	commit = map[int32]int64{}
	for p, next := range mine {
		commit[p] = next - 2
	}
	if r := ws1.commit(4, commit); r.GetKafkaCommitResp() == nil {
		t.Fatalf("ws1's commit: %v", r)
	}
	ws1.closeClean()
	ws1b := f.joinWS("ws1-again", b, false)
	owners = f.stable("ws1 reconnected")
	f.round("ws1 reconnected", owners)
	f.handoff("ws1 reconnected", "ws1", commit, false)

	// 5.
	ws4 := f.joinWS("ws4", a, true)
	owners = f.stable("ws4 joined")
	f.round("ws4 joined", owners)
	left = ws4.lastRead()
	a.kill()
	<-ws4.done
	owners = f.stable("node A killed")
	f.round("node A killed", owners)
	f.handoff("node A killed", "ws4", left, true)

	// 6.
	ws1b.mu.Lock()
	memberID, gen := ws1b.memberID, ws1b.gen
	ws1b.mu.Unlock()
	mine = ws1b.lastRead()
	before, err := adm.FetchOffsets(context.Background(), f.group)
	if err != nil {
		t.Fatal(err)
	}
	f.removeMember(memberID, gen)
	commit = map[int32]int64{}
	for p := range mine {
		commit[p] = 0
	}
	r := ws1b.commit(5, commit)
	e := r.GetErrorResp()
	if e == nil {
		t.Fatalf("a commit as a member the coordinator removed: %v", r)
	}
	after, err := adm.FetchOffsets(context.Background(), f.group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range mine {
		b, _ := before.Lookup(f.topic, p)
		a, _ := after.Lookup(f.topic, p)
		if a.At != b.At {
			t.Fatalf("partition %d: committed %d before the refused commit, %d after", p, b.At, a.At)
		}
	}
	f.logf("a removed member's commit: %s", e.GetMessage())
	f.check()

	// Nothing was lost: every record was read by some member.
	f.mu.Lock()
	defer f.mu.Unlock()
	if miss := f.missing([fleetPartitions]int64{}, f.next); miss != "" {
		t.Fatal(miss)
	}
}

// removeMember has the coordinator remove an edge member, behind the
// node's back: a LeaveGroup for it (classic) or a leaving heartbeat
// (KIP-848).
func (f *fleet) removeMember(memberID string, gen int32) {
	f.t.Helper()
	cl := f.k.Client(f.t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if f.protocol == "consumer" {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = f.group, memberID, -1
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			f.t.Fatalf("remove member %s: %v", memberID, err)
		}
		return
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = f.group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = memberID
	req.Members = append(req.Members, lm)
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err == nil && len(resp.Members) == 1 {
		err = kerr.ErrorForCode(resp.Members[0].ErrorCode)
	}
	if err != nil {
		f.t.Fatalf("remove member %s (generation %d): %v", memberID, gen, err)
	}
}
