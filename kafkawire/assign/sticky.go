package assign

import (
	"cmp"
	"math"
	"slices"
)

const cooperativeStickyName = "cooperative-sticky"

// CooperativeSticky returns the "cooperative-sticky" assignor (KIP-429),
// with the rules of Java's CooperativeStickyAssignor:
//
//   - Sticky: a member keeps the partitions it owned while it still
//     subscribes to their topic, they still exist and the balance allows.
//     A partition several members claim belongs to the claim with the
//     highest Generation, older claims are dropped; if two members claim it
//     in that generation, neither keeps it (KIP-792).
//   - Balanced: with the same subscriptions the members' partition counts
//     differ by at most one, and the members that owned the most keep the
//     larger shares, so that as few partitions move as possible. With
//     different subscriptions the counts are as even as the subscriptions
//     allow: no member can pass a partition, directly or along a chain of
//     members subscribed to the topics passed, to one holding two fewer.
//   - Cooperative: a partition that goes to a member other than the one
//     holding the sole newest claim on it, while some member claims it, is
//     left out of this assignment. Its owner sees it gone, revokes it and
//     rejoins, and the rebalance that follows gives it to its new member, so
//     that no partition is consumed by two members at once.
//
// Members are ordered by member ID, as in Java; instance IDs play no part.
// Without owned partitions and with the same subscriptions the result is
// Java's: partitions dealt round-robin in topic and partition order.
func CooperativeSticky() Assignor { return cooperativeSticky{} }

type cooperativeSticky struct{}

func (cooperativeSticky) Name() string { return cooperativeStickyName }

func (cooperativeSticky) Assign(members []Member, partitions map[string]int32) Assignment {
	return assignSticky(members, partitions, true)
}

// assignSticky runs the sticky assignment; without cooperative it returns the
// balanced plan before partitions moving between members are left out.
func assignSticky(members []Member, partitions map[string]int32, cooperative bool) Assignment {
	s := newSticky(members, partitions)
	s.fill()
	s.rebalance(true) // first move only partitions the members did not own, as Java does
	s.rebalance(false)
	s.repair()
	return s.assignment(cooperative)
}

const (
	noClaim = -1 // no member claims the partition
	tied    = -2 // two members claim it in its highest generation
)

// sticky is the state of one assignment. Members, topics and partitions are
// numbered: members in member ID order, topics in name order, and partitions
// topic by topic, so that numbers sort as (topic, partition).
type sticky struct {
	members  []Member
	topics   []string  // the topics to assign: subscribed, with partitions
	first    []int32   // topic -> number of its partition 0
	topicOf  []int32   // partition -> topic
	subs     [][]int32 // topic -> members subscribing to it, ascending
	topicsOf [][]int32 // member -> topics it subscribes to, ascending

	claimer  []int32 // partition -> member with the newest claim, noClaim or tied
	claimGen []int32 // partition -> generation of its newest claim
	prev     []int32 // partition -> member it stays with if balance allows, or -1

	// A member's partitions are split in those it owned (prev is the
	// member), sorted so that the one to give up first is last, and those
	// it gained, in no order.
	owner  []int32   // partition -> member it is assigned to
	own    [][]int32 // member -> partitions it owned and still holds
	gained [][]int32 // member -> partitions it did not own and holds
	pos    []int32   // partition -> its index in gained[owner]

	// scratch of findPath
	epoch   uint32
	seen    []uint32 // member -> epoch it was reached in
	scanned []uint32 // topic -> epoch its subscribers were reached in
	parent  []int32  // member -> member it was reached from
	queue   []int32
}

