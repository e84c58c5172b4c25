package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file tests the group APIs (offsets.go, group.go, consumergroup.go)
// and the consumer embedded protocol (consumerproto.go) against kmsg.

// nstrK maps a kmsg nullable string onto our "" for null; a non-null empty
// string, which our encoders never send for a nullable field, maps to a
// marker that matches nothing.
func nstrK(s *string) string {
	if s != nil && *s == "" {
		return "<empty, not null>"
	}
	return deref(s)
}

func TestOffsetCommitRequest(t *testing.T) {
	for _, instance := range []string{"", "instance-1"} {
		ours := &OffsetCommitRequest{
			GroupID: "g", GenerationIDOrMemberEpoch: 7, MemberID: "m-1", GroupInstanceID: instance, RetentionTimeMillis: 86400000,
			Topics: []OffsetCommitTopic{
				{Name: "a", Partitions: []OffsetCommitPartition{{Partition: 0, Offset: 10, LeaderEpoch: 3, Metadata: "meta"}, {Partition: 4, Offset: 1 << 40, LeaderEpoch: -1}}},
				{Name: "bb"},
			},
		}
		for _, v := range versions(KeyOffsetCommit) {
			k := kmsg.NewPtrOffsetCommitRequest()
			checkRequest(t, v, ours, k)
			got := OffsetCommitRequest{GroupID: k.Group, GenerationIDOrMemberEpoch: k.Generation, MemberID: k.MemberID, GroupInstanceID: nstrK(k.InstanceID), RetentionTimeMillis: k.RetentionTimeMillis}
			for _, kt := range k.Topics {
				ot := OffsetCommitTopic{Name: kt.Topic}
				for _, kp := range kt.Partitions {
					if kp.Metadata == nil {
						t.Fatalf("v%d: metadata sent as null", v)
					}
					ot.Partitions = append(ot.Partitions, OffsetCommitPartition{Partition: kp.Partition, Offset: kp.Offset, LeaderEpoch: kp.LeaderEpoch, Metadata: *kp.Metadata})
				}
				got.Topics = append(got.Topics, ot)
			}
			want := *ours
			want.Topics = []OffsetCommitTopic{ours.Topics[0], ours.Topics[1]}
			if v < 7 {
				want.GroupInstanceID = ""
			}
			if v > 4 {
				want.RetentionTimeMillis = -1 // kmsg default for an absent field
			}
			if v < 6 {
				ps := append([]OffsetCommitPartition(nil), ours.Topics[0].Partitions...)
				for i := range ps {
					ps[i].LeaderEpoch = -1
				}
				want.Topics[0].Partitions = ps
			}
			equalNormalized(t, "offset commit request", got, want)
		}
	}
}

func TestOffsetFetchRequest(t *testing.T) {
	cases := []OffsetFetchRequest{
		{RequireStable: true, Groups: []OffsetFetchGroup{{GroupID: "g", MemberEpoch: -1, Topics: []OffsetFetchTopic{{Name: "a", Partitions: []int32{0, 2}}, {Name: "b"}}}}},
		{Groups: []OffsetFetchGroup{{GroupID: "g", MemberID: "m", MemberEpoch: 4}}}, // nil topics: all
		{Groups: []OffsetFetchGroup{{GroupID: "g", MemberEpoch: -1, Topics: []OffsetFetchTopic{}}}},
		{Groups: []OffsetFetchGroup{{GroupID: "g1", MemberEpoch: -1, Topics: []OffsetFetchTopic{{Name: "t", Partitions: []int32{1}}}}, {GroupID: "g2", MemberID: "m2", MemberEpoch: 9}}},
	}
	for _, c := range cases {
		for _, v := range versions(KeyOffsetFetch) {
			k := kmsg.NewPtrOffsetFetchRequest()
			checkRequest(t, v, &c, k)
			var got OffsetFetchRequest
			got.RequireStable = k.RequireStable
			want := c
			if v < 7 {
				want.RequireStable = false
			}
			if v < 8 {
				g := OffsetFetchGroup{GroupID: k.Group, MemberEpoch: -1}
				if k.Topics != nil {
					g.Topics = []OffsetFetchTopic{}
				}
				for _, kt := range k.Topics {
					g.Topics = append(g.Topics, OffsetFetchTopic{Name: kt.Topic, Partitions: kt.Partitions})
				}
				got.Groups = []OffsetFetchGroup{g}
				w := c.Groups[0]
				w.MemberID, w.MemberEpoch = "", -1
				if w.Topics == nil && v < 2 {
					w.Topics = []OffsetFetchTopic{}
				}
				want.Groups = []OffsetFetchGroup{w}
			} else {
				for _, kg := range k.Groups {
					g := OffsetFetchGroup{GroupID: kg.Group, MemberID: nstrK(kg.MemberID), MemberEpoch: kg.MemberEpoch}
					if kg.Topics != nil {
						g.Topics = []OffsetFetchTopic{}
					}
					for _, kt := range kg.Topics {
						g.Topics = append(g.Topics, OffsetFetchTopic{Name: kt.Topic, Partitions: kt.Partitions})
					}
					got.Groups = append(got.Groups, g)
				}
				if v < 9 {
					want.Groups = append([]OffsetFetchGroup(nil), c.Groups...)
					for i := range want.Groups {
						want.Groups[i].MemberID, want.Groups[i].MemberEpoch = "", -1
					}
				}
			}
			equalNormalized(t, "offset fetch request", got, want)
			for i, g := range want.Groups {
				if (g.Topics == nil) != (got.Groups[i].Topics == nil) {
					t.Fatalf("v%d: group %d: null topics %v, kmsg read %v", v, i, g.Topics == nil, got.Groups[i].Topics == nil)
				}
			}
		}
	}
}

