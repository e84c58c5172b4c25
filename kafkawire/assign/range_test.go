package assign

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestByName(t *testing.T) {
	for _, name := range []string{"range", "cooperative-sticky"} {
		a, ok := ByName(name)
		if !ok || a.Name() != name {
			t.Errorf("ByName(%q) = %v, %v", name, a, ok)
		}
	}
	for _, name := range []string{"", "sticky", "roundrobin", "Range"} {
		if a, ok := ByName(name); ok {
			t.Errorf("ByName(%q) = %v, want none", name, a.Name())
		}
	}
}

func TestJavaCompare(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"a", "b", -1},
		{"a", "a", 0},
		{"ab", "a", 1},
		{"", "a", -1},
		{"consumer-1-x", "consumer-10-x", -1},
		{"é", "z", 1},
		// U+1F600 is the surrogate pair D83D DE00 in UTF-16: Java sorts it
		// before U+FF61, Go's byte order after.
		{"\U0001F600", "\uFF61", -1},
		{"x\U0001F600", "x\uFF61", -1},
		{"\U0001F600", "\U0001F601", -1},
		{"\U0001F600", "\u00e9", 1},
	} {
		if got := javaCompare(c.a, c.b); got != c.want {
			t.Errorf("javaCompare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := javaCompare(c.b, c.a); got != -c.want {
			t.Errorf("javaCompare(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestRangeMatchesFranzGo compares the range assignor with franz-go's, which
// is Java's RangeAssignor without racks, over a table of groups and then
// random ones.
func TestRangeMatchesFranzGo(t *testing.T) {
	all := []string{"a", "b", "c"}
	cases := []struct {
		name       string
		members    []Member
		partitions map[string]int32
	}{
		{"one member", []Member{{ID: "m1", Topics: all}}, map[string]int32{"a": 3, "b": 1, "c": 7}},
		{"two members, three each", []Member{{ID: "m1", Topics: []string{"a", "b"}}, {ID: "m2", Topics: []string{"a", "b"}}},
			map[string]int32{"a": 3, "b": 3}},
		{"three members, uneven", []Member{{ID: "m3", Topics: all}, {ID: "m1", Topics: all}, {ID: "m2", Topics: all}},
			map[string]int32{"a": 7, "b": 2, "c": 11}},
		{"different subscriptions", []Member{
			{ID: "m1", Topics: []string{"a"}},
			{ID: "m2", Topics: []string{"a", "b"}},
			{ID: "m3", Topics: []string{"b", "c"}},
			{ID: "m4", Topics: []string{"c"}},
		}, map[string]int32{"a": 5, "b": 4, "c": 3}},
		{"more members than partitions", []Member{
			{ID: "m1", Topics: all}, {ID: "m2", Topics: all}, {ID: "m3", Topics: all}, {ID: "m4", Topics: all}, {ID: "m5", Topics: all},
		}, map[string]int32{"a": 2, "b": 1, "c": 4}},
		{"unknown and empty topics", []Member{
			{ID: "m1", Topics: []string{"a", "gone"}}, {ID: "m2", Topics: []string{"a", "b", "gone"}},
		}, map[string]int32{"a": 3, "b": 0}},
		{"static members first, by instance ID", []Member{
			{ID: "m1", Topics: all},
			{ID: "m2", InstanceID: "z", Topics: all},
			{ID: "m3", InstanceID: "y", Topics: all},
			{ID: "m0", Topics: all},
			{ID: "m4", InstanceID: "x", Topics: all},
		}, map[string]int32{"a": 5, "b": 8, "c": 2}},
		{"no members", nil, map[string]int32{"a": 3}},
		{"no topics", []Member{{ID: "m1"}, {ID: "m2", Topics: []string{"a"}}}, map[string]int32{"a": 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkRange(t, c.members, c.partitions)
		})
	}

	r := rand.New(rand.NewSource(1))
	for i := range 300 {
		var topics []string
		partitions := make(map[string]int32)
		for j := range 1 + r.Intn(4) {
			topic := fmt.Sprintf("t%d", j)
			topics = append(topics, topic)
			if r.Intn(6) > 0 {
				partitions[topic] = int32(r.Intn(10))
			}
		}
		members := make([]Member, 1+r.Intn(5))
		for j := range members {
			members[j].ID = fmt.Sprintf("member-%x", r.Intn(1<<16))
			if r.Intn(3) == 0 {
				members[j].InstanceID = fmt.Sprintf("instance-%x", r.Intn(1<<16))
			}
			for _, topic := range topics {
				if r.Intn(3) > 0 {
					members[j].Topics = append(members[j].Topics, topic)
				}
			}
		}
		members = uniqueMembers(members)
		if !t.Run(fmt.Sprint("random", i), func(t *testing.T) { checkRange(t, members, partitions) }) {
			break
		}
	}
}

func checkRange(t *testing.T, members []Member, partitions map[string]int32) {
	t.Helper()
	got := Range().Assign(members, partitions)
	want := kgoAssign(t, kgo.RangeBalancer(), members, partitions)
	if !equalAssignments(got, want) {
		t.Fatalf("range:\n%sfranz-go:\n%s", show(got), show(want))
	}
	owners(t, members, partitions, got) // nothing twice, nothing unsubscribed
}

// TestRangeJava pins the rules where franz-go is no reference: a topic a
// member lists twice counts once, as in Java (franz-go would count the member
// twice), and the input order does not matter.
func TestRangeJava(t *testing.T) {
	members := []Member{
		{ID: "b", Topics: []string{"t", "t"}},
		{ID: "a", Topics: []string{"t"}},
	}
	want := Assignment{"a": {"t": {0, 1}}, "b": {"t": {2}}}
	if got := Range().Assign(members, map[string]int32{"t": 3}); !equalAssignments(got, want) {
		t.Fatalf("got\n%swant\n%s", show(got), show(want))
	}
	members[0], members[1] = members[1], members[0]
	if got := Range().Assign(members, map[string]int32{"t": 3}); !equalAssignments(got, want) {
		t.Fatalf("reordered: got\n%swant\n%s", show(got), show(want))
	}
}