func newSticky(members []Member, partitions map[string]int32) *sticky {
	members = uniqueMembers(members)
	slices.SortFunc(members, func(a, b Member) int { return javaCompare(a.ID, b.ID) })
	s := &sticky{members: members}

	topicNum := make(map[string]int32) // -1: not to assign
	for _, m := range members {
		for _, t := range m.Topics {
			if _, ok := topicNum[t]; !ok {
				topicNum[t] = -1
				if partitions[t] > 0 {
					s.topics = append(s.topics, t)
				}
			}
		}
	}
	slices.SortFunc(s.topics, javaCompare)
	var nparts int32
	s.first = make([]int32, len(s.topics))
	for i, t := range s.topics {
		topicNum[t] = int32(i)
		s.first[i] = nparts
		nparts += partitions[t]
	}
	s.topicOf = make([]int32, nparts)
	for i, t := range s.topics {
		for p := range partitions[t] {
			s.topicOf[s.first[i]+p] = int32(i)
		}
	}

	s.topicsOf = make([][]int32, len(members))
	s.subs = make([][]int32, len(s.topics))
	for mi, m := range members {
		ts := make([]int32, 0, len(m.Topics))
		for _, t := range m.Topics {
			if i := topicNum[t]; i >= 0 {
				ts = append(ts, i)
			}
		}
		slices.Sort(ts)
		ts = slices.Compact(ts)
		s.topicsOf[mi] = ts
		for _, t := range ts {
			s.subs[t] = append(s.subs[t], int32(mi))
		}
	}

	// claims: the newest generation wins, a tie in it leaves nobody owning
	s.claimer = make([]int32, nparts)
	s.claimGen = make([]int32, nparts)
	for p := range s.claimer {
		s.claimer[p] = noClaim
	}
	for mi, m := range members {
		for topic, ps := range m.Owned {
			t, ok := topicNum[topic]
			if !ok || t < 0 {
				continue
			}
			n := partitions[topic]
			for _, p := range ps {
				if p < 0 || p >= n {
					continue
				}
				p += s.first[t]
				switch {
				case s.claimer[p] == noClaim || m.Generation > s.claimGen[p]:
					s.claimer[p], s.claimGen[p] = int32(mi), m.Generation
				case m.Generation == s.claimGen[p] && s.claimer[p] != int32(mi):
					s.claimer[p] = tied
				}
			}
		}
	}

	// start from the claims that are still valid
	s.prev = make([]int32, nparts)
	s.owner = make([]int32, nparts)
	s.pos = make([]int32, nparts)
	s.own = make([][]int32, len(members))
	s.gained = make([][]int32, len(members))
	per := int(nparts)/max(len(members), 1) + 1 // room for an even share
	buf := make([]int32, 2*per*len(members))
	for m := range members {
		s.own[m] = buf[2*m*per : 2*m*per : (2*m+1)*per]
		s.gained[m] = buf[(2*m+1)*per : (2*m+1)*per : (2*m+2)*per]
	}
	for p, c := range s.claimer {
		s.prev[p], s.owner[p] = -1, -1
		if c >= 0 && s.subscribes(c, s.topicOf[p]) {
			s.prev[p], s.owner[p] = c, c
			s.own[c] = append(s.own[c], int32(p))
		}
	}
	for _, own := range s.own {
		slices.SortFunc(own, s.releaseOrder)
	}

	s.seen = make([]uint32, len(members))
	s.parent = make([]int32, len(members))
	s.scanned = make([]uint32, len(s.topics))
	return s
}

// subscribes reports whether member m subscribes to topic t.
func (s *sticky) subscribes(m, t int32) bool {
	_, ok := slices.BinarySearch(s.topicsOf[m], t)
	return ok
}

// releaseOrder orders an owner's partitions so that it gives up the highest
// partition number (then topic) first: Java, too, keeps an owner's lowest
// numbered partitions, which spreads each member's partitions over topics.
func (s *sticky) releaseOrder(p, q int32) int {
	pn, qn := p-s.first[s.topicOf[p]], q-s.first[s.topicOf[q]]
	return cmp.Or(cmp.Compare(pn, qn), cmp.Compare(p, q))
}

// count returns how many partitions member m holds.
func (s *sticky) count(m int32) int { return len(s.own[m]) + len(s.gained[m]) }

// give assigns the unassigned partition p to member m.
func (s *sticky) give(p, m int32) {
	s.owner[p] = m
	if s.prev[p] == m { // back to its owner
		i, _ := slices.BinarySearchFunc(s.own[m], p, s.releaseOrder)
		s.own[m] = slices.Insert(s.own[m], i, p)
		return
	}
	s.pos[p] = int32(len(s.gained[m]))
	s.gained[m] = append(s.gained[m], p)
}