func TestFindCoordinatorRequest(t *testing.T) {
	for _, c := range []FindCoordinatorRequest{{Keys: []string{"group-a"}}, {KeyType: 1, Keys: []string{"txn-1", "txn-2"}}, {}} {
		for _, v := range versions(KeyFindCoordinator) {
			k := kmsg.NewPtrFindCoordinatorRequest()
			checkRequest(t, v, &c, k)
			got := FindCoordinatorRequest{KeyType: k.CoordinatorType, Keys: k.CoordinatorKeys}
			want := c
			if v < 4 {
				got.Keys = []string{k.CoordinatorKey}
				want.Keys = []string{""}
				if len(c.Keys) > 0 {
					want.Keys = c.Keys[:1]
				}
			}
			equalNormalized(t, "find coordinator request", got, want)
		}
	}
}

func TestJoinGroupRequest(t *testing.T) {
	for _, c := range []JoinGroupRequest{
		{GroupID: "g", SessionTimeoutMillis: 45000, RebalanceTimeoutMillis: 300000, MemberID: "m-1", GroupInstanceID: "i-1", ProtocolType: "consumer", Reason: "rejoin",
			Protocols: []JoinGroupProtocol{{Name: "range", Metadata: []byte("sub")}, {Name: "cooperative-sticky", Metadata: []byte{}}}},
		{GroupID: "g", SessionTimeoutMillis: 10000, RebalanceTimeoutMillis: -1, ProtocolType: "consumer", Protocols: []JoinGroupProtocol{{Name: "roundrobin"}}},
	} {
		for _, v := range versions(KeyJoinGroup) {
			k := kmsg.NewPtrJoinGroupRequest()
			checkRequest(t, v, &c, k)
			got := JoinGroupRequest{GroupID: k.Group, SessionTimeoutMillis: k.SessionTimeoutMillis, RebalanceTimeoutMillis: k.RebalanceTimeoutMillis, MemberID: k.MemberID,
				GroupInstanceID: nstrK(k.InstanceID), ProtocolType: k.ProtocolType, Reason: nstrK(k.Reason)}
			for _, p := range k.Protocols {
				got.Protocols = append(got.Protocols, JoinGroupProtocol{Name: p.Name, Metadata: p.Metadata})
			}
			want := c
			want.Protocols = append([]JoinGroupProtocol(nil), c.Protocols...)
			for i := range want.Protocols {
				if want.Protocols[i].Metadata == nil {
					want.Protocols[i].Metadata = []byte{} // sent as empty bytes
				}
			}
			if v < 5 {
				want.GroupInstanceID = ""
			}
			if v < 8 {
				want.Reason = ""
			}
			equalNormalized(t, "join group request", got, want)
		}
	}
}

func TestSyncGroupRequest(t *testing.T) {
	for _, c := range []SyncGroupRequest{
		{GroupID: "g", GenerationID: 3, MemberID: "m-1", GroupInstanceID: "i-1", ProtocolType: "consumer", ProtocolName: "range",
			Assignments: []SyncGroupAssignment{{MemberID: "m-1", Assignment: []byte("a1")}, {MemberID: "m-2"}}},
		{GroupID: "g", GenerationID: 3, MemberID: "m-2"},
	} {
		for _, v := range versions(KeySyncGroup) {
			k := kmsg.NewPtrSyncGroupRequest()
			checkRequest(t, v, &c, k)
			got := SyncGroupRequest{GroupID: k.Group, GenerationID: k.Generation, MemberID: k.MemberID, GroupInstanceID: nstrK(k.InstanceID),
				ProtocolType: nstrK(k.ProtocolType), ProtocolName: nstrK(k.Protocol)}
			for _, a := range k.GroupAssignment {
				got.Assignments = append(got.Assignments, SyncGroupAssignment{MemberID: a.MemberID, Assignment: a.MemberAssignment})
			}
			want := c
			want.Assignments = append([]SyncGroupAssignment(nil), c.Assignments...)
			for i := range want.Assignments {
				if want.Assignments[i].Assignment == nil {
					want.Assignments[i].Assignment = []byte{} // sent as empty bytes
				}
			}
			if v < 3 {
				want.GroupInstanceID = ""
			}
			if v < 5 {
				want.ProtocolType, want.ProtocolName = "", ""
			}
			equalNormalized(t, "sync group request", got, want)
		}
	}
}

