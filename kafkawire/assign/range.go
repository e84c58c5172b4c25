package assign

import "slices"

const rangeName = "range"

// Range returns the "range" assignor, Java's RangeAssignor without rack
// awareness. Each topic is split on its own: its subscribers are sorted
// (static members first, by instance ID, then the others by member ID) and
// given contiguous ranges of partitions, the first (partitions % subscribers)
// of them one more than the rest. Members subscribed to the same topics with
// the same partition counts thus get the same partition numbers of each,
// which is what co-partitioned joins rely on.
func Range() Assignor { return rangeAssignor{} }

type rangeAssignor struct{}

func (rangeAssignor) Name() string { return rangeName }

func (rangeAssignor) Assign(members []Member, partitions map[string]int32) Assignment {
	members = uniqueMembers(members)
	slices.SortFunc(members, rangeOrder)
	out := make(Assignment, len(members))
	plans := make([]map[string][]int32, len(members))
	for i, m := range members {
		plans[i] = map[string][]int32{}
		out[m.ID] = plans[i]
	}

	// each topic's subscribers, in order
	topicNum := make(map[string]int)
	var topics []string
	var subscribers [][]int32 // topic -> members
	for i, m := range members {
		for _, topic := range m.Topics {
			t, ok := topicNum[topic]
			if !ok {
				t = len(topics)
				topicNum[topic] = t
				topics = append(topics, topic)
				subscribers = append(subscribers, nil)
			}
			subs := subscribers[t]
			if len(subs) == 0 || subs[len(subs)-1] != int32(i) { // a topic listed twice counts once
				subscribers[t] = append(subs, int32(i))
			}
		}
	}

	for t, subs := range subscribers {
		topic := topics[t]
		n := partitions[topic]
		if n <= 0 {
			continue // unknown topic, or one with no partitions
		}
		all := make([]int32, n)
		for p := range all {
			all[p] = int32(p)
		}
		per, extra := int(n)/len(subs), int(n)%len(subs)
		next := 0
		for i, m := range subs {
			k := per
			if i < extra {
				k++
			}
			if k == 0 {
				break
			}
			plans[m][topic] = all[next : next+k : next+k]
			next += k
		}
	}
	return out
}

// rangeOrder is the order of Java's AbstractPartitionAssignor.MemberInfo:
// members with an instance ID first, sorted by it, then the others sorted by
// member ID. The member ID breaks ties Java leaves to map order.
func rangeOrder(a, b Member) int {
	switch {
	case a.InstanceID != "" && b.InstanceID != "":
		if c := javaCompare(a.InstanceID, b.InstanceID); c != 0 {
			return c
		}
	case a.InstanceID != "":
		return -1
	case b.InstanceID != "":
		return 1
	}
	return javaCompare(a.ID, b.ID)
}