// move reassigns the partition p, one its holder gained, to member m.
func (s *sticky) move(p, m int32) {
	from := s.gained[s.owner[p]]
	last := from[len(from)-1]
	from[s.pos[p]] = last
	s.pos[last] = s.pos[p]
	s.gained[s.owner[p]] = from[:len(from)-1]
	s.give(p, m)
}

// lighter orders members by how many partitions they hold, then by number.
func (s *sticky) lighter(a, b int32) int {
	return cmp.Or(cmp.Compare(s.count(a), s.count(b)), cmp.Compare(a, b))
}

// fill assigns each unassigned partition to the subscriber of its topic that
// holds the fewest, as Java does: topics with fewer subscribers first, then
// by name, partitions in order. With no owned partitions and the same
// subscriptions this deals partitions round-robin in member order.
func (s *sticky) fill() {
	order := make([]int32, len(s.topics))
	for t := range order {
		order[t] = int32(t)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(len(s.subs[a]), len(s.subs[b])) })
	var heap []int32
	for _, t := range order {
		heap = heap[:0]
		end := int32(len(s.topicOf))
		if int(t)+1 < len(s.first) {
			end = s.first[t+1]
		}
		for p := s.first[t]; p < end; p++ {
			if s.owner[p] >= 0 {
				continue
			}
			if len(heap) == 0 {
				heap = append(heap, s.subs[t]...)
				for i := len(heap)/2 - 1; i >= 0; i-- {
					s.siftDown(heap, i)
				}
			}
			s.give(p, heap[0])
			s.siftDown(heap, 0)
		}
	}
}

// siftDown restores the min-heap (by lighter) below heap[i] after heap[i]
// grew.
func (s *sticky) siftDown(heap []int32, i int) {
	for {
		c := 2*i + 1
		if c >= len(heap) {
			return
		}
		if c+1 < len(heap) && s.lighter(heap[c+1], heap[c]) < 0 {
			c++
		}
		if s.lighter(heap[c], heap[i]) >= 0 {
			return
		}
		heap[i], heap[c] = heap[c], heap[i]
		i = c
	}
}

// rebalance moves partitions until no member holding n partitions can pass
// one, possibly along a chain of members that subscribe to its topic, to a
// member holding n-2 or fewer: the counts are then as even as the
// subscriptions allow. With freshOnly it moves only partitions their holder
// did not own.
//
// It works down from the highest count n. From all members holding n, a
// breadth-first search finds the member holding the fewest (at most n-2) and
// the shortest chain to it, and one partition is shifted along the chain.
// When there is no such member, every member the search reached holds at
// least n-1 and reaches only such members, so none of them can ever be part
// of a chain again: they are left out from then on.
func (s *sticky) rebalance(freshOnly bool) {
	done := make([]bool, len(s.members))
	var sources []int32
	for {
		level, lowest := -1, math.MaxInt
		for m := range s.members {
			if done[m] || len(s.topicsOf[m]) == 0 {
				continue
			}
			n := s.count(int32(m))
			switch {
			case n > level:
				level, sources = n, append(sources[:0], int32(m))
			case n == level:
				sources = append(sources, int32(m))
			}
			lowest = min(lowest, n)
		}
		if level-lowest < 2 {
			return // no member can take one from another
		}
		to, reached := s.findPath(sources, lowest, level-2, done, freshOnly)
		if to < 0 {
			for _, m := range reached {
				done[m] = true
			}
			continue
		}
		for ; s.parent[to] >= 0; to = s.parent[to] {
			s.pass(s.parent[to], to, freshOnly)
		}
	}
}

