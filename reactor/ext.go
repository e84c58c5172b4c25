package reactor

import (
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// dispatchExt starts one of kafkaedge's commands (EXTENSIONS.md) on a
// goroutine, as a Kafka call of the route's cluster. It returns false,
// without side effects, when no slot is free or, for a FetchMany, when its
// answer does not fit the connection's outbound budget or the node's memory
// budget. Called on the loop.
func (st *connState) dispatchExt(r kafkaReq) bool {
	s := st.s
	var mem int64
	many, isMany := r.ext.(*pubsub.CmdKafkaFetchMany)
	if isMany {
		// Its answer is at most one fetch answer: the same reservations.
		if st.fetches > 0 && st.queued()+(st.fetches+1)*s.maxBody > s.cfg.MaxOutbound {
			return false
		}
		mem = s.fetchMem + s.callMem
		if !st.takeMem(mem, r.start) {
			return false
		}
	}
	if p, ok := r.ext.(*pubsub.CmdKafkaProduce); ok {
		// Its records are held until they are written.
		mem = produceBytes(p)
		if !st.takeMem(mem, r.start) {
			return false
		}
	}
	if !st.acquireSlots(r.start) {
		s.giveMem(st.route.cl, mem)
		return false
	}
	s.calls.Add(1)
	st.inflight++
	if isMany {
		st.fetches++
	}
	rt := st.route
	go func() {
		defer s.calls.Add(-1)
		defer s.releaseSlots(rt.cl)
		switch m := r.ext.(type) {
		case *pubsub.CmdKafkaMetadata:
			s.runMetadata(st, rt.client, r.seq, r.start, m)
		case *pubsub.CmdKafkaFetchMany:
			defer s.giveMem(rt.cl, s.callMem)
			s.runFetchMany(st, rt.client, r.seq, r.start, many)
		case *pubsub.CmdKafkaSubscribe:
			s.runSubscribe(r.sub, m, r.start)
		case *pubsub.CmdKafkaCommit:
			s.runCommit(st, rt.client, r.seq, r.start, m, r.sub)
		case *pubsub.CmdKafkaCommitted:
			s.runCommitted(st, rt.client, r.seq, r.start, m)
		case *pubsub.CmdKafkaProduce:
			s.runProduce(st, rt, r.seq, r.start, m, mem)
		}
	}()
	return true
}

// runMetadata answers CmdKafkaMetadata: every topic named, or every topic of
// the cluster, with its partitions or why it has none.
func (s *Server) runMetadata(st *connState, client kafkaClient, seq, start int64, m *pubsub.CmdKafkaMetadata) {
	parts, err := client.Partitions(s.baseCtx, m.GetTopics())
	j := newJob(st)
	j.cmd, j.start = CmdMetadata, start
	if err != nil {
		code, reason := s.kafkaFailure(callKey{partition: -1}, err)
		j.own = appendErrorResp(j.own[:0], &j.scratch, seq, code, pubsub.MetadataErrorMessage(reason))
		s.send(j)
		return
	}
	resp := &pubsub.KafkaMetadataResp{Topics: make([]*pubsub.KafkaTopicInfo, len(parts))}
	for i, p := range parts {
		info := &pubsub.KafkaTopicInfo{Name: p.Topic, Partitions: p.Partitions}
		if p.Err != nil {
			code, reason, _ := kafkaError(p.Err)
			info.Error = &pubsub.ErrorResp{Code: code, Message: reason}
		}
		resp.Topics[i] = info
	}
	j.ok = true
	body, _ := proto.MarshalOptions{}.MarshalAppend(j.scratch[:0], resp)
	j.scratch = body
	j.own = appendResp(j.own[:0], seq, pubsub.FieldKafkaMetadataResp, body)
	s.send(j)
}

// minManyFetch is the least a FetchMany asks Kafka for per partition.
const minManyFetch = 64 << 10

// runFetchMany answers CmdKafkaFetchMany: one KafkaPartitionRecords per
// target, in order, each with its messages or its own error. The answer's
// messages share one answer's size (max_bytes, at most maxBody) evenly
// among the targets, each at least its first message.
func (s *Server) runFetchMany(st *connState, client kafkaClient, seq, start int64, m *pubsub.CmdKafkaFetchMany) {
	targets := m.GetTargets()
	total := s.maxBody
	if mb := int(m.GetMaxBytes()); mb > 0 && mb < total {
		total = mb
	}
	each := max(total/len(targets), 1)
	// Kafka returns a first batch larger than a partition's limit only for
	// the first partition of its answer: ask for at least minManyFetch of
	// each, so that the others' first messages come too.
	o := kafkawire.FetchOptions{MinBytes: max(m.GetMinBytes(), 0), MaxBytes: int32(min(max(each, minManyFetch), math.MaxInt32))}
	if w := m.GetMaxWaitMs(); w > 0 {
		o.MaxWait = min(time.Duration(w)*time.Millisecond, s.cfg.MaxFetchWait)
	}
	parts := make([]kafkawire.FetchPartition, len(targets))
	for i, t := range targets {
		parts[i] = kafkawire.FetchPartition{Topic: t.GetTopic(), Partition: t.GetPartition(), Offset: t.GetOffset()}
	}
	results, err := client.FetchManyWith(s.baseCtx, parts, o)
	j := newJob(st)
	j.cmd, j.start, j.mem = CmdFetchMany, start, s.fetchMem
	if err != nil {
		code, reason := s.kafkaFailure(callKey{partition: -1}, err)
		j.own = appendErrorResp(j.own[:0], &j.scratch, seq, code, pubsub.FetchManyErrorMessage(reason))
		s.send(j)
		return
	}
	var body, msgs, rec []byte
	for i, res := range results {
		p := parts[i]
		if res.Err != nil {
			code, reason := s.kafkaFailure(callKey{topic: p.Topic, partition: p.Partition}, res.Err)
			rec = pubsub.AppendKafkaPartitionRecords(rec[:0], p.Topic, p.Partition, nil, 0, 0, code,
				pubsub.FetchErrorMessage(p.Topic, p.Partition, reason))
		} else {
			var n int
			var next int64
			msgs, n, next = appendMessages(msgs[:0], pubsub.FieldRecordsMessages, res.Records, p.Offset, each, m.GetHeaders())
			if n == 0 || next == res.Records[len(res.Records)-1].Offset+1 {
				next = max(next, res.NextOffset)
			}
			j.msgs += n
			rec = pubsub.AppendKafkaPartitionRecords(rec[:0], p.Topic, p.Partition, msgs, res.HighWatermark, next, 0, "")
		}
		res.Release()
		body = pubsub.AppendKafkaFetchManyEntry(body, rec)
	}
	j.ok = true
	j.own = appendResp(j.own[:0], seq, pubsub.FieldKafkaFetchManyResp, body)
	s.send(j)
}
