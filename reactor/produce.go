package reactor

import (
	"errors"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/kafkawire/record"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file serves CmdKafkaProduce: the records go to the route's
// kafkawire.Client, which batches them with every other connection's for
// the same partitions (kafkawire.Client.Produce), and the answer lists each
// record's partition and offset, or its error.

// maxProduceRecords is the most records one CmdKafkaProduce may carry.
const maxProduceRecords = 1000

// produce checks a CmdKafkaProduce on the loop and hands it to Kafka.
func (st *connState) produce(seq int64, m *pubsub.CmdKafkaProduce) {
	partition := int32(-1)
	if m.Partition != nil {
		partition = m.GetPartition()
	}
	reason := ""
	switch n := len(m.GetRecords()); {
	case m.GetTopic() == "":
		reason = "no topic"
	case partition < -1 || m.Partition != nil && partition < 0:
		reason = "negative partition"
	case n == 0:
		reason = "no records"
	case n > maxProduceRecords:
		reason = strconv.Itoa(n) + " records in one request, more than the limit of " + strconv.Itoa(maxProduceRecords)
	case m.GetAcks() > pubsub.Acks_ACKS_NONE:
		reason = "unknown acks " + strconv.Itoa(int(m.GetAcks()))
	}
	if reason != "" {
		st.s.obs.Request(CmdProduce, false, 0)
		ls := st.loop
		ls.out = appendErrorResp(ls.out, &ls.body, seq, 0, pubsub.ProduceErrorMessage(m.GetTopic(), partition, reason))
		return
	}
	st.startKafka(kafkaReq{cmd: pubsub.FieldCmdKafkaProduce, seq: seq, ext: m, start: st.s.now()})
}

// produceBytes is what a CmdKafkaProduce's records hold of the memory
// budget until they are written: their keys, values and headers.
func produceBytes(m *pubsub.CmdKafkaProduce) int64 {
	var n int64
	for _, r := range m.GetRecords() {
		n += int64(len(r.GetKey()) + len(r.GetValue()) + 32)
		for _, h := range r.GetHeaders() {
			n += int64(len(h.GetKey()) + len(h.GetValue()))
		}
	}
	return n
}

// acksOf maps the request's acks to kafkawire's.
func acksOf(a pubsub.Acks) kafkawire.Acks {
	switch a {
	case pubsub.Acks_ACKS_LEADER:
		return kafkawire.AcksLeader
	case pubsub.Acks_ACKS_NONE:
		return kafkawire.AcksNone
	}
	return kafkawire.AcksAll
}

// runProduce answers a CmdKafkaProduce once every record is settled:
// KafkaProduceResp with one result per record, or, when every record
// failed for one reason, an ErrorResp with the produce error text. It
// holds the request's Kafka slot and mem of the memory budget until then.
func (s *Server) runProduce(st *connState, rt *route, seq, start int64, m *pubsub.CmdKafkaProduce, mem int64) {
	defer s.giveMem(rt.cl, mem)
	partition := int32(-1)
	if m.Partition != nil {
		partition = m.GetPartition()
	}
	now := time.Now().UnixMilli()
	recs := make([]record.Record, len(m.GetRecords()))
	for i, r := range m.GetRecords() {
		recs[i] = record.Record{Key: r.Key, Value: r.GetValue(), Timestamp: r.GetTimestamp()}
		if recs[i].Timestamp == 0 {
			recs[i].Timestamp = now // the node's clock
		}
		if r.Value == nil {
			recs[i].Value = []byte{} // proto3 bytes: absent and empty are one
		}
		for _, h := range r.GetHeaders() {
			recs[i].Headers = append(recs[i].Headers, record.Header{Key: h.GetKey(), Value: h.GetValue()})
		}
	}
	out := make(chan []kafkawire.Produced, 1)
	// The client's RequestTimeout bounds the delivery, retries included.
	rt.client.Produce(s.baseCtx, m.GetTopic(), partition, acksOf(m.GetAcks()), recs, func(p []kafkawire.Produced) { out <- p })
	results := <-out

	j := newJob(st)
	j.cmd, j.start = CmdProduce, start
	if err := commonError(results); err != nil {
		code, reason := s.kafkaFailure(callKey{topic: m.GetTopic(), partition: partition}, err)
		j.own = appendErrorResp(j.own[:0], &j.scratch, seq, code, pubsub.ProduceErrorMessage(m.GetTopic(), partition, reason))
		s.send(j)
		return
	}
	resp := &pubsub.KafkaProduceResp{Results: make([]*pubsub.KafkaProduced, len(results))}
	ok := true
	for i, p := range results {
		r := &pubsub.KafkaProduced{Partition: p.Partition, Offset: p.Offset, Timestamp: recs[i].Timestamp}
		if p.Err != nil {
			ok = false
			code, reason := s.kafkaFailure(callKey{topic: m.GetTopic(), partition: p.Partition}, p.Err)
			r.ErrorCode, r.Error = code, reason
		}
		resp.Results[i] = r
	}
	j.ok = ok
	j.scratch, _ = proto.MarshalOptions{}.MarshalAppend(j.scratch[:0], resp)
	j.own = appendResp(j.own[:0], seq, pubsub.FieldKafkaProduceResp, j.scratch)
	s.send(j)
}

// commonError returns the error of every result when all failed for one
// reason (the same Kafka code and cause), else nil.
func commonError(results []kafkawire.Produced) error {
	if len(results) == 0 || results[0].Err == nil {
		return nil
	}
	first := results[0].Err
	_, reason, _ := kafkaError(first)
	for _, r := range results[1:] {
		if r.Err == nil {
			return nil
		}
		if _, rr, _ := kafkaError(r.Err); rr != reason || !sameCode(r.Err, first) {
			return nil
		}
	}
	return first
}

// sameCode reports whether two errors carry the same Kafka code.
func sameCode(a, b error) bool {
	var ka, kb *kafkawire.Error
	return errors.As(a, &ka) && errors.As(b, &kb) && ka.Code == kb.Code
}
