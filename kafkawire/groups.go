package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// This file holds what consumer groups need from a cluster: the group's
// coordinator, found with FindCoordinator and cached, and the offsets it
// stores (OffsetCommit, OffsetFetch).

// CommittedOffset is a group's offset of one partition: the next offset to
// read.
type CommittedOffset struct {
	Partition   int32
	Offset      int64  // -1: none committed
	LeaderEpoch int32  // of the last record read; -1 unknown
	Metadata    string // the committer's note, stored with the offset
}

// Generation names the group member a commit is made as, which the
// coordinator fences: ID is the generation of a classic group or the
// member epoch of a KIP-848 consumer group. The zero Generation commits
// without membership (generation -1, no member id), as a client that
// keeps its own assignment does.
type Generation struct {
	MemberID   string
	InstanceID string
	ID         int32
}

// maxCachedCoordinators bounds the coordinator cache: past it, the cache is
// emptied, so that clients naming ever new groups cannot grow it.
const maxCachedCoordinators = 10000

// coordinator is the broker that coordinates a group.
type coordinator struct {
	node int32
	addr string
}

// coordFlight is one FindCoordinator lookup, which the calls for the same
// group that come meanwhile wait for.
type coordFlight struct {
	done chan struct{}
	co   coordinator
	err  error
}

// groupCoords caches the coordinators of groups.
type groupCoords struct {
	mu      sync.Mutex
	known   map[string]coordinator
	flights map[string]*coordFlight
}

// coordinator returns group's coordinator, cached or looked up. Lookups
// for one group share a flight, bounded by RequestTimeout and not by any
// one caller's ctx.
func (c *Client) coordinator(ctx context.Context, group string) (coordinator, error) {
	g := &c.coords
	g.mu.Lock()
	if co, ok := g.known[group]; ok {
		g.mu.Unlock()
		return co, nil
	}
	f := g.flights[group]
	if f == nil {
		f = &coordFlight{done: make(chan struct{})}
		if g.flights == nil {
			g.flights = make(map[string]*coordFlight)
		}
		g.flights[group] = f
		go c.findCoordinator(group, f)
	}
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.co, f.err
	case <-ctx.Done():
		return coordinator{}, ctxError(ctx, "finding the coordinator of group "+group)
	}
}

// findCoordinator runs flight f: FindCoordinator asked of the brokers in
// turn (metadataCandidates' order) until one answers.
func (c *Client) findCoordinator(group string, f *coordFlight) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.RequestTimeout)
	defer cancel()
	var errs brokerErrors
	f.err = errors.New("no broker to ask")
	for _, addr := range func() []string { cands, _ := c.metadataCandidates(); return cands }() {
		if ctx.Err() != nil {
			break
		}
		co, err := c.findCoordinatorAt(ctx, addr, group)
		if err == nil {
			f.co, f.err = co, nil
			break
		}
		errs.add(err)
		f.err = &errs
		if codeOf(err) != 0 {
			break // the cluster's answer, not one broker's failure
		}
	}
	if f.err != nil && ctx.Err() != nil && c.ctx.Err() == nil {
		errs.end = ctxError(ctx, "finding the coordinator of group "+group)
		f.err = &errs
	}
	if c.closed.Load() {
		f.err = ErrClosed
	}
	if len(errs.named) == 1 && errs.more == 0 && errs.end == nil {
		f.err = errs.named[0] // keep a Kafka error code visible to codeOf
	}
	g := &c.coords
	g.mu.Lock()
	delete(g.flights, group)
	if f.err == nil {
		if len(g.known) >= maxCachedCoordinators || g.known == nil {
			g.known = make(map[string]coordinator)
		}
		g.known[group] = f.co
	}
	g.mu.Unlock()
	close(f.done)
}

// findCoordinatorAt asks the broker at addr for group's coordinator.
func (c *Client) findCoordinatorAt(ctx context.Context, addr, group string) (coordinator, error) {
	cn, err := c.pool(addr, laneControl).get(ctx)
	if err != nil {
		return coordinator{}, err
	}
	actx, cancel := context.WithTimeout(ctx, c.metadataAttempt())
	defer cancel()
	var resp wire.FindCoordinatorResponse
	v, err := cn.do(actx, &wire.FindCoordinatorRequest{KeyType: 0, Keys: []string{group}}, &resp)
	if err != nil {
		return coordinator{}, err
	}
	for _, r := range resp.Coordinators {
		if v >= 4 && r.Key != group {
			continue
		}
		if r.ErrorCode != 0 {
			return coordinator{}, fmt.Errorf("broker %s: %w", addr, kafkaError{r.ErrorCode})
		}
		if r.Host == "" || r.Port <= 0 || r.Port > 65535 {
			return coordinator{}, fmt.Errorf("broker %s named coordinator %d at %q port %d", addr, r.NodeID, r.Host, r.Port)
		}
		return coordinator{node: r.NodeID, addr: net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))}, nil
	}
	return coordinator{}, fmt.Errorf("broker %s left group %q out of its FindCoordinator response", addr, group)
}

// forgetCoordinator drops group's cached coordinator if it is still co.
func (c *Client) forgetCoordinator(group string, co coordinator) {
	g := &c.coords
	g.mu.Lock()
	if g.known[group] == co {
		delete(g.known, group)
	}
	g.mu.Unlock()
}

