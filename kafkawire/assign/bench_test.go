package assign

import (
	"fmt"
	"testing"
)

// benchGroup returns members members all subscribed to topics topics of
// perTopic partitions each, in one of three states: "new", nobody owns
// anything (the first rebalance); "join", all but the last member own what a
// rebalance without the last gave them (a member joins, the usual case);
// "spread", the first member owns everything (the worst case: nearly all
// partitions move).
func benchGroup(b *testing.B, members, topics, perTopic int, state string) ([]Member, map[string]int32) {
	partitions := make(map[string]int32, topics)
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%03d", i)
		partitions[names[i]] = int32(perTopic)
	}
	ms := make([]Member, members)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("consumer-%04d-5f0c7a3e", i), Topics: names, Generation: -1}
	}
	switch state {
	case "join":
		before := CooperativeSticky().Assign(ms[:members-1], partitions)
		for i := range ms[:members-1] {
			ms[i].Owned, ms[i].Generation = before[ms[i].ID], 7
		}
	case "spread":
		ms[0].Owned, ms[0].Generation = CooperativeSticky().Assign(ms[:1], partitions)[ms[0].ID], 7
	}
	b.ResetTimer()
	return ms, partitions
}

func BenchmarkAssign(b *testing.B) {
	for _, size := range []struct{ members, topics, perTopic int }{
		{100, 10, 10},
		{1000, 100, 100},
	} {
		for _, state := range []string{"new", "join", "spread"} {
			name := fmt.Sprintf("%dmembers_%dpartitions_%s", size.members, size.topics*size.perTopic, state)
			for _, a := range []Assignor{Range(), CooperativeSticky()} {
				if a.Name() == rangeName && state != "new" {
					continue // range ignores what members own
				}
				b.Run(a.Name()+"/"+name, func(b *testing.B) {
					members, partitions := benchGroup(b, size.members, size.topics, size.perTopic, state)
					b.ReportAllocs()
					for b.Loop() {
						a.Assign(members, partitions)
					}
				})
			}
		}
	}
}
