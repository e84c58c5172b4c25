package kafkawire

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// fetchWant is one partition a Fetch request asks for.
type fetchWant struct {
	tp       topicPartition
	topicID  [16]byte // zero before Metadata v10
	epoch    int32    // current leader epoch, -1 when unknown
	offset   int64
	maxBytes int32
}

// sessionPart is what a fetch session holds for one partition: what the
// last request that named it asked.
type sessionPart struct {
	topicID  [16]byte
	epoch    int32
	offset   int64
	maxBytes int32
}

// fetchSession is the client side of one fetch session with one broker
// (KIP-227, Fetch v7+). The broker keeps, per session, the partitions and
// fetch parameters of the requests so far: a full request (epoch 0) lists
// every partition and opens the session, and each incremental request
// (the next epoch) lists only the partitions added or changed since, plus
// the partitions to drop (forgotten topics); the broker's incremental
// answers leave out the partitions that have nothing new. A broker that
// lost the session or saw another epoch answers FETCH_SESSION_ID_NOT_FOUND
// or INVALID_FETCH_SESSION_EPOCH, and the session starts over with a full
// request, as after any failed request, whose effect on the broker's
// state is unknown.
//
// The requests of a session go one at a time (fill, the round trip, then
// update or reset). Epoch -1 is sessionless: every request is full and
// the broker keeps nothing (FetchMany, and brokers without Fetch v7).
type fetchSession struct {
	id    int32
	epoch int32 // of the next request
	ids   bool  // the session is keyed by topic IDs (opened at v13+)
	parts map[topicPartition]sessionPart

	// Of the request in flight, for update (sent and forgot) and each.
	version int16
	sent    []fetchWant
	forgot  []topicPartition
	names   map[[16]byte]string         // topic names by ID, from v13
	wanted  map[topicPartition][16]byte // the partitions wanted, and their topic IDs, of an incremental request
}

// reset makes the next request a full one. It keeps the id, so that the
// broker closes the old session when it opens the next one.
func (s *fetchSession) reset() {
	if s.epoch < 0 {
		return
	}
	s.epoch, s.parts = 0, nil
}

// fill sets the session fields and the partitions of req, to be sent at
// version, for a fetch of want (each partition once).
func (s *fetchSession) fill(req *wire.FetchRequest, want []fetchWant, version int16) {
	if version < 7 {
		s.id, s.epoch = 0, -1 // the broker has no sessions
	}
	ids := version >= 13
	if s.epoch > 0 && s.ids != ids {
		s.reset() // opened at versions the topics no longer allow
	}
	s.version, s.sent, s.forgot = version, s.sent[:0], s.forgot[:0]
	req.SessionID, req.SessionEpoch = s.id, s.epoch
	incremental := s.epoch > 0
	if ids {
		if s.names == nil {
			s.names = make(map[[16]byte]string, len(want))
		}
		clear(s.names)
	}
	if incremental {
		if s.wanted == nil {
			s.wanted = make(map[topicPartition][16]byte, len(want))
		}
		clear(s.wanted)
	}
	topic := -1 // index in req.Topics of the last topic appended to
	for i, w := range want {
		if ids {
			s.names[w.topicID] = w.tp.topic
		}
		if incremental {
			s.wanted[w.tp] = w.topicID
			if s.parts[w.tp] == (sessionPart{w.topicID, w.epoch, w.offset, w.maxBytes}) {
				continue // the broker has it as it is
			}
		}
		if s.epoch >= 0 {
			s.sent = append(s.sent, w)
		}
		if topic < 0 || req.Topics[topic].Name != w.tp.topic {
			topic = -1
			for j := range req.Topics {
				if req.Topics[j].Name == w.tp.topic {
					topic = j
					break
				}
			}
			if topic < 0 {
				// Room for the partitions of the topic that follow in want.
				n := 1
				for n < len(want)-i && want[i+n].tp.topic == w.tp.topic {
					n++
				}
				req.Topics = append(req.Topics, wire.FetchTopic{Name: w.tp.topic, TopicID: w.topicID, Partitions: make([]wire.FetchPartition, 0, n)})
				topic = len(req.Topics) - 1
			}
		}
		req.Topics[topic].Partitions = append(req.Topics[topic].Partitions, wire.FetchPartition{
			Partition: w.tp.partition, CurrentLeaderEpoch: w.epoch, FetchOffset: w.offset, LogStartOffset: -1, PartitionMaxBytes: w.maxBytes,
		})
	}
	if !incremental {
		return
	}
	for tp, p := range s.parts {
		if id, ok := s.wanted[tp]; ok && (!ids || id == p.topicID) {
			continue
		}
		// Not wanted any more, or the topic was recreated under its name:
		// the session drops the entry of the old ID.
		s.forgot = append(s.forgot, tp)
		i := len(req.ForgottenTopics) - 1
		for ; i >= 0; i-- {
			if f := req.ForgottenTopics[i]; f.Name == tp.topic && f.TopicID == p.topicID {
				break
			}
		}
		if i < 0 {
			req.ForgottenTopics = append(req.ForgottenTopics, wire.ForgottenTopic{Name: tp.topic, TopicID: p.topicID})
			i = len(req.ForgottenTopics) - 1
		}
		req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, tp.partition)
	}
}