func TestHeartbeatRequest(t *testing.T) {
	for _, c := range []HeartbeatRequest{{GroupID: "g", GenerationID: 5, MemberID: "m", GroupInstanceID: "i"}, {GroupID: "g", GenerationID: -1}} {
		for _, v := range versions(KeyHeartbeat) {
			k := kmsg.NewPtrHeartbeatRequest()
			checkRequest(t, v, &c, k)
			got := HeartbeatRequest{GroupID: k.Group, GenerationID: k.Generation, MemberID: k.MemberID, GroupInstanceID: nstrK(k.InstanceID)}
			want := c
			if v < 3 {
				want.GroupInstanceID = ""
			}
			equalNormalized(t, "heartbeat request", got, want)
		}
	}
}

func TestLeaveGroupRequest(t *testing.T) {
	for _, c := range []LeaveGroupRequest{
		{GroupID: "g", Members: []LeaveGroupMember{{MemberID: "m-1", GroupInstanceID: "i-1", Reason: "shutdown"}, {MemberID: "m-2"}}},
		{GroupID: "g"},
	} {
		for _, v := range versions(KeyLeaveGroup) {
			k := kmsg.NewPtrLeaveGroupRequest()
			checkRequest(t, v, &c, k)
			got := LeaveGroupRequest{GroupID: k.Group}
			want := LeaveGroupRequest{GroupID: c.GroupID}
			if v < 3 {
				got.Members = []LeaveGroupMember{{MemberID: k.MemberID}}
				want.Members = []LeaveGroupMember{{}}
				if len(c.Members) > 0 {
					want.Members[0].MemberID = c.Members[0].MemberID
				}
			} else {
				for _, m := range k.Members {
					got.Members = append(got.Members, LeaveGroupMember{MemberID: m.MemberID, GroupInstanceID: nstrK(m.InstanceID), Reason: nstrK(m.Reason)})
				}
				want.Members = append(want.Members, c.Members...)
				for i := range want.Members {
					if v < 5 {
						want.Members[i].Reason = ""
					}
				}
			}
			equalNormalized(t, "leave group request", got, want)
		}
	}
}

func TestConsumerGroupHeartbeatRequest(t *testing.T) {
	s := func(s string) *string { return &s }
	cases := []ConsumerGroupHeartbeatRequest{
		// A join: everything set.
		{GroupID: "g", MemberID: "m-uuid", MemberEpoch: 0, InstanceID: s("i-1"), RackID: s("rack-a"), RebalanceTimeoutMillis: 300000,
			SubscribedTopicNames: []string{"a", "b"}, SubscribedTopicRegex: s("^orders-.*"), ServerAssignor: s("uniform"),
			TopicPartitions: []ConsumerGroupTopicPartitions{}},
		// A heartbeat: nothing changed, every nullable field null.
		{GroupID: "g", MemberID: "m-uuid", MemberEpoch: 12, RebalanceTimeoutMillis: -1},
		// Empty (non-null) values: no topics, an empty rack, owned partitions.
		{GroupID: "g", MemberID: "m", MemberEpoch: 13, RackID: s(""), RebalanceTimeoutMillis: -1, SubscribedTopicNames: []string{}, SubscribedTopicRegex: s(""),
			TopicPartitions: []ConsumerGroupTopicPartitions{{TopicID: uuid(1), Partitions: []int32{0, 3}}, {TopicID: uuid(2)}}},
		// Leave.
		{GroupID: "g", MemberID: "m", MemberEpoch: -1, RebalanceTimeoutMillis: -1},
	}
	for _, c := range cases {
		for _, v := range versions(KeyConsumerGroupHeartbeat) {
			k := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			checkRequest(t, v, &c, k)
			got := ConsumerGroupHeartbeatRequest{GroupID: k.Group, MemberID: k.MemberID, MemberEpoch: k.MemberEpoch, InstanceID: k.InstanceID, RackID: k.RackID,
				RebalanceTimeoutMillis: k.RebalanceTimeoutMillis, SubscribedTopicNames: k.SubscribedTopicNames, SubscribedTopicRegex: k.SubscribedTopicRegex, ServerAssignor: k.ServerAssignor}
			if k.Topics != nil {
				got.TopicPartitions = []ConsumerGroupTopicPartitions{}
			}
			for _, kt := range k.Topics {
				got.TopicPartitions = append(got.TopicPartitions, ConsumerGroupTopicPartitions{TopicID: kt.TopicID, Partitions: kt.Partitions})
			}
			want := c
			if v < 1 {
				want.SubscribedTopicRegex = nil
			}
			// Null and empty differ: compare those before normalizing.
			if (got.SubscribedTopicNames == nil) != (want.SubscribedTopicNames == nil) || (got.TopicPartitions == nil) != (want.TopicPartitions == nil) {
				t.Fatalf("v%d: null-versus-empty lost: topics %v partitions %v", v, got.SubscribedTopicNames, got.TopicPartitions)
			}
			for _, p := range [][2]*string{{got.InstanceID, want.InstanceID}, {got.RackID, want.RackID}, {got.SubscribedTopicRegex, want.SubscribedTopicRegex}, {got.ServerAssignor, want.ServerAssignor}} {
				if (p[0] == nil) != (p[1] == nil) || p[0] != nil && *p[0] != *p[1] {
					t.Fatalf("v%d: nullable string %v, want %v", v, p[0], p[1])
				}
			}
			got.InstanceID, got.RackID, got.SubscribedTopicRegex, got.ServerAssignor = nil, nil, nil, nil
			want.InstanceID, want.RackID, want.SubscribedTopicRegex, want.ServerAssignor = nil, nil, nil, nil
			equalNormalized(t, "consumer group heartbeat request", got, want)
		}
	}
}

