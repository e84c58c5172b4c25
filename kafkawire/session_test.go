package kafkawire

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// sessionRound fills a request of s for want at version and returns what
// it names: "topic/partition@offset" per partition sent, and
// "-topic/partition" per partition forgotten, sorted.
func sessionRound(s *fetchSession, want []fetchWant, version int16) (*wire.FetchRequest, []string) {
	req := &wire.FetchRequest{}
	s.fill(req, want, version)
	var named []string
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			named = append(named, fmt.Sprintf("%s/%d@%d", t.Name, p.Partition, p.FetchOffset))
		}
	}
	for _, f := range req.ForgottenTopics {
		for _, p := range f.Partitions {
			named = append(named, fmt.Sprintf("-%s/%d", f.Name, p))
		}
	}
	slices.Sort(named)
	return req, named
}

// TestFetchSession walks the client side of a fetch session through its
// states: the full request that opens it, incremental requests that send
// only what changed and forget what is no longer wanted, and the starts
// over after errors.
func TestFetchSession(t *testing.T) {
	id := func(b byte) [16]byte { return [16]byte{15: b} }
	w := func(topic string, p int32, offset int64) fetchWant {
		return fetchWant{tp: topicPartition{topic, p}, topicID: id(topic[0]), epoch: 3, offset: offset, maxBytes: 100}
	}
	check := func(step string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: request names %q, want %q", step, got, want)
		}
	}
	var s fetchSession
	req, named := sessionRound(&s, []fetchWant{w("a", 0, 10), w("a", 1, 20), w("b", 0, 5)}, 16)
	check("full", named, "a/0@10", "a/1@20", "b/0@5")
	if req.SessionID != 0 || req.SessionEpoch != 0 || len(req.Topics) != 2 || cap(req.Topics[0].Partitions) != 2 {
		t.Fatalf("full request: session %d epoch %d, %d topics", req.SessionID, req.SessionEpoch, len(req.Topics))
	}
	if err := s.update(&wire.FetchResponse{SessionID: 42}); err != nil || s.id != 42 || s.epoch != 1 || len(s.parts) != 3 {
		t.Fatalf("after the full answer: %v, session %d epoch %d, %d parts", err, s.id, s.epoch, len(s.parts))
	}

	// Only a/0 moved; b/0 is not wanted any more (held or removed).
	req, named = sessionRound(&s, []fetchWant{w("a", 0, 15), w("a", 1, 20)}, 16)
	check("incremental", named, "-b/0", "a/0@15")
	if req.SessionID != 42 || req.SessionEpoch != 1 || req.ForgottenTopics[0].TopicID != id('b') {
		t.Fatalf("incremental request: session %d epoch %d, forgotten %+v", req.SessionID, req.SessionEpoch, req.ForgottenTopics)
	}
	// Each names the partitions by topic ID from v13, also those the
	// request left out (they are in the session).
	resp := &wire.FetchResponse{SessionID: 42, Topics: []wire.FetchTopicResponse{
		{TopicID: id('a'), Partitions: []wire.FetchPartitionResponse{{Partition: 1}}},
		{TopicID: id('z'), Partitions: []wire.FetchPartitionResponse{{Partition: 0}}},
	}}
	var seen []topicPartition
	s.each(resp, func(tp topicPartition, _ *wire.FetchPartitionResponse) { seen = append(seen, tp) })
	if len(seen) != 1 || seen[0] != (topicPartition{"a", 1}) {
		t.Fatalf("each: %v", seen)
	}
	if err := s.update(resp); err != nil || s.epoch != 2 || len(s.parts) != 2 || s.parts[topicPartition{"a", 0}].offset != 15 {
		t.Fatalf("after the incremental answer: %v, epoch %d, parts %v", err, s.epoch, s.parts)
	}

	// Nothing changed: an empty incremental request. A changed leader
	// epoch or size is a change.
	_, named = sessionRound(&s, []fetchWant{w("a", 0, 15), w("a", 1, 20)}, 16)
	check("unchanged", named)
	s.update(&wire.FetchResponse{SessionID: 42})
	moved := w("a", 1, 20)
	moved.epoch = 4
	_, named = sessionRound(&s, []fetchWant{w("a", 0, 15), moved}, 16)
	check("new leader epoch", named, "a/1@20")
	s.update(&wire.FetchResponse{SessionID: 42})

	// A recreated topic: the old ID is forgotten and the new one sent.
	recreated := w("a", 0, 0)
	recreated.topicID = id('n')
	req, named = sessionRound(&s, []fetchWant{recreated, moved}, 16)
	check("recreated topic", named, "-a/0", "a/0@0")
	if req.ForgottenTopics[0].TopicID != id('a') || req.Topics[0].TopicID != id('n') {
		t.Fatalf("recreated topic: forgotten %+v, sent %+v", req.ForgottenTopics, req.Topics)
	}
	s.update(&wire.FetchResponse{SessionID: 42})
	if p := s.parts[topicPartition{"a", 0}]; p.topicID != id('n') || len(s.parts) != 2 {
		t.Fatalf("after the recreated topic: %v", s.parts)
	}

	// The epoch wraps to 1 after the largest.
	s.epoch = math.MaxInt32 - 1
	sessionRound(&s, []fetchWant{recreated, moved}, 16)
	s.update(&wire.FetchResponse{SessionID: 42})
	if s.epoch != 1 {
		t.Fatalf("epoch after MaxInt32-1: %d", s.epoch)
	}

	// INVALID_FETCH_SESSION_EPOCH: full again, naming the old session so
	// that the broker closes it. FETCH_SESSION_ID_NOT_FOUND: full, new.
	for _, tt := range []struct {
		code int16
		id   int32
	}{{wire.ErrInvalidFetchSessionEpoch, 42}, {wire.ErrFetchSessionTopicIDError, 42}, {wire.ErrFetchSessionIDNotFound, 0}} {
		s = fetchSession{id: 42, epoch: 7, ids: true, parts: map[topicPartition]sessionPart{{"a", 0}: {}}}
		sessionRound(&s, []fetchWant{w("a", 0, 1)}, 16)
		err := s.update(&wire.FetchResponse{ErrorCode: tt.code})
		if codeOf(err) != tt.code || !sessionError(err) {
			t.Fatalf("%s: %v", wire.ErrorName(tt.code), err)
		}
		req, named = sessionRound(&s, []fetchWant{w("a", 0, 1)}, 16)
		check(wire.ErrorName(tt.code), named, "a/0@1")
		if req.SessionID != tt.id || req.SessionEpoch != 0 {
			t.Fatalf("after %s: session %d epoch %d, want %d and 0", wire.ErrorName(tt.code), req.SessionID, req.SessionEpoch, tt.id)
		}
	}

	// A failed request (reset) starts over the same way.
	s = fetchSession{id: 9, epoch: 3, ids: true, parts: map[topicPartition]sessionPart{{"a", 0}: {}}}
	s.reset()
	if req, _ := sessionRound(&s, []fetchWant{w("a", 0, 1)}, 16); req.SessionID != 9 || req.SessionEpoch != 0 {
		t.Fatalf("after a reset: session %d epoch %d", req.SessionID, req.SessionEpoch)
	}
	// A broker that keeps no session answers the full request with id 0:
	// the next request is full again.
	s.update(&wire.FetchResponse{})
	if req, _ := sessionRound(&s, []fetchWant{w("a", 0, 1)}, 16); req.SessionID != 0 || req.SessionEpoch != 0 {
		t.Fatalf("after a full answer without a session: session %d epoch %d", req.SessionID, req.SessionEpoch)
	}
	// A session the broker closed (it had no partitions left).
	s = fetchSession{id: 5, epoch: 2, ids: true, parts: map[topicPartition]sessionPart{}}
	sessionRound(&s, []fetchWant{w("a", 0, 1)}, 16)
	if err := s.update(&wire.FetchResponse{}); err != nil || s.id != 0 || s.epoch != 0 {
		t.Fatalf("closed by the broker: %v, session %d epoch %d", err, s.id, s.epoch)
	}
	// An answer of another session is an error, and starts over.
	s = fetchSession{id: 5, epoch: 2, ids: true, parts: map[topicPartition]sessionPart{}}
	sessionRound(&s, []fetchWant{w("a", 0, 1)}, 16)
	if err := s.update(&wire.FetchResponse{SessionID: 6}); err == nil || s.epoch != 0 {
		t.Fatalf("answer of another session: %v, epoch %d", err, s.epoch)
	}

	// A session opened at v13+ (topic IDs) starts over at v12 (names).
	s = fetchSession{id: 5, epoch: 2, ids: true, parts: map[topicPartition]sessionPart{}}
	if req, _ := sessionRound(&s, []fetchWant{w("a", 0, 1)}, 12); req.SessionEpoch != 0 {
		t.Fatalf("v13 session at v12: epoch %d", req.SessionEpoch)
	}
	// Before Fetch v7 there are no sessions: every request is full.
	s = fetchSession{}
	for range 2 {
		if req, named := sessionRound(&s, []fetchWant{w("a", 0, 1)}, 6); req.SessionEpoch != -1 || len(named) != 1 {
			t.Fatalf("v6: epoch %d, %v", req.SessionEpoch, named)
		}
		if err := s.update(&wire.FetchResponse{}); err != nil {
			t.Fatal(err)
		}
	}
	// Sessionless answers with an error report it.
	s = fetchSession{epoch: -1}
	sessionRound(&s, []fetchWant{w("a", 0, 1)}, 16)
	if err := s.update(&wire.FetchResponse{ErrorCode: wire.ErrUnknownServerError}); codeOf(err) != wire.ErrUnknownServerError || s.epoch != -1 {
		t.Fatalf("sessionless error: %v, epoch %d", err, s.epoch)
	}
}
