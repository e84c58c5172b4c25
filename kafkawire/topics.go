package kafkawire

import (
	"context"
	"maps"
	"slices"
	"time"
)

// TopicPartitions is one topic's partitions in the cluster's metadata.
type TopicPartitions struct {
	Topic      string
	Partitions []int32 // sorted; nil when Err is set
	// Err is nil, or an *Error: ErrUnknownTopic, or the Kafka error code
	// the cluster answered for the topic.
	Err error
}

// Partitions returns the partitions of each of topics, in their order, from
// the cached metadata when it answers for them, else after a Metadata
// request shared with the other callers (names that do not exist are
// answered by the cluster's list of names, fresh within a second). With no
// topics it returns every topic of the cluster, sorted by name. It fails
// only when no broker answered, ctx ended or the Client is closed.
func (c *Client) Partitions(ctx context.Context, topics []string) ([]TopicPartitions, error) {
	return c.PartitionsAfter(ctx, topics, time.Time{})
}

// PartitionsAfter is Partitions from metadata that a Metadata request
// started at or after after fetched (zero: any cached answer), so that
// partitions added and topics deleted since after are seen.
func (c *Client) PartitionsAfter(ctx context.Context, topics []string, after time.Time) ([]TopicPartitions, error) {
	const op = "metadata"
	if c.closed.Load() {
		return nil, newError(op, "", -1, 0, ErrClosed)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	list := len(topics) == 0
	snap, now := c.meta.Load(), time.Now()
	if !after.IsZero() || list && !snap.listFresh(now) || !snap.knows(topics, now) {
		seen := snap
		if !after.IsZero() {
			seen = nil
		}
		if err := c.refreshFor(ctx, topics, list, after, seen); err != nil {
			return nil, c.opError(op, "", -1, 0, err)
		}
		snap = c.meta.Load()
	}
	if list {
		// The list holds names; their partitions are asked for by name.
		topics = slices.Sorted(maps.Keys(snap.names))
		if !snap.knows(topics, time.Now()) {
			if err := c.refresh(ctx, topics, time.Time{}, snap); err != nil {
				return nil, c.opError(op, "", -1, 0, err)
			}
			snap = c.meta.Load()
		}
	}
	out := make([]TopicPartitions, len(topics))
	for i, name := range topics {
		out[i].Topic = name
		t, ok := snap.topics[name]
		switch {
		case !ok:
			out[i].Err = newError(op, name, -1, 0, ErrUnknownTopic)
		case t.err != 0:
			out[i].Err = newError(op, name, -1, 0, kafkaError{t.err})
		default:
			out[i].Partitions = slices.Sorted(maps.Keys(t.parts))
		}
	}
	return out, nil
}