// Conversions of kmsg responses to ours, and samples with every field set.

func offsetCommitFromKmsg(k *kmsg.OffsetCommitResponse) OffsetCommitResponse {
	var r OffsetCommitResponse
	for _, t := range k.Topics {
		ot := OffsetCommitTopicResponse{Name: t.Topic}
		for _, p := range t.Partitions {
			ot.Partitions = append(ot.Partitions, OffsetCommitPartitionResponse{Partition: p.Partition, ErrorCode: p.ErrorCode})
		}
		r.Topics = append(r.Topics, ot)
	}
	return r
}

func offsetFetchFromKmsg(k *kmsg.OffsetFetchResponse) OffsetFetchResponse {
	type part = OffsetFetchPartitionResponse
	var r OffsetFetchResponse
	if k.Version < 8 {
		g := OffsetFetchGroupResponse{ErrorCode: k.ErrorCode}
		for _, t := range k.Topics {
			ot := OffsetFetchTopicResponse{Name: t.Topic}
			for _, p := range t.Partitions {
				ot.Partitions = append(ot.Partitions, part{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: deref(p.Metadata), ErrorCode: p.ErrorCode})
			}
			g.Topics = append(g.Topics, ot)
		}
		r.Groups = []OffsetFetchGroupResponse{g}
		return r
	}
	for _, kg := range k.Groups {
		g := OffsetFetchGroupResponse{GroupID: kg.Group, ErrorCode: kg.ErrorCode}
		for _, t := range kg.Topics {
			ot := OffsetFetchTopicResponse{Name: t.Topic}
			for _, p := range t.Partitions {
				ot.Partitions = append(ot.Partitions, part{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: deref(p.Metadata), ErrorCode: p.ErrorCode})
			}
			g.Topics = append(g.Topics, ot)
		}
		r.Groups = append(r.Groups, g)
	}
	return r
}

func findCoordinatorFromKmsg(k *kmsg.FindCoordinatorResponse) FindCoordinatorResponse {
	if k.Version < 4 {
		return FindCoordinatorResponse{Coordinators: []FindCoordinatorResult{{NodeID: k.NodeID, Host: k.Host, Port: k.Port, ErrorCode: k.ErrorCode, ErrorMessage: deref(k.ErrorMessage)}}}
	}
	var r FindCoordinatorResponse
	for _, c := range k.Coordinators {
		r.Coordinators = append(r.Coordinators, FindCoordinatorResult{Key: c.Key, NodeID: c.NodeID, Host: c.Host, Port: c.Port, ErrorCode: c.ErrorCode, ErrorMessage: deref(c.ErrorMessage)})
	}
	return r
}

func joinGroupFromKmsg(k *kmsg.JoinGroupResponse) JoinGroupResponse {
	r := JoinGroupResponse{ErrorCode: k.ErrorCode, GenerationID: k.Generation, ProtocolType: deref(k.ProtocolType), ProtocolName: deref(k.Protocol),
		Leader: k.LeaderID, SkipAssignment: k.SkipAssignment, MemberID: k.MemberID}
	for _, m := range k.Members {
		r.Members = append(r.Members, JoinGroupMember{MemberID: m.MemberID, GroupInstanceID: deref(m.InstanceID), Metadata: m.ProtocolMetadata})
	}
	return r
}

func syncGroupFromKmsg(k *kmsg.SyncGroupResponse) SyncGroupResponse {
	return SyncGroupResponse{ErrorCode: k.ErrorCode, ProtocolType: deref(k.ProtocolType), ProtocolName: deref(k.Protocol), Assignment: k.MemberAssignment}
}

func leaveGroupFromKmsg(k *kmsg.LeaveGroupResponse) LeaveGroupResponse {
	r := LeaveGroupResponse{ErrorCode: k.ErrorCode}
	for _, m := range k.Members {
		r.Members = append(r.Members, LeaveGroupMemberResponse{MemberID: m.MemberID, GroupInstanceID: deref(m.InstanceID), ErrorCode: m.ErrorCode})
	}
	return r
}

func consumerGroupHeartbeatFromKmsg(k *kmsg.ConsumerGroupHeartbeatResponse) ConsumerGroupHeartbeatResponse {
	r := ConsumerGroupHeartbeatResponse{ErrorCode: k.ErrorCode, ErrorMessage: deref(k.ErrorMessage), MemberID: deref(k.MemberID),
		MemberEpoch: k.MemberEpoch, HeartbeatIntervalMillis: k.HeartbeatIntervalMillis}
	if k.Assignment != nil {
		r.Assignment = []ConsumerGroupTopicPartitions{}
		for _, t := range k.Assignment.Topics {
			r.Assignment = append(r.Assignment, ConsumerGroupTopicPartitions{TopicID: t.TopicID, Partitions: t.Partitions})
		}
	}
	return r
}

