package kafkawire

import (
	"errors"
	"fmt"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// Sentinel errors that callers branch on with errors.Is. An *Error wraps
// at most one of ErrUnknownTopic (or ErrUnknownPartition), ErrTimeout,
// ErrClosed and ErrBrokerUnreachable, or carries a Kafka error code.
var (
	// ErrUnknownTopic reports that the topic or the partition does not exist
	// in the cluster's metadata.
	ErrUnknownTopic = errors.New("unknown topic or partition")
	// ErrUnknownPartition reports that the topic exists but the partition
	// does not. It is also ErrUnknownTopic (errors.Is), and its text is
	// the same.
	ErrUnknownPartition error = unknownPartition{}
	// ErrClosed reports that the Client was closed before or during the call.
	ErrClosed = errors.New("kafkawire: client closed")
	// ErrTimeout reports that a call's deadline (its context's, or
	// Config.RequestTimeout) passed before the broker answered.
	ErrTimeout = errors.New("request timed out")
	// ErrBrokerUnreachable reports that no broker answered: the dial, the
	// TLS or Kafka handshake or the authentication failed, or the
	// connection broke before the answer. The error's text says which
	// broker and why.
	ErrBrokerUnreachable = errors.New("broker unreachable")
)

// unknownPartition is ErrUnknownPartition.
type unknownPartition struct{}

func (unknownPartition) Error() string        { return ErrUnknownTopic.Error() }
func (unknownPartition) Is(target error) bool { return target == ErrUnknownTopic }

// Error is every failure of ListOffset, Fetch and the per-partition results of
// FetchMany and of a Stream. Its text names the operation, the partition and
// the offset: "fetch topic/3@120: OFFSET_OUT_OF_RANGE".
type Error struct {
	Op        string // "fetch" or "list offsets"
	Topic     string
	Partition int32
	Offset    int64 // fetch offset, or the timestamp asked of ListOffsets
	Code      int16 // Kafka error code, 0 if the failure is not one
	Err       error // cause; nil when Code says everything
}

// Error returns "op topic/partition@offset: cause".
func (e *Error) Error() string {
	cause := ""
	switch {
	case e.Err != nil:
		cause = e.Err.Error()
	default:
		cause = wire.ErrorName(e.Code)
	}
	return fmt.Sprintf("%s %s/%d@%d: %s", e.Op, e.Topic, e.Partition, e.Offset, cause)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// kafkaError is a non-zero Kafka error code seen in a response, kept as an
// error value inside the client so that retry decisions can inspect it.
type kafkaError struct{ code int16 }

func (k kafkaError) Error() string { return wire.ErrorName(k.code) }

// connError marks a transport failure (dial, TLS, write, read, a connection
// closed under a call): the call may be retried on a fresh connection.
type connError struct {
	addr string
	err  error
}

func (c *connError) Error() string { return fmt.Sprintf("broker %s: %v", c.addr, c.err) }
func (c *connError) Unwrap() error { return c.err }

// Is reports a transport failure as ErrBrokerUnreachable, unless it is the
// Client's own Close.
func (c *connError) Is(target error) bool {
	return target == ErrBrokerUnreachable && !errors.Is(c.err, ErrClosed)
}

// isConnError reports whether err is a transport failure of a connection.
func isConnError(err error) bool {
	var ce *connError
	return errors.As(err, &ce)
}

// codeOf returns the Kafka error code carried by err, or 0.
func codeOf(err error) int16 {
	var ke kafkaError
	if errors.As(err, &ke) {
		return ke.code
	}
	return 0
}

// retriable reports whether a failed attempt is worth one retry after a
// metadata refresh: the leader moved, is not known, lost the partition's
// replica or log directory (REPLICA_NOT_AVAILABLE, KAFKA_STORAGE_ERROR:
// another broker will lead it), the topic was recreated, or a connection
// to it broke.
func retriable(err error) bool {
	if err == nil {
		return false
	}
	switch codeOf(err) {
	case wire.ErrNotLeaderOrFollower, wire.ErrFencedLeaderEpoch, wire.ErrUnknownTopicID, wire.ErrInconsistentTopicID, wire.ErrLeaderNotAvailable,
		wire.ErrUnknownTopicOrPartition, wire.ErrReplicaNotAvailable, wire.ErrKafkaStorageError:
		return true
	}
	return isConnError(err)
}

// transient reports whether err is an answer of the right leader that cannot
// serve the call yet and will shortly, so that the call asks it again,
// paced, until its deadline, without refreshing the metadata. Both come
// from a leader elected moments ago: OFFSET_NOT_AVAILABLE until it knows
// its high watermark (KIP-207: its followers must fetch from it first,
// about a second on a real cluster), UNKNOWN_LEADER_EPOCH while it has not
// yet applied the metadata that made it leader, which the client already
// has from another broker.
func transient(err error) bool {
	switch codeOf(err) {
	case wire.ErrOffsetNotAvailable, wire.ErrUnknownLeaderEpoch:
		return true
	}
	return false
}

// newError builds the *Error returned to callers from an internal failure.
// A Kafka error code becomes Code (with Err nil, so the text is the code's
// name); an unknown topic or partition becomes Code
// UNKNOWN_TOPIC_OR_PARTITION with Err ErrUnknownTopic or
// ErrUnknownPartition.
func newError(op, topic string, partition int32, offset int64, err error) *Error {
	e := &Error{Op: op, Topic: topic, Partition: partition, Offset: offset}
	code := codeOf(err)
	switch {
	case errors.Is(err, ErrUnknownPartition):
		e.Code, e.Err = wire.ErrUnknownTopicOrPartition, ErrUnknownPartition
	case errors.Is(err, ErrUnknownTopic) || code == wire.ErrUnknownTopicOrPartition:
		e.Code, e.Err = wire.ErrUnknownTopicOrPartition, ErrUnknownTopic
	case code != 0:
		e.Code = code
	default:
		e.Err = err
	}
	return e
}
