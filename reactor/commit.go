package reactor

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/kafkawire"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// This file serves the offsets of consumer groups: CmdKafkaCommit and
// CmdKafkaCommitted, stored in Kafka by the group's coordinator.

// maxCommitPartitions is the most partitions one CmdKafkaCommit or
// CmdKafkaCommitted may name.
const maxCommitPartitions = 4096

// commit checks a CmdKafkaCommit on the loop and hands it to Kafka.
func (st *connState) commit(seq int64, m *pubsub.CmdKafkaCommit) {
	reason, partition := commitProblem(m)
	var sub *subscription
	if reason == "" && m.GetSubscription() != 0 {
		sub, reason = st.groupSubscription(m.GetSubscription(), m.GetGroup(), m.GetTopic())
		partition = -1
		for _, o := range m.GetOffsets() {
			if reason == "" && !sub.group.member.Owns(o.GetPartition()) {
				reason, partition = "partition "+strconv.Itoa(int(o.GetPartition()))+" is not assigned to this member", o.GetPartition()
			}
		}
	}
	if reason != "" {
		st.s.obs.Request(CmdCommit, false, 0)
		ls := st.loop
		ls.out = appendErrorResp(ls.out, &ls.body, seq, 0, pubsub.CommitErrorMessage(m.GetGroup(), m.GetTopic(), partition, reason))
		return
	}
	st.startKafka(kafkaReq{cmd: pubsub.FieldCmdKafkaCommit, seq: seq, ext: m, start: st.s.now(), sub: sub})
}

// commitProblem returns why m cannot be committed and the partition it
// concerns (-1: the request as a whole), or "" if it can.
func commitProblem(m *pubsub.CmdKafkaCommit) (string, int32) {
	offs := m.GetOffsets()
	switch {
	case m.GetGroup() == "":
		return "no group", -1
	case m.GetTopic() == "":
		return "no topic", -1
	case len(offs) == 0:
		return "no offsets", -1
	case len(offs) > maxCommitPartitions:
		return fmt.Sprintf("%d offsets in one request, more than the limit of %d", len(offs), maxCommitPartitions), -1
	}
	seen := make(map[int32]bool, len(offs))
	for _, o := range offs {
		p := o.GetPartition()
		switch {
		case seen[p]:
			return "partition " + strconv.Itoa(int(p)) + " appears twice", p
		case p < 0:
			return "negative partition", p
		case o.GetOffset() < 0:
			return "negative offset " + strconv.FormatInt(o.GetOffset(), 10), p
		}
		seen[p] = true
	}
	return "", 0
}

// committed checks a CmdKafkaCommitted on the loop and hands it to Kafka.
func (st *connState) committed(seq int64, m *pubsub.CmdKafkaCommitted) {
	reason := ""
	switch n := len(m.GetPartitions()); {
	case m.GetGroup() == "":
		reason = "no group"
	case m.GetTopic() == "":
		reason = "no topic"
	case n > maxCommitPartitions:
		reason = fmt.Sprintf("%d partitions in one request, more than the limit of %d", n, maxCommitPartitions)
	}
	if reason != "" {
		st.s.obs.Request(CmdCommitted, false, 0)
		ls := st.loop
		ls.out = appendErrorResp(ls.out, &ls.body, seq, 0, pubsub.CommittedErrorMessage(m.GetGroup(), m.GetTopic(), reason))
		return
	}
	st.startKafka(kafkaReq{cmd: pubsub.FieldCmdKafkaCommitted, seq: seq, ext: m, start: st.s.now()})
}

// runCommit answers a CmdKafkaCommit: KafkaCommitResp once the coordinator
// stored every offset, or an ErrorResp naming the first partition it
// refused. With sub (a group subscription), the commit is its member's,
// fenced by the member's generation (kafkawire.Member.Commit: sent again
// as its next one if the group was between two); without, it is made
// without membership.
func (s *Server) runCommit(st *connState, client kafkaClient, seq, start int64, m *pubsub.CmdKafkaCommit, sub *subscription) {
	offs := make([]kafkawire.CommittedOffset, len(m.GetOffsets()))
	for i, o := range m.GetOffsets() {
		offs[i] = kafkawire.CommittedOffset{Partition: o.GetPartition(), Offset: o.GetOffset(), LeaderEpoch: -1, Metadata: o.GetMetadata()}
	}
	var err error
	if sub != nil {
		err = sub.group.member.Commit(s.baseCtx, offs)
	} else {
		err = client.CommitOffsets(s.baseCtx, m.GetGroup(), m.GetTopic(), offs, kafkawire.Generation{})
	}
	j := newJob(st)
	j.cmd, j.start = CmdCommit, start
	if err != nil {
		partition := int32(-1)
		if ke, ok := err.(*kafkawire.Error); ok {
			partition = ke.Partition
		}
		code, reason := s.kafkaFailure(callKey{topic: m.GetTopic(), partition: partition}, err)
		j.own = appendErrorResp(j.own[:0], &j.scratch, seq, code, pubsub.CommitErrorMessage(m.GetGroup(), m.GetTopic(), partition, reason))
		s.send(j)
		return
	}
	j.ok = true
	j.own = appendResp(j.own[:0], seq, pubsub.FieldKafkaCommitResp, nil)
	s.send(j)
}

// runCommitted answers a CmdKafkaCommitted: the group's committed offset
// of each partition asked (every partition of the topic when none is),
// -1 where none is committed.
func (s *Server) runCommitted(st *connState, client kafkaClient, seq, start int64, m *pubsub.CmdKafkaCommitted) {
	offs, err := client.CommittedOffsets(s.baseCtx, m.GetGroup(), m.GetTopic(), m.GetPartitions())
	j := newJob(st)
	j.cmd, j.start = CmdCommitted, start
	if err != nil {
		code, reason := s.kafkaFailure(callKey{topic: m.GetTopic(), partition: -1}, err)
		j.own = appendErrorResp(j.own[:0], &j.scratch, seq, code, pubsub.CommittedErrorMessage(m.GetGroup(), m.GetTopic(), reason))
		s.send(j)
		return
	}
	resp := &pubsub.KafkaCommittedResp{Offsets: make([]*pubsub.KafkaPartitionOffset, len(offs))}
	for i, o := range offs {
		resp.Offsets[i] = &pubsub.KafkaPartitionOffset{Partition: o.Partition, Offset: o.Offset, Metadata: o.Metadata}
	}
	j.ok = true
	body, _ := proto.MarshalOptions{}.MarshalAppend(j.scratch[:0], resp)
	j.scratch = body
	j.own = appendResp(j.own[:0], seq, pubsub.FieldKafkaCommittedResp, body)
	s.send(j)
}