func sampleOffsetCommit() *kmsg.OffsetCommitResponse {
	r := kmsg.NewPtrOffsetCommitResponse()
	r.ThrottleMillis = 4
	for ti, name := range []string{"orders", "payments"} {
		t := kmsg.NewOffsetCommitResponseTopic()
		t.Topic = name
		for p := int32(0); p < 2; p++ {
			pp := kmsg.NewOffsetCommitResponseTopicPartition()
			pp.Partition, pp.ErrorCode = p+int32(ti), int16(ti)*22 // ILLEGAL_GENERATION
			t.Partitions = append(t.Partitions, pp)
		}
		r.Topics = append(r.Topics, t)
	}
	r.UnknownTags.Set(5, []byte{1})
	return r
}

func sampleOffsetFetch() *kmsg.OffsetFetchResponse {
	r := kmsg.NewPtrOffsetFetchResponse()
	r.ThrottleMillis = 6
	r.ErrorCode = 14 // COORDINATOR_LOAD_IN_PROGRESS
	for ti, name := range []string{"orders", "payments"} {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = name
		for p := int32(0); p < 2; p++ {
			pp := kmsg.NewOffsetFetchResponseTopicPartition()
			pp.Partition, pp.Offset, pp.LeaderEpoch, pp.ErrorCode = p, 100*int64(ti+1)+int64(p), 5, int16(p)*3
			if p == 1 {
				pp.Metadata = kmsg.StringPtr("meta-" + name)
			}
			t.Partitions = append(t.Partitions, pp)
		}
		r.Topics = append(r.Topics, t)
	}
	for gi, group := range []string{"g1", "g2"} {
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = group, int16(gi)*16 // NOT_COORDINATOR
		for _, kt := range r.Topics {
			t := kmsg.NewOffsetFetchResponseGroupTopic()
			t.Topic = group + "-" + kt.Topic
			for _, kp := range kt.Partitions {
				p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = kp.Partition, kp.Offset+int64(gi), kp.LeaderEpoch, kp.Metadata, kp.ErrorCode
				t.Partitions = append(t.Partitions, p)
			}
			g.Topics = append(g.Topics, t)
		}
		r.Groups = append(r.Groups, g)
	}
	r.UnknownTags.Set(3, []byte("x"))
	return r
}

func sampleFindCoordinator(null bool) *kmsg.FindCoordinatorResponse {
	r := kmsg.NewPtrFindCoordinatorResponse()
	r.ThrottleMillis = 1
	r.ErrorCode, r.NodeID, r.Host, r.Port = 15, 2, "broker-2", 9093 // COORDINATOR_NOT_AVAILABLE
	if !null {
		r.ErrorMessage = kmsg.StringPtr("loading")
	}
	for i, key := range []string{"g1", "g2"} {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port, c.ErrorCode = key, int32(i), "broker-"+key, 9092+int32(i), int16(i)*15
		if i == 1 && !null {
			c.ErrorMessage = kmsg.StringPtr("not available")
		}
		r.Coordinators = append(r.Coordinators, c)
	}
	return r
}

func sampleJoinGroup(null bool) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.ThrottleMillis = 2
	r.ErrorCode, r.Generation, r.LeaderID, r.SkipAssignment, r.MemberID = ErrMemberIDRequired, 8, "m-1", true, "m-2"
	if !null {
		r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	}
	for i, id := range []string{"m-1", "m-2"} {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID, m.ProtocolMetadata = id, []byte("metadata of "+id)
		if i == 1 {
			m.InstanceID = kmsg.StringPtr("instance-" + id)
		}
		r.Members = append(r.Members, m)
	}
	return r
}

func sampleSyncGroup(null bool) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	r.ThrottleMillis, r.ErrorCode, r.MemberAssignment = 3, 27, []byte("assignment bytes") // REBALANCE_IN_PROGRESS
	if !null {
		r.ProtocolType, r.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("cooperative-sticky")
	}
	return r
}

func sampleHeartbeat() *kmsg.HeartbeatResponse {
	r := kmsg.NewPtrHeartbeatResponse()
	r.ThrottleMillis, r.ErrorCode = 9, 27
	return r
}

func sampleLeaveGroup() *kmsg.LeaveGroupResponse {
	r := kmsg.NewPtrLeaveGroupResponse()
	r.ThrottleMillis, r.ErrorCode = 1, 25 // UNKNOWN_MEMBER_ID
	for i, id := range []string{"m-1", "m-2"} {
		m := kmsg.NewLeaveGroupResponseMember()
		m.MemberID, m.ErrorCode = id, int16(i)*25
		if i == 0 {
			m.InstanceID = kmsg.StringPtr("instance-1")
		}
		r.Members = append(r.Members, m)
	}
	return r
}

