package assign

import (
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kgoAssign runs a franz-go balancer as the franz-go leader would: members
// encoded as JoinGroup members with ConsumerMemberMetadata v3 (and the sticky
// user data franz-go reads for generation -1), sorted as franz-go sorts them,
// balanced over the known counts of the topics they subscribe to.
func kgoAssign(t testing.TB, b kgo.GroupBalancer, members []Member, partitions map[string]int32) Assignment {
	t.Helper()
	jms := make([]kmsg.JoinGroupResponseMember, 0, len(members))
	for _, m := range members {
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Version = 3
		meta.Topics = slices.Clone(m.Topics)
		meta.Generation = m.Generation
		user := kmsg.NewStickyMemberMetadata()
		user.Generation = m.Generation
		for _, topic := range slices.Sorted(maps.Keys(m.Owned)) {
			owned := kmsg.NewConsumerMemberMetadataOwnedPartition()
			owned.Topic, owned.Partitions = topic, slices.Clone(m.Owned[topic])
			meta.OwnedPartitions = append(meta.OwnedPartitions, owned)
			current := kmsg.NewStickyMemberMetadataCurrentAssignment()
			current.Topic, current.Partitions = topic, slices.Clone(m.Owned[topic])
			user.CurrentAssignment = append(user.CurrentAssignment, current)
		}
		meta.UserData = user.AppendTo(nil)
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.ID
		if m.InstanceID != "" {
			jm.InstanceID = kmsg.StringPtr(m.InstanceID)
		}
		jm.ProtocolMetadata = meta.AppendTo(nil)
		jms = append(jms, jm)
	}
	sort.Slice(jms, func(i, j int) bool { // franz-go's balanceGroup order
		l, r := jms[i], jms[j]
		if (l.InstanceID != nil) != (r.InstanceID != nil) {
			return l.InstanceID != nil
		}
		if l.InstanceID != nil && *l.InstanceID != *r.InstanceID {
			return *l.InstanceID < *r.InstanceID
		}
		return l.MemberID < r.MemberID
	})
	mb, topics, err := b.MemberBalancer(jms)
	if err != nil {
		t.Fatal(err)
	}
	counts := make(map[string]int32)
	for topic := range topics {
		if n, ok := partitions[topic]; ok {
			counts[topic] = n
		}
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(counts)
	if err != nil {
		t.Fatal(err)
	}
	out := make(Assignment)
	for id, topics := range into.(*kgo.BalancePlan).AsMemberIDMap() {
		out[id] = map[string][]int32{}
		for topic, ps := range topics {
			if len(ps) > 0 {
				out[id][topic] = slices.Sorted(slices.Values(ps))
			}
		}
	}
	return out
}

// show formats an assignment deterministically for failure messages.
func show(a Assignment) string {
	var sb strings.Builder
	for _, id := range slices.Sorted(maps.Keys(a)) {
		fmt.Fprintf(&sb, "%s:", id)
		for _, topic := range slices.Sorted(maps.Keys(a[id])) {
			fmt.Fprintf(&sb, " %s%v", topic, a[id][topic])
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

func equalAssignments(a, b Assignment) bool {
	return maps.EqualFunc(a, b, func(x, y map[string][]int32) bool {
		return maps.EqualFunc(x, y, slices.Equal[[]int32])
	})
}

type tp struct {
	topic     string
	partition int32
}

// universe returns the partitions some member can be assigned: of known
// topics with partitions that someone subscribes to.
func universe(members []Member, partitions map[string]int32) map[tp]bool {
	u := make(map[tp]bool)
	for _, m := range members {
		for _, topic := range m.Topics {
			for p := range max(partitions[topic], 0) {
				u[tp{topic, p}] = true
			}
		}
	}
	return u
}

// owners maps each assigned partition to its member; it fails the test on
// a partition assigned twice, of a topic the member does not subscribe to,
// or that does not exist.
func owners(t *testing.T, members []Member, partitions map[string]int32, a Assignment) map[tp]string {
	t.Helper()
	byID := make(map[string]Member)
	for _, m := range members {
		byID[m.ID] = m
	}
	own := make(map[tp]string)
	for id, topics := range a {
		m, ok := byID[id]
		if !ok {
			t.Fatalf("assignment for unknown member %q", id)
		}
		for topic, ps := range topics {
			if !slices.Contains(m.Topics, topic) {
				t.Fatalf("%s assigned %s%v, not subscribed\n%s", id, topic, ps, show(a))
			}
			if !slices.IsSorted(ps) || len(ps) == 0 {
				t.Fatalf("%s: %s%v empty or not sorted", id, topic, ps)
			}
			for _, p := range ps {
				if p < 0 || p >= partitions[topic] {
					t.Fatalf("%s assigned %s/%d, which does not exist\n%s", id, topic, p, show(a))
				}
				if other, dup := own[tp{topic, p}]; dup {
					t.Fatalf("%s/%d assigned to %s and %s\n%s", topic, p, other, id, show(a))
				}
				own[tp{topic, p}] = id
			}
		}
	}
	for _, m := range members {
		if _, ok := a[m.ID]; !ok {
			t.Fatalf("no entry for member %s", m.ID)
		}
	}
	return own
}

func counts(a Assignment) map[string]int {
	c := make(map[string]int, len(a))
	for id, topics := range a {
		for _, ps := range topics {
			c[id] += len(ps)
		}
	}
	return c
}

// sortedCounts returns the members' partition counts, highest first.
func sortedCounts(a Assignment) []int {
	var c []int
	for _, n := range counts(a) {
		c = append(c, n)
	}
	slices.Sort(c)
	slices.Reverse(c)
	return c
}

// unbalanced reports a member that could pass a partition, possibly along a
// chain of members subscribing to the partitions' topics, to a member holding
// two fewer. An assignment without one has the most even counts the
// subscriptions allow (it is decreasingly minimal).
func unbalanced(members []Member, a Assignment) string {
	c := counts(a)
	subscribers := make(map[string][]string)
	for _, m := range members {
		for _, topic := range m.Topics {
			subscribers[topic] = append(subscribers[topic], m.ID)
		}
	}
	for _, src := range members {
		seen := map[string]bool{src.ID: true}
		queue := []string{src.ID}
		for len(queue) > 0 {
			x := queue[0]
			queue = queue[1:]
			for topic := range a[x] {
				for _, y := range subscribers[topic] {
					if seen[y] {
						continue
					}
					if c[y] <= c[src.ID]-2 {
						return fmt.Sprintf("%s (%d) can pass a partition to %s (%d)", src.ID, c[src.ID], y, c[y])
					}
					seen[y] = true
					queue = append(queue, y)
				}
			}
		}
	}
	return ""
}

// claims resolves the members' owned partitions as the assignor should: the
// claim with the highest generation wins, a tie in it has no winner.
type claim struct {
	winner string // "" for a tie
	gen    int32
	all    map[string]bool
}

func resolveClaims(members []Member, partitions map[string]int32) map[tp]*claim {
	cs := make(map[tp]*claim)
	for _, m := range members {
		for topic, ps := range m.Owned {
			for _, p := range ps {
				if p < 0 || p >= partitions[topic] {
					continue
				}
				c := cs[tp{topic, p}]
				switch {
				case c == nil:
					cs[tp{topic, p}] = &claim{m.ID, m.Generation, map[string]bool{m.ID: true}}
					continue
				case m.Generation > c.gen:
					c.winner, c.gen = m.ID, m.Generation
				case m.Generation == c.gen && c.winner != m.ID:
					c.winner = ""
				}
				c.all[m.ID] = true
			}
		}
	}
	return cs
}

// prevOwners returns the partitions each member should keep if balance
// allows: those it holds the sole newest claim on, of topics it subscribes to.
func prevOwners(members []Member, partitions map[string]int32) map[tp]string {
	subscribed := make(map[string]map[string]bool)
	for _, m := range members {
		subscribed[m.ID] = make(map[string]bool)
		for _, topic := range m.Topics {
			subscribed[m.ID][topic] = true
		}
	}
	prev := make(map[tp]string)
	for p, c := range resolveClaims(members, partitions) {
		if c.winner != "" && subscribed[c.winner][p.topic] {
			prev[p] = c.winner
		}
	}
	return prev
}

// sameSubscriptions reports whether all members subscribe to the same known
// topics.
func sameSubscriptions(members []Member, partitions map[string]int32) bool {
	set := func(m Member) string {
		var ts []string
		for _, topic := range m.Topics {
			if partitions[topic] > 0 {
				ts = append(ts, topic)
			}
		}
		slices.Sort(ts)
		return strings.Join(slices.Compact(ts), ",")
	}
	for _, m := range members {
		if set(m) != set(members[0]) {
			return false
		}
	}
	return true
}

// nextRound returns the members as they rejoin after acting on a: each owns
// what it was assigned, in the next generation.
func nextRound(members []Member, a Assignment, gen int32) []Member {
	next := make([]Member, len(members))
	for i, m := range members {
		m.Owned = a[m.ID]
		m.Generation = gen
		next[i] = m
	}
	return next
}

// randomGroup makes a random group with a previous assignment: topics of up
// to 12 partitions (one sometimes unknown), members subscribed to all of
// them (same) or to random ones, owning a random earlier spread of partitions
// (some of them in older generations, no longer subscribed or no longer
// existing, and with twice, some claimed by two members).
func randomGroup(r *rand.Rand, same, twice bool) ([]Member, map[string]int32, int32) {
	partitions := make(map[string]int32)
	var topics []string
	for i := range 1 + r.Intn(5) {
		topic := fmt.Sprintf("t%d", i)
		topics = append(topics, topic)
		if i == 0 || r.Intn(8) > 0 {
			partitions[topic] = int32(r.Intn(13))
		}
	}
	gen := int32(5 + r.Intn(5))
	members := make([]Member, 1+r.Intn(8))
	for i := range members {
		m := Member{ID: fmt.Sprintf("m%02d-%x", i, r.Intn(256)), Generation: gen, Owned: map[string][]int32{}}
		if same {
			m.Topics = topics
		} else {
			for _, topic := range topics {
				if r.Intn(2) == 0 {
					m.Topics = append(m.Topics, topic)
				}
			}
		}
		switch r.Intn(6) {
		case 0:
			m.Generation = gen - 1 - int32(r.Intn(3))
		case 1:
			m.Generation = -1
		}
		members[i] = m
	}
	for _, topic := range topics {
		for p := range partitions[topic] + 1 { // one past the end: a partition that went away
			if r.Intn(3) == 0 {
				continue // unowned
			}
			owners := 1
			if twice && r.Intn(4) == 0 {
				owners = 2
			}
			for range owners {
				m := &members[r.Intn(len(members))]
				if !slices.Contains(m.Owned[topic], p) {
					m.Owned[topic] = append(m.Owned[topic], p)
				}
			}
		}
	}
	return members, partitions, gen
}
