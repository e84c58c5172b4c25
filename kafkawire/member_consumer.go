package kafkawire

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// runConsumer runs KIP-848's consumer protocol: one ConsumerGroupHeartbeat
// loop. The coordinator computes the assignment; the member reports the
// partitions it owns once OnChange has stopped the revoked ones, which is
// how the coordinator learns it may give them to others.
func (m *Member) runConsumer() error {
	cfg := m.cfg
	id, err := m.c.topicID(m.ctx, cfg.Topic)
	if err != nil {
		return err
	}
	var instance *string
	if cfg.InstanceID != "" {
		instance = &cfg.InstanceID
	}
	memberID := newMemberID() // v1 (KIP-1082); v0 takes the coordinator's
	epoch := int32(0)
	interval := cfg.HeartbeatInterval
	full, report := true, false
	for m.ctx.Err() == nil {
		req := &wire.ConsumerGroupHeartbeatRequest{GroupID: cfg.Group, MemberID: memberID, MemberEpoch: epoch,
			RebalanceTimeoutMillis: -1}
		if full {
			req.InstanceID = instance
			req.RebalanceTimeoutMillis = int32(cfg.RebalanceTimeout / time.Millisecond)
			req.SubscribedTopicNames = []string{cfg.Topic}
		}
		if full || report {
			req.TopicPartitions = []wire.ConsumerGroupTopicPartitions{{TopicID: id, Partitions: m.ownedNow()}}
			if len(m.ownedNow()) == 0 {
				req.TopicPartitions = []wire.ConsumerGroupTopicPartitions{}
			}
		}
		resp, v, err := m.heartbeat(m.ctx, req)
		switch code := codeOf(err); {
		case err == nil:
		case m.ctx.Err() != nil:
			return nil
		case code == wire.ErrFencedMemberEpoch || code == wire.ErrUnknownMemberID:
			// Fenced: the partitions are gone; join again.
			m.c.cfg.Logger.Info("kafkawire: group member fenced, rejoining", "group", cfg.Group, "member", memberID, "err", err)
			m.change(Generation{MemberID: memberID, InstanceID: cfg.InstanceID, ID: 0}, nil, true)
			epoch, full, report = 0, true, false
			if v == 0 {
				memberID = ""
			}
			continue
		case code == wire.ErrUnreleasedInstanceID || code == 0 || retriable(err) || errors.Is(err, ErrTimeout):
			// The coordinator still holds our static id, or was not
			// reached within the request's timeout: ask again.
			m.c.cfg.Logger.Debug("kafkawire: group heartbeat failed", "group", cfg.Group, "err", err)
			if !m.sleep(interval) {
				return nil
			}
			continue
		default:
			return err
		}
		if resp.MemberID != "" {
			memberID = resp.MemberID
		}
		epoch, full, report = resp.MemberEpoch, false, false
		if resp.HeartbeatIntervalMillis > 0 {
			interval = time.Duration(resp.HeartbeatIntervalMillis) * time.Millisecond
		}
		gen := Generation{MemberID: memberID, InstanceID: cfg.InstanceID, ID: epoch}
		if resp.Assignment == nil {
			m.mu.Lock()
			m.setGen(gen)
			m.mu.Unlock()
		} else {
			var parts []int32
			for _, t := range resp.Assignment {
				if t.TopicID == id {
					parts = append(parts, t.Partitions...)
				}
			}
			m.change(gen, parts, false)
			report = true // acknowledge at once
			continue
		}
		if !m.sleep(interval) {
			break
		}
	}
	// Leave at once: epoch -1 (a static member: -2, it keeps its
	// partitions until its session ends or it comes back).
	leave := int32(-1)
	if cfg.InstanceID != "" {
		leave = -2
	}
	ctx, cancel := context.WithTimeout(m.c.ctx, m.c.cfg.RequestTimeout)
	defer cancel()
	if _, _, err := m.heartbeat(ctx, &wire.ConsumerGroupHeartbeatRequest{GroupID: cfg.Group, MemberID: memberID,
		MemberEpoch: leave, InstanceID: instance, RebalanceTimeoutMillis: -1}); err != nil && !m.c.closed.Load() {
		m.c.cfg.Logger.Warn("kafkawire: leaving group failed", "group", cfg.Group, "member", memberID, "err", err)
	}
	return nil
}

// heartbeat sends one ConsumerGroupHeartbeat to the group's coordinator
// and returns its answer and version; an error code of the answer is the
// error (the coordinator's moves are retried by groupCall).
func (m *Member) heartbeat(ctx context.Context, req *wire.ConsumerGroupHeartbeatRequest) (*wire.ConsumerGroupHeartbeatResponse, int16, error) {
	var (
		resp wire.ConsumerGroupHeartbeatResponse
		v    int16
	)
	ctx, cancel := m.c.opContext(ctx)
	defer cancel()
	err := m.c.groupCall(ctx, req.GroupID, laneControl, func(cn *conn) error {
		var err error
		if v, err = cn.version(wire.KeyConsumerGroupHeartbeat, -1); err != nil {
			return err
		}
		r := *req
		if v == 0 && r.MemberEpoch == 0 {
			r.MemberID = "" // v0: the coordinator names a joining member
		}
		buf, err := cn.doAt(ctx, &r, v, &resp)
		if err != nil {
			return err
		}
		buf.release()
		if resp.ErrorCode != 0 {
			return fmt.Errorf("%w: %s", kafkaError{resp.ErrorCode}, resp.ErrorMessage)
		}
		return nil
	})
	return &resp, v, err
}

// newMemberID returns a member id as the Java client makes one (a random
// UUID in URL-safe base64 without padding).
func newMemberID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// topicID returns the ID of topic, from metadata.
func (c *Client) topicID(ctx context.Context, topic string) ([16]byte, error) {
	tps, err := c.Partitions(ctx, []string{topic})
	if err == nil {
		err = tps[0].Err
	}
	if err != nil {
		return [16]byte{}, newError("metadata", topic, -1, -1, err)
	}
	if t := c.meta.Load().topics[topic]; t != nil && t.id != ([16]byte{}) {
		return t.id, nil
	}
	return [16]byte{}, fmt.Errorf("kafkawire: the cluster named no ID for topic %s", topic)
}