func sampleConsumerGroupHeartbeat(null bool) *kmsg.ConsumerGroupHeartbeatResponse {
	r := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	r.ThrottleMillis, r.ErrorCode, r.MemberEpoch, r.HeartbeatIntervalMillis = 7, 113, 21, 5000 // STALE_MEMBER_EPOCH
	if !null {
		r.ErrorMessage, r.MemberID = kmsg.StringPtr("stale"), kmsg.StringPtr("m-uuid")
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for i := byte(0); i < 2; i++ {
			t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			t.TopicID, t.Partitions = uuid(10*i), []int32{int32(i), 5}
			a.Topics = append(a.Topics, t)
		}
		a.UnknownTags.Set(1, []byte{2})
		r.Assignment = &a
	}
	return r
}

// decodeBoth decodes body at v with ours and with kmsg and checks that both
// read the same values; it returns ours.
func decodeBoth[T any, K kmsg.Response](t *testing.T, what string, body []byte, v int16, k K, conv func(K) T) T {
	t.Helper()
	var ours T
	if err := any(&ours).(interface {
		Decode([]byte, int16) error
	}).Decode(body, v); err != nil {
		t.Fatalf("%s v%d: %v", what, v, err)
	}
	k.SetVersion(v)
	if err := k.ReadFrom(body); err != nil {
		t.Fatalf("%s v%d: kmsg: %v", what, v, err)
	}
	equalNormalized(t, what, ours, conv(k))
	return ours
}

