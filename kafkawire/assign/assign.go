// Package assign holds the client-side partition assignors of Kafka's classic
// consumer group protocol (the "consumer" protocol type of JoinGroup and
// SyncGroup): the code the group leader runs to split the subscribed topics'
// partitions among the members. It implements "range" and
// "cooperative-sticky" with the rules of the Java client's RangeAssignor and
// CooperativeStickyAssignor, so that kafkaedge can lead a group whose other
// members are Java, librdkafka or franz-go consumers, and they can lead it
// after kafkaedge without undoing its decisions.
//
// The package is pure data: it decodes nothing and does no I/O. The caller
// turns the JoinGroup members' ConsumerProtocolSubscription into [Member]
// values, looks up the partition counts, and encodes the [Assignment] into
// SyncGroup.
package assign

import (
	"cmp"
	"strings"
	"unicode/utf8"
)

// Member is one group member as the leader sees it in the JoinGroup response:
// its member ID and the decoded ConsumerProtocolSubscription it joined with.
type Member struct {
	// ID is the member ID the coordinator gave the member.
	ID string
	// InstanceID is the member's static membership ID (group.instance.id),
	// "" if it has none.
	InstanceID string
	// Topics are the topics the member subscribes to.
	Topics []string
	// Owned are the partitions the member owned when it joined (the
	// subscription's owned partitions), topic -> partitions. Only
	// cooperative-sticky reads them.
	Owned map[string][]int32
	// Generation is the group generation Owned is from, -1 if unknown: the
	// subscription's generation (ConsumerProtocolSubscription v2+) or, from
	// older clients, the one in cooperative-sticky's user data. Only
	// cooperative-sticky reads it.
	Generation int32
	// Rack is the member's rack (client.rack), "" if none. Neither assignor
	// uses it: rack-aware assignment (KIP-881) needs the racks of each
	// partition's replicas, which the input does not carry, and the Java
	// assignors assign without racks when they do not know them either.
	Rack string
}

// Assignment maps member ID -> topic -> partitions, each list sorted
// ascending. Every member given to Assign has an entry, empty if it is
// assigned nothing; topics a member is assigned nothing of are absent.
type Assignment map[string]map[string][]int32

// Assignor is a partition assignor the group leader runs.
type Assignor interface {
	// Name is the assignor's protocol name, as members list it in JoinGroup.
	Name() string
	// Assign splits the partitions of the topics the members subscribe to
	// among the members. partitions maps topic -> partition count; topics
	// missing from it (unknown to the leader) are not assigned. The result
	// depends only on the input, not on the order of members; of members
	// listed twice with one ID, the first counts.
	Assign(members []Member, partitions map[string]int32) Assignment
}

// ByName returns the assignor whose protocol name is name: "range" or
// "cooperative-sticky".
func ByName(name string) (Assignor, bool) {
	switch name {
	case rangeName:
		return Range(), true
	case cooperativeStickyName:
		return CooperativeSticky(), true
	}
	return nil, false
}

// uniqueMembers returns members without repeated IDs, keeping the first of
// each, as the Java leader (a map by member ID) and franz-go do with a
// member the coordinator listed twice.
func uniqueMembers(members []Member) []Member {
	seen := make(map[string]bool, len(members))
	out := make([]Member, 0, len(members))
	for _, m := range members {
		if !seen[m.ID] {
			seen[m.ID] = true
			out = append(out, m)
		}
	}
	return out
}

// javaCompare orders strings as Java's String.compareTo does, by UTF-16 code
// units, so that members and topics sort as in the Java client. It differs
// from Go's byte order only where a character above U+FFFF (a surrogate pair
// in UTF-16) meets one in U+E000-U+FFFF.
func javaCompare(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return cmp.Compare(len(a), len(b))
	}
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	if c := cmp.Compare(utf16Lead(ra), utf16Lead(rb)); c != 0 {
		return c
	}
	if c := cmp.Compare(ra, rb); c != 0 {
		return c
	}
	return strings.Compare(a, b) // invalid UTF-8: any fixed order will do
}

// utf16Lead returns the first UTF-16 code unit of r.
func utf16Lead(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}
