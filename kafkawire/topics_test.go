package kafkawire

import (
	"errors"
	"slices"
	"testing"

	"github.com/kafkaedge/kafkaedge/internal/kafkatest"
	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// TestPartitions: the partitions of named topics, an unknown one failing
// alone; every topic of the cluster with no names; the cache answers a
// second call without a Metadata request.
func TestPartitions(t *testing.T) {
	kafkatest.Each(t, func(t *testing.T, k *kafkatest.Kafka) {
		a, b := k.Topic(t, "parts-a", 3), k.Topic(t, "parts-b", 1)
		rec := newRecorder()
		c := newClient(t, Config{Brokers: k.Brokers, Observer: rec})
		ctx := testCtx(t)
		got, err := c.Partitions(ctx, []string{a, "parts-nope", b})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Topic != a || !slices.Equal(got[0].Partitions, []int32{0, 1, 2}) || got[0].Err != nil ||
			got[2].Topic != b || !slices.Equal(got[2].Partitions, []int32{0}) || got[2].Err != nil {
			t.Fatalf("Partitions: %+v", got)
		}
		var e *Error
		if !errors.Is(got[1].Err, ErrUnknownTopic) || !errors.As(got[1].Err, &e) || e.Code != wire.ErrUnknownTopicOrPartition || got[1].Partitions != nil {
			t.Fatalf("the unknown topic: %+v", got[1])
		}
		before := rec.count("Metadata")
		if _, err := c.Partitions(ctx, []string{a, b}); err != nil {
			t.Fatal(err)
		}
		if n := rec.count("Metadata"); n != before {
			t.Fatalf("%d Metadata requests for cached topics", n-before)
		}
		all, err := c.Partitions(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(all))
		for i, tp := range all {
			names[i] = tp.Topic
			if tp.Err != nil || len(tp.Partitions) == 0 {
				t.Fatalf("every topic: %+v", tp)
			}
		}
		if !slices.IsSorted(names) || !slices.Contains(names, a) || !slices.Contains(names, b) {
			t.Fatalf("every topic: %v, want sorted, with %s and %s", names, a, b)
		}
	})
}