func TestOffsetCommitResponse(t *testing.T) {
	for _, v := range versions(KeyOffsetCommit) {
		r := decodeBoth(t, "offset commit response", encodeKmsg(sampleOffsetCommit(), v), v, kmsg.NewPtrOffsetCommitResponse(), offsetCommitFromKmsg)
		if len(r.Topics) != 2 || r.Topics[1].Name != "payments" || r.Topics[1].Partitions[1] != (OffsetCommitPartitionResponse{Partition: 2, ErrorCode: 22}) {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
}

func TestOffsetFetchResponse(t *testing.T) {
	for _, v := range versions(KeyOffsetFetch) {
		r := decodeBoth(t, "offset fetch response", encodeKmsg(sampleOffsetFetch(), v), v, kmsg.NewPtrOffsetFetchResponse(), offsetFetchFromKmsg)
		want := OffsetFetchPartitionResponse{Partition: 1, Offset: 201, LeaderEpoch: -1, Metadata: "meta-payments", ErrorCode: 3}
		if v >= 5 {
			want.LeaderEpoch = 5
		}
		g := r.Groups[len(r.Groups)-1]
		switch {
		case v >= 8:
			want.Offset++
			if len(r.Groups) != 2 || g.GroupID != "g2" || g.ErrorCode != 16 || g.Topics[1].Name != "g2-payments" {
				t.Fatalf("v%d: groups %+v", v, r.Groups)
			}
		case len(r.Groups) != 1 || g.GroupID != "" || (v >= 2) != (g.ErrorCode == 14) || g.Topics[1].Name != "payments":
			t.Fatalf("v%d: groups %+v", v, r.Groups)
		}
		if p := g.Topics[1].Partitions[1]; p != want || g.Topics[1].Partitions[0].Metadata != "" {
			t.Fatalf("v%d: partition %+v, want %+v", v, p, want)
		}
	}
}

func TestFindCoordinatorResponse(t *testing.T) {
	for _, null := range []bool{false, true} {
		for _, v := range versions(KeyFindCoordinator) {
			r := decodeBoth(t, "find coordinator response", encodeKmsg(sampleFindCoordinator(null), v), v, kmsg.NewPtrFindCoordinatorResponse(), findCoordinatorFromKmsg)
			want := FindCoordinatorResult{NodeID: 2, Host: "broker-2", Port: 9093, ErrorCode: 15, ErrorMessage: "loading"}
			if v >= 4 {
				want = FindCoordinatorResult{Key: "g2", NodeID: 1, Host: "broker-g2", Port: 9093, ErrorCode: 15, ErrorMessage: "not available"}
			}
			if null {
				want.ErrorMessage = ""
			}
			if c := r.Coordinators[len(r.Coordinators)-1]; c != want || (v >= 4) != (len(r.Coordinators) == 2) {
				t.Fatalf("v%d: %+v, want %+v", v, r.Coordinators, want)
			}
		}
	}
}

func TestJoinGroupResponse(t *testing.T) {
	for _, null := range []bool{false, true} {
		for _, v := range versions(KeyJoinGroup) {
			body := encodeKmsg(sampleJoinGroup(null), v)
			r := decodeBoth(t, "join group response", body, v, kmsg.NewPtrJoinGroupResponse(), joinGroupFromKmsg)
			want := JoinGroupResponse{ErrorCode: ErrMemberIDRequired, GenerationID: 8, Leader: "m-1", MemberID: "m-2", SkipAssignment: v >= 9}
			if !null {
				want.ProtocolName = "range"
				if v >= 7 {
					want.ProtocolType = "consumer"
				}
			}
			m := r.Members[1]
			r.Members = nil
			if !reflect.DeepEqual(r, want) || m.MemberID != "m-2" || string(m.Metadata) != "metadata of m-2" || (v >= 5) != (m.GroupInstanceID == "instance-m-2") {
				t.Fatalf("v%d: %+v %+v, want %+v", v, r, m, want)
			}
			// Metadata aliases the body: no copy.
			body[bytes.Index(body, []byte("metadata of m-2"))] = 'M'
			if m.Metadata[0] != 'M' {
				t.Fatalf("v%d: Metadata is a copy, not a sub-slice of the body", v)
			}
		}
	}
}

func TestSyncGroupResponse(t *testing.T) {
	for _, null := range []bool{false, true} {
		for _, v := range versions(KeySyncGroup) {
			r := decodeBoth(t, "sync group response", encodeKmsg(sampleSyncGroup(null), v), v, kmsg.NewPtrSyncGroupResponse(), syncGroupFromKmsg)
			want := SyncGroupResponse{ErrorCode: 27, Assignment: []byte("assignment bytes")}
			if v >= 5 && !null {
				want.ProtocolType, want.ProtocolName = "consumer", "cooperative-sticky"
			}
			equalNormalized(t, "sync group response", r, want)
		}
	}
}

func TestHeartbeatResponse(t *testing.T) {
	for _, v := range versions(KeyHeartbeat) {
		r := decodeBoth(t, "heartbeat response", encodeKmsg(sampleHeartbeat(), v), v, kmsg.NewPtrHeartbeatResponse(), func(k *kmsg.HeartbeatResponse) HeartbeatResponse {
			return HeartbeatResponse{ErrorCode: k.ErrorCode}
		})
		if r.ErrorCode != 27 {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
}

func TestLeaveGroupResponse(t *testing.T) {
	for _, v := range versions(KeyLeaveGroup) {
		r := decodeBoth(t, "leave group response", encodeKmsg(sampleLeaveGroup(), v), v, kmsg.NewPtrLeaveGroupResponse(), leaveGroupFromKmsg)
		if r.ErrorCode != 25 || (v >= 3) != (len(r.Members) == 2) || v >= 3 && (r.Members[0] != LeaveGroupMemberResponse{MemberID: "m-1", GroupInstanceID: "instance-1"} || r.Members[1].ErrorCode != 25) {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
}

func TestConsumerGroupHeartbeatResponse(t *testing.T) {
	for _, null := range []bool{false, true} {
		for _, v := range versions(KeyConsumerGroupHeartbeat) {
			r := decodeBoth(t, "consumer group heartbeat response", encodeKmsg(sampleConsumerGroupHeartbeat(null), v), v, kmsg.NewPtrConsumerGroupHeartbeatResponse(), consumerGroupHeartbeatFromKmsg)
			want := ConsumerGroupHeartbeatResponse{ErrorCode: 113, MemberEpoch: 21, HeartbeatIntervalMillis: 5000}
			if !null {
				want.ErrorMessage, want.MemberID = "stale", "m-uuid"
				want.Assignment = []ConsumerGroupTopicPartitions{{TopicID: uuid(0), Partitions: []int32{0, 5}}, {TopicID: uuid(10), Partitions: []int32{1, 5}}}
			}
			equalNormalized(t, "consumer group heartbeat response", r, want)
			if (r.Assignment == nil) != null {
				t.Fatalf("v%d: assignment %v, null %v", v, r.Assignment, null)
			}
		}
	}
	// An empty assignment is not a null one.
	k := sampleConsumerGroupHeartbeat(true)
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	k.Assignment = &a
	var r ConsumerGroupHeartbeatResponse
	if err := r.Decode(encodeKmsg(k, 1), 1); err != nil || r.Assignment == nil || len(r.Assignment) != 0 {
		t.Fatalf("empty assignment: %v, %#v", err, r.Assignment)
	}
	// A presence byte other than -1 and 1 is invalid.
	body := encodeKmsg(k, 1)
	i := len(body) - 3 // presence, empty topics, struct tags, response tags
	if body[i] != 1 {
		t.Fatalf("presence byte not at %d: %x", i, body)
	}
	body[i] = 2
	if err := r.Decode(body, 1); err == nil {
		t.Fatal("presence byte 2 accepted")
	}
}

// Consumer embedded protocol.

func subscriptionFromKmsg(k *kmsg.ConsumerMemberMetadata) ConsumerSubscription {
	s := ConsumerSubscription{Version: k.Version, Topics: k.Topics, UserData: k.UserData, GenerationID: k.Generation, RackID: deref(k.Rack)}
	for _, p := range k.OwnedPartitions {
		s.OwnedPartitions = append(s.OwnedPartitions, ConsumerTopicPartitions{Topic: p.Topic, Partitions: p.Partitions})
	}
	return s
}

func assignmentFromKmsg(k *kmsg.ConsumerMemberAssignment) ConsumerAssignment {
	a := ConsumerAssignment{Version: k.Version, UserData: k.UserData}
	for _, t := range k.Topics {
		a.AssignedPartitions = append(a.AssignedPartitions, ConsumerTopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
	}
	return a
}

func sampleSubscription(v int16, null bool) *kmsg.ConsumerMemberMetadata {
	k := new(kmsg.ConsumerMemberMetadata)
	k.Default()
	k.Version, k.Topics, k.Generation = v, []string{"orders", "payments"}, 12
	if !null {
		k.UserData, k.Rack = []byte("user data"), kmsg.StringPtr("rack-a")
	}
	for i, name := range []string{"orders", "payments"} {
		p := kmsg.NewConsumerMemberMetadataOwnedPartition()
		p.Topic, p.Partitions = name, []int32{int32(i), 4}
		k.OwnedPartitions = append(k.OwnedPartitions, p)
	}
	return k
}

func sampleAssignment(v int16, null bool) *kmsg.ConsumerMemberAssignment {
	k := &kmsg.ConsumerMemberAssignment{Version: v}
	if !null {
		k.UserData = []byte("assignor data")
	}
	for i, name := range []string{"orders", "payments"} {
		t := kmsg.NewConsumerMemberAssignmentTopic()
		t.Topic, t.Partitions = name, []int32{int32(i), 2, 7}
		k.Topics = append(k.Topics, t)
	}
	return k
}

// TestConsumerProtocol checks both directions against kmsg at every version
// and at versions beyond ConsumerProtocolMaxVersion, whose extra fields
// (here "future") must be ignored.
func TestConsumerProtocol(t *testing.T) {
	future := []byte("future fields")
	for v := int16(0); v <= ConsumerProtocolMaxVersion+2; v++ {
		known := min(v, ConsumerProtocolMaxVersion)
		for _, null := range []bool{false, true} {
			// kmsg -> ours.
			ks := sampleSubscription(v, null)
			body := ks.AppendTo(nil)
			if v > ConsumerProtocolMaxVersion {
				body = append(body, future...)
			}
			var s ConsumerSubscription
			if err := s.Decode(body); err != nil {
				t.Fatalf("subscription v%d: %v", v, err)
			}
			want := subscriptionFromKmsg(ks)
			if known < 1 {
				want.OwnedPartitions = nil
			}
			if known < 2 {
				want.GenerationID = -1
			}
			if known < 3 {
				want.RackID = ""
			}
			equalNormalized(t, "subscription", s, want)
			if (s.UserData == nil) != null {
				t.Fatalf("subscription v%d: user data %q, null %v", v, s.UserData, null)
			}
			// ours -> kmsg: the same bytes as kmsg at the version we write.
			var k kmsg.ConsumerMemberMetadata
			ours := s.AppendTo(nil)
			if err := k.ReadFrom(ours); err != nil {
				t.Fatalf("subscription v%d: kmsg: %v", v, err)
			}
			ks.Version = known
			if kb := ks.AppendTo(nil); !bytes.Equal(ours, kb) {
				t.Fatalf("subscription v%d: ours %x\nkmsg %x", v, ours, kb)
			}
			want.Version = known
			equalNormalized(t, "subscription via kmsg", subscriptionFromKmsg(&k), want)

			ka := sampleAssignment(v, null)
			body = ka.AppendTo(nil)
			if v > ConsumerProtocolMaxVersion {
				body = append(body, future...)
			}
			var a ConsumerAssignment
			if err := a.Decode(body); err != nil {
				t.Fatalf("assignment v%d: %v", v, err)
			}
			equalNormalized(t, "assignment", a, assignmentFromKmsg(ka))
			if (a.UserData == nil) != null {
				t.Fatalf("assignment v%d: user data %q, null %v", v, a.UserData, null)
			}
			var kb kmsg.ConsumerMemberAssignment
			ours = a.AppendTo(nil)
			if err := kb.ReadFrom(ours); err != nil {
				t.Fatalf("assignment v%d: kmsg: %v", v, err)
			}
			ka.Version = known
			if want := ka.AppendTo(nil); !bytes.Equal(ours, want) {
				t.Fatalf("assignment v%d: ours %x\nkmsg %x", v, ours, want)
			}
			equalNormalized(t, "assignment via kmsg", assignmentFromKmsg(&kb), assignmentFromKmsg(ka))
		}
	}
}

func TestConsumerProtocolBadInput(t *testing.T) {
	decoders := map[string]func([]byte) error{
		"subscription": func(b []byte) error { var s ConsumerSubscription; return s.Decode(b) },
		"assignment":   func(b []byte) error { var a ConsumerAssignment; return a.Decode(b) },
	}
	for v := int16(0); v <= ConsumerProtocolMaxVersion; v++ {
		bodies := map[string][]byte{"subscription": sampleSubscription(v, false).AppendTo(nil), "assignment": sampleAssignment(v, false).AppendTo(nil)}
		for name, decode := range decoders {
			body := bodies[name]
			for n := 0; n < len(body); n++ {
				if err := decode(body[:n]); err == nil || !errors.Is(err, ErrShort) && !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s v%d truncated to %d of %d bytes: %v", name, v, n, len(body), err)
				}
			}
			if err := decode(append(body, 0)); err != nil {
				t.Fatalf("%s v%d: a trailing byte is not ignored: %v", name, v, err)
			}
			neg := bytes.Clone(body)
			neg[0] = 0xff
			if err := decode(neg); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s v%d: negative version: %v", name, v, err)
			}
			// A first array (topics, assigned partitions) claiming 2^31-1 elements.
			lying := append(AppendInt32(AppendInt16(nil, v), 1<<31-1), make([]byte, 64)...)
			if err := decode(lying); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s v%d: lying array length: %v", name, v, err)
			}
		}
	}
}