// findPath searches breadth-first from sources for the member that is not
// done and holds the fewest partitions, at most limit, and returns it, with
// parent giving the chain to it. It stops at the first member holding lowest,
// the fewest any member holds. If there is none it returns -1 and all the
// members reached. A member X reaches Y if X holds a partition (with
// freshOnly, one X did not own) of a topic Y subscribes to.
//
// Each topic's subscribers are scanned once per search: the first scan
// reaches them all. Members subscribed to nothing assignable hold nothing
// and are never reached.
func (s *sticky) findPath(sources []int32, lowest, limit int, done []bool, freshOnly bool) (int32, []int32) {
	s.epoch++
	queue := s.queue[:0]
	for _, m := range sources {
		s.seen[m], s.parent[m] = s.epoch, -1
		queue = append(queue, m)
	}
	defer func() { s.queue = queue }()
	best := int32(-1)
	for i := 0; i < len(queue); i++ {
		x := queue[i]
		holds := [2][]int32{s.gained[x], s.own[x]}
		if freshOnly {
			holds[1] = nil
		}
		for _, ps := range holds {
			for _, p := range ps {
				t := s.topicOf[p]
				if s.scanned[t] == s.epoch {
					continue
				}
				s.scanned[t] = s.epoch
				for _, y := range s.subs[t] {
					if s.seen[y] == s.epoch || done[y] {
						continue
					}
					s.seen[y], s.parent[y] = s.epoch, x
					switch n := s.count(y); {
					case n <= lowest:
						return y, nil
					case n <= limit && (best < 0 || n < s.count(best)):
						best = y
					}
					queue = append(queue, y)
				}
			}
		}
	}
	if best >= 0 {
		return best, nil
	}
	return -1, queue
}

// pass moves one of from's partitions, of a topic to subscribes to, to member
// to: one that to owned if there is one, else the last in release order of
// those from gained, else (unless freshOnly) the one from owned that it gives
// up first.
func (s *sticky) pass(from, to int32, freshOnly bool) {
	best := int32(-1)
	for _, p := range s.gained[from] {
		switch {
		case !s.subscribes(to, s.topicOf[p]):
		case s.prev[p] == to:
			s.move(p, to)
			return
		case best < 0 || s.releaseOrder(p, best) > 0:
			best = p
		}
	}
	if best >= 0 {
		s.move(best, to)
		return
	}
	if freshOnly {
		panic("assign: no partition to pass") // findPath reached to through one
	}
	own := s.own[from]
	for i := len(own) - 1; i >= 0; i-- {
		if p := own[i]; s.subscribes(to, s.topicOf[p]) {
			s.own[from] = slices.Delete(own, i, i+1)
			s.give(p, to)
			return
		}
	}
	panic("assign: no partition to pass")
}

// repair gives partitions back to the member that owned them where the
// member now holding one holds one more than the owner: that swaps their
// counts, so the balance is the same, with one move fewer.
func (s *sticky) repair() {
	for again := true; again; {
		again = false
		for p, m := range s.prev {
			if n := s.owner[p]; m >= 0 && n != m && s.count(n) == s.count(m)+1 {
				s.move(int32(p), m)
				again = true
			}
		}
	}
}

// assignment returns the plan. With cooperative, a partition goes only to
// a member that holds the sole newest claim on it or that nobody claims:
// one that another member claims is left out until that member revokes it.
func (s *sticky) assignment(cooperative bool) Assignment {
	out := make(Assignment, len(s.members))
	buf := make([]int32, 0, len(s.topicOf))
	var held []int32
	for m := range s.members {
		held = append(append(held[:0], s.own[m]...), s.gained[m]...)
		slices.Sort(held)
		topics := make(map[string][]int32, min(len(held), len(s.topicsOf[m])))
		out[s.members[m].ID] = topics
		for i := 0; i < len(held); {
			t := s.topicOf[held[i]]
			start := len(buf)
			for ; i < len(held) && s.topicOf[held[i]] == t; i++ {
				p := held[i]
				if cooperative && s.claimer[p] != noClaim && s.claimer[p] != int32(m) {
					continue
				}
				buf = append(buf, p-s.first[t])
			}
			if len(buf) > start {
				topics[s.topics[t]] = buf[start:len(buf):len(buf)]
			}
		}
	}
	return out
}