// groupCall runs once with a connection of lane l to group's coordinator
// (laneOffsets for OffsetCommit and OffsetFetch, laneControl for the
// membership's requests, which the coordinator answers at once) until it
// succeeds, fails for good or ctx ends. A coordinator that moved or is
// not ready (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE) is looked up
// again, paced, as is one still loading the group's offsets
// (COORDINATOR_LOAD_IN_PROGRESS); a broken connection to it once. A lookup
// that no broker answered is not repeated: every broker was asked.
func (c *Client) groupCall(ctx context.Context, group string, l lane, once func(cn *conn) error) error {
	retried := false
	for waits := 0; ; waits++ {
		co, err := c.coordinator(ctx, group)
		if err != nil {
			if codeOf(err) != wire.ErrCoordinatorNotAvailable || c.closed.Load() || !pause(ctx, waits) {
				return err // every broker was asked
			}
			continue
		}
		cn, err := c.pool(co.addr, l).get(ctx)
		if err == nil {
			err = once(cn)
		}
		if err == nil {
			return nil
		}
		switch code := codeOf(err); {
		case isConnError(err) && !retried:
			retried = true
			c.forgetCoordinator(group, co)
		case code == wire.ErrNotCoordinator || code == wire.ErrCoordinatorNotAvailable:
			c.forgetCoordinator(group, co)
		case code == wire.ErrCoordinatorLoadInProgress:
		default:
			return err
		}
		if c.closed.Load() || !pause(ctx, waits) {
			return err
		}
	}
}

// CommitOffsets commits group's offsets of topic's partitions as the member
// gen names (the zero Generation: without membership). It returns once the
// coordinator stored them all; failures are *Error (Op "commit offsets"),
// naming the first partition the coordinator refused, with its Kafka
// error code (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, ...).
func (c *Client) CommitOffsets(ctx context.Context, group, topic string, offs []CommittedOffset, gen Generation) error {
	const op = "commit offsets"
	if c.closed.Load() {
		return newError(op, topic, -1, -1, ErrClosed)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	id := gen.ID
	if gen.MemberID == "" {
		id = -1
	}
	req := &wire.OffsetCommitRequest{GroupID: group, GenerationIDOrMemberEpoch: id, MemberID: gen.MemberID,
		GroupInstanceID: gen.InstanceID, RetentionTimeMillis: -1,
		Topics: []wire.OffsetCommitTopic{{Name: topic, Partitions: make([]wire.OffsetCommitPartition, len(offs))}}}
	for i, o := range offs {
		req.Topics[0].Partitions[i] = wire.OffsetCommitPartition{Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	failed := int32(-1) // the partition of the failure
	err := c.groupCall(ctx, group, laneOffsets, func(cn *conn) error {
		failed = -1
		var resp wire.OffsetCommitResponse
		if _, err := cn.do(ctx, req, &resp); err != nil {
			return err
		}
		answered := 0
		var first error
		for _, t := range resp.Topics {
			if t.Name != topic {
				continue
			}
			for _, p := range t.Partitions {
				answered++
				if p.ErrorCode != 0 && first == nil {
					failed, first = p.Partition, kafkaError{p.ErrorCode}
				}
			}
		}
		if first == nil && answered < len(offs) {
			first = fmt.Errorf("the coordinator answered %d of %d partitions", answered, len(offs))
		}
		return first
	})
	if err != nil {
		return c.opError(op, topic, failed, -1, err)
	}
	return nil
}

// CommittedOffsets returns group's committed offsets of topic's partitions,
// in the order asked, -1 where none is committed; partitions nil asks for
// every partition of the topic (from metadata: an unknown topic fails with
// ErrUnknownTopic). Failures are *Error (Op "fetch committed offsets").
func (c *Client) CommittedOffsets(ctx context.Context, group, topic string, partitions []int32) ([]CommittedOffset, error) {
	const op = "fetch committed offsets"
	if c.closed.Load() {
		return nil, newError(op, topic, -1, -1, ErrClosed)
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	if len(partitions) == 0 {
		tps, err := c.Partitions(ctx, []string{topic})
		if err != nil {
			return nil, c.opError(op, topic, -1, -1, err)
		}
		if err := tps[0].Err; err != nil {
			return nil, c.opError(op, topic, -1, -1, err)
		}
		partitions = tps[0].Partitions
	}
	req := &wire.OffsetFetchRequest{Groups: []wire.OffsetFetchGroup{{GroupID: group, MemberEpoch: -1,
		Topics: []wire.OffsetFetchTopic{{Name: topic, Partitions: partitions}}}}}
	out := make([]CommittedOffset, len(partitions))
	failed := int32(-1)
	err := c.groupCall(ctx, group, laneOffsets, func(cn *conn) error {
		failed = -1
		var resp wire.OffsetFetchResponse
		if _, err := cn.do(ctx, req, &resp); err != nil {
			return err
		}
		got := make(map[int32]wire.OffsetFetchPartitionResponse, len(partitions))
		for _, g := range resp.Groups {
			switch g.ErrorCode {
			case 0:
			case wire.ErrGroupIDNotFound: // kfake's answer for a group nobody used: nothing committed
				for _, p := range partitions {
					got[p] = wire.OffsetFetchPartitionResponse{Partition: p, Offset: -1, LeaderEpoch: -1}
				}
				continue
			default:
				return kafkaError{g.ErrorCode}
			}
			for _, t := range g.Topics {
				if t.Name != topic {
					continue
				}
				for _, p := range t.Partitions {
					got[p.Partition] = p
				}
			}
		}
		for i, p := range partitions {
			r, ok := got[p]
			switch {
			case !ok:
				return fmt.Errorf("the coordinator left partition %d out of its answer", p)
			case r.ErrorCode != 0:
				failed = p
				return kafkaError{r.ErrorCode}
			}
			out[i] = CommittedOffset{Partition: p, Offset: max(r.Offset, -1), LeaderEpoch: r.LeaderEpoch, Metadata: r.Metadata}
		}
		return nil
	})
	if err != nil {
		return nil, c.opError(op, topic, failed, -1, err)
	}
	return slices.Clip(out), nil
}