// update applies the broker's answer to the request fill prepared. It
// returns the answer's top-level error, if any; the session then starts
// over.
func (s *fetchSession) update(resp *wire.FetchResponse) error {
	if code := resp.ErrorCode; code != 0 {
		if code == wire.ErrFetchSessionIDNotFound {
			s.id = 0
		}
		s.reset()
		return kafkaError{code}
	}
	switch {
	case s.epoch < 0:
	case s.epoch == 0 && resp.SessionID == 0:
		// The broker answered in full but keeps no session (its cache is
		// full): the next request is a full one that asks again.
		s.id = 0
	case s.epoch == 0:
		s.id, s.epoch, s.ids = resp.SessionID, 1, s.version >= 13
		s.parts = make(map[topicPartition]sessionPart, len(s.sent))
		s.commit()
	case resp.SessionID == 0:
		// The broker closed the session: it had no partitions left.
		s.id = 0
		s.reset()
	case resp.SessionID != s.id:
		s.reset()
		return fmt.Errorf("fetch session %d answered as session %d", s.id, resp.SessionID)
	default:
		s.commit()
		s.epoch++
		if s.epoch == math.MaxInt32 {
			s.epoch = 1 // after the largest epoch comes 1
		}
	}
	return nil
}

// commit records in parts what the answered request told the broker:
// the forgotten partitions first, since a partition of a recreated topic
// is forgotten under its old ID and sent under its new one.
func (s *fetchSession) commit() {
	for _, tp := range s.forgot {
		delete(s.parts, tp)
	}
	for _, w := range s.sent {
		s.parts[w.tp] = sessionPart{w.topicID, w.epoch, w.offset, w.maxBytes}
	}
}

// each calls fn with every partition of resp, an answer to the request
// fill prepared, by topic name.
func (s *fetchSession) each(resp *wire.FetchResponse, fn func(tp topicPartition, p *wire.FetchPartitionResponse)) {
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		name := t.Name
		if s.version >= 13 {
			name = s.names[t.TopicID]
		}
		if name == "" {
			continue // not a topic we asked for
		}
		for pi := range t.Partitions {
			fn(topicPartition{name, t.Partitions[pi].Partition}, &t.Partitions[pi])
		}
	}
}

// fetchRound sends one Fetch request of session s for want to the broker
// at addr, on lane l, and returns the answer and its buffer, which the
// records of the answer alias (the caller releases it). A request that
// failed, or a top-level error in the answer, resets the session.
func (c *Client) fetchRound(ctx context.Context, addr string, l lane, s *fetchSession, want []fetchWant, maxWait time.Duration, minBytes int32) (*wire.FetchResponse, *respBuf, error) {
	cn, err := c.pool(addr, l).get(ctx)
	if err != nil {
		s.reset()
		return nil, nil, err
	}
	limit := int16(-1)
	for _, w := range want {
		if l := versionLimit(w.topicID); l >= 0 {
			limit = l
		}
	}
	v, err := cn.version(wire.KeyFetch, limit)
	if err != nil {
		return nil, nil, err
	}
	req := c.fetchRequest(maxWait, minBytes)
	s.fill(req, want, v)
	resp := new(wire.FetchResponse)
	buf, err := cn.doAt(ctx, req, v, resp)
	if err != nil {
		s.reset()
		return nil, nil, err
	}
	if c.roundHook != nil {
		c.roundHook(addr, req, resp)
	}
	if err := s.update(resp); err != nil {
		buf.release()
		return nil, nil, fmt.Errorf("fetch from %s: %w", addr, err)
	}
	return resp, buf, nil
}
