package pubsub

import "strconv"

// Messages of the ErrorResp answers that have nothing to do with Kafka
// (docs/protocol.md, "Errors"). They are APISIX's texts: clients match on
// them.
const (
	// MessageWrongCommand answers, with sequence 0, a binary frame that is
	// not a PubSubReq.
	MessageWrongCommand = "wrong command"
	// MessageUnknownCommand answers a command without a handler (cmd_empty).
	MessageUnknownCommand = "unknown command"
)

// Reasons of a failed Kafka call, the <reason> of ListOffsetErrorMessage and
// FetchErrorMessage, besides the Kafka error names (OFFSET_OUT_OF_RANGE, ...).
// No reason carries an address or a resolver's text.
const (
	// ReasonNotFoundTopic: the topic does not exist.
	ReasonNotFoundTopic = "not found topic"
	// ReasonNotFoundPartition: the topic exists but not the partition
	// (lua-resty-kafka's text, which APISIX answers).
	ReasonNotFoundPartition = "not found partition"
	// ReasonBrokerUnreachable: no broker of the route's cluster could be
	// reached (the addresses and the cause go to the node's log only).
	ReasonBrokerUnreachable = "broker unreachable"
	// ReasonTimeout: the brokers did not answer in time.
	ReasonTimeout = "timeout"
	// ReasonClientClosed: the node's Kafka client was closed under the call
	// (its route changed or the node shuts down).
	ReasonClientClosed = "client closed"
	// ReasonUnknown: any other failure between the node and the brokers
	// (its details go to the node's log only).
	ReasonUnknown = "unknown error"
)

// ListOffsetErrorMessage returns the message of the ErrorResp that answers a
// failed cmd_kafka_list_offset: "failed to list offset, topic: <topic>,
// partition: <partition>, err: <reason>".
func ListOffsetErrorMessage(topic string, partition int32, reason string) string {
	return "failed to list offset, topic: " + topic + ", partition: " +
		strconv.FormatInt(int64(partition), 10) + ", err: " + reason
}

// FetchErrorMessage returns the message of the ErrorResp that answers a
// failed cmd_kafka_fetch: "failed to fetch message, topic: <topic>,
// partition: <partition>, err: <reason>".
func FetchErrorMessage(topic string, partition int32, reason string) string {
	return "failed to fetch message, topic: " + topic + ", partition: " +
		strconv.FormatInt(int64(partition), 10) + ", err: " + reason
}

// MetadataErrorMessage returns the message of the ErrorResp that answers a
// failed cmd_kafka_metadata: "failed to get metadata, err: <reason>".
func MetadataErrorMessage(reason string) string {
	return "failed to get metadata, err: " + reason
}

// FetchManyErrorMessage returns the message of the ErrorResp that answers a
// cmd_kafka_fetch_many that failed as a whole: "failed to fetch messages,
// err: <reason>" (one partition's failure is in its own entry, with
// FetchErrorMessage).
func FetchManyErrorMessage(reason string) string {
	return "failed to fetch messages, err: " + reason
}

// SubscribeErrorMessage returns the message of the ErrorResp that answers a
// failed cmd_kafka_subscribe: "failed to subscribe, topic: <topic>, err:
// <reason>".
func SubscribeErrorMessage(topic, reason string) string {
	return "failed to subscribe, topic: " + topic + ", err: " + reason
}

// CommitErrorMessage returns the message of the ErrorResp that answers a
// failed cmd_kafka_commit: "failed to commit offset, group: <group>, topic:
// <topic>, partition: <partition>, err: <reason>"; partition is -1 when
// the reason concerns the request as a whole.
func CommitErrorMessage(group, topic string, partition int32, reason string) string {
	return "failed to commit offset, group: " + group + ", topic: " + topic + ", partition: " +
		strconv.FormatInt(int64(partition), 10) + ", err: " + reason
}

// ProduceErrorMessage returns the message of the ErrorResp that answers a
// cmd_kafka_produce that failed as a whole: "failed to produce message,
// topic: <topic>, partition: <partition>, err: <reason>"; partition is -1
// when the records were to be spread by key.
func ProduceErrorMessage(topic string, partition int32, reason string) string {
	return "failed to produce message, topic: " + topic + ", partition: " +
		strconv.FormatInt(int64(partition), 10) + ", err: " + reason
}

// CommittedErrorMessage returns the message of the ErrorResp that answers
// a failed cmd_kafka_committed: "failed to fetch committed offset, group:
// <group>, topic: <topic>, err: <reason>".
func CommittedErrorMessage(group, topic, reason string) string {
	return "failed to fetch committed offset, group: " + group + ", topic: " + topic + ", err: " + reason
}
