package reactor

import (
	"time"

	"github.com/gobwas/ws"
)

// Observer receives a Server's events, for metrics. Most methods are called
// on the event loops, the rest on the goroutines that run Kafka calls, many
// at once: an implementation must be safe for concurrent use and cheap
// (atomic counters; no blocking, no lock held for long, no allocation per
// event where it can be avoided). Config.Observer nil means no events.
//
// The route argument is a route's URI (bounded by the configuration), or ""
// for a request that matched no route; topic is a topic name as a client
// sent it and is unbounded.
type Observer interface {
	// Upgrade reports an HTTP request on the WebSocket listener that was
	// answered: status 101 for an upgrade (the connection then counts as
	// open on route until ConnClosed), else the error status (400, 404,
	// 431, ...).
	Upgrade(route string, status int)
	// ConnClosed reports the end of a connection that had upgraded.
	ConnClosed(route string, info CloseInfo)
	// RouteRemoved reports that route is no longer in the route table
	// and that every connection that upgraded on it has been reported
	// closed: no event names route after it unless the route is added
	// again (then Upgrade names it first). The route's label values can go.
	RouteRemoved(route string)
	// ConnRejected reports a TCP connection refused before its upgrade.
	ConnRejected(reason ConnReject)
	// Request reports a client request that was answered, ok unless the
	// answer is an ErrorResp, d after its frame was read.
	Request(cmd Command, ok bool, d time.Duration)
	// Delivered reports bytes handed to a client's socket (frames of
	// answers) and the Kafka messages among them; topic is set for fetch
	// answers.
	Delivered(route, topic string, bytes, messages int)
	// FetchCoalesced reports a fetch that joined an identical fetch in
	// flight instead of making its own Kafka call.
	FetchCoalesced()
	// ListOffsetCoalesced reports a ListOffset that joined an identical
	// ListOffset in flight instead of making its own Kafka call.
	ListOffsetCoalesced()
	// Backpressure reports a flow-control event.
	Backpressure(ev BackpressureEvent)
	// FrameRejected reports a client frame or message that was not served.
	FrameRejected(reason FrameReason)

	// Subscriptions reports subscriptions that started (+1) or ended (-1).
	Subscriptions(delta int)
	// Lagging reports subscribed partitions that fell behind their tail
	// (+1: paused for a full outbound queue, or reading on their own
	// behind the tail cache) or caught up or ended (-1).
	Lagging(delta int)
	// Tails reports partitions that subscriptions started (+1) or
	// stopped (-1) reading.
	Tails(delta int)
	// TailRead reports how a subscriber behind its tail's end was served.
	TailRead(kind TailReadKind)
	// Pushed reports a push of a subscription handed to a client's
	// socket: its bytes and messages (also in Delivered).
	Pushed(route string, bytes, messages int)
	// GroupMembers reports group subscriptions (consumer group members)
	// that started (+1) or ended (-1).
	GroupMembers(delta int)
	// GroupRebalance reports a change of a group subscription's
	// assignment.
	GroupRebalance()
}

// TailReadKind is how a subscriber behind the end of its tail was served.
type TailReadKind uint8

// Kinds of tail reads.
const (
	TailCacheHit      TailReadKind = iota // from the tail cache
	TailCacheMiss                         // by a Kafka fetch of its own
	TailReadCoalesced                     // by joining an identical fetch of another subscriber
	numTailReads
)

// NumTailReads is the number of TailReadKind values.
const NumTailReads = int(numTailReads)

// String returns the kind's metric label.
func (k TailReadKind) String() string {
	switch k {
	case TailCacheHit:
		return "cache_hit"
	case TailCacheMiss:
		return "cache_miss"
	case TailReadCoalesced:
		return "coalesced"
	}
	return "other"
}

// CloseInfo describes a WebSocket connection that ended.
type CloseInfo struct {
	Duration time.Duration // since the TCP connection was accepted
	Requests int64         // requests read (all commands)
	BytesOut int64         // bytes of frames handed to the socket after the upgrade
	Messages int64         // Kafka messages among them
	Code     ws.StatusCode // close code sent or received; 1006 when the peer vanished without one
	Reason   string        // why: the reason sent, "client closed", or the network error
}

// Command is the command of a client request.
type Command uint8

// Commands, as Request reports them.
const (
	CmdPing        Command = iota // CmdPing
	CmdListOffset                 // CmdKafkaListOffset
	CmdFetch                      // CmdKafkaFetch
	CmdMetadata                   // CmdKafkaMetadata
	CmdFetchMany                  // CmdKafkaFetchMany
	CmdSubscribe                  // CmdKafkaSubscribe (its first answer)
	CmdUnsubscribe                // CmdKafkaUnsubscribe
	CmdCommit                     // CmdKafkaCommit
	CmdCommitted                  // CmdKafkaCommitted
	CmdProduce                    // CmdKafkaProduce
	CmdUnknown                    // CmdEmpty or a command this server does not know
	CmdInvalid                    // a message that is not a PubSubReq
	numCommands
)

// NumCommands is the number of Command values, for arrays indexed by them.
const NumCommands = int(numCommands)

// String returns the command's metric label.
func (c Command) String() string {
	switch c {
	case CmdPing:
		return "ping"
	case CmdListOffset:
		return "list_offset"
	case CmdFetch:
		return "fetch"
	case CmdMetadata:
		return "metadata"
	case CmdFetchMany:
		return "fetch_many"
	case CmdSubscribe:
		return "subscribe"
	case CmdUnsubscribe:
		return "unsubscribe"
	case CmdCommit:
		return "commit"
	case CmdCommitted:
		return "committed"
	case CmdProduce:
		return "produce"
	case CmdUnknown:
		return "unknown"
	case CmdInvalid:
		return "invalid"
	}
	return "other"
}

// ConnReject is why a TCP connection was refused.
type ConnReject uint8

// Reasons for refusing a connection.
const (
	RejectMaxConns ConnReject = iota // MaxConns connections are open
	RejectDraining                   // Shutdown has begun
	numConnRejects
)

// NumConnRejects is the number of ConnReject values.
const NumConnRejects = int(numConnRejects)

// String returns the reason's metric label.
func (r ConnReject) String() string {
	switch r {
	case RejectMaxConns:
		return "max_conns"
	case RejectDraining:
		return "draining"
	}
	return "other"
}

// BackpressureEvent is a flow-control event of one connection.
type BackpressureEvent uint8

// Flow-control events.
const (
	// BackpressurePaused: the bytes queued to the client passed MaxOutbound;
	// its input is no longer read.
	BackpressurePaused BackpressureEvent = iota
	// BackpressureResumed: a paused client drained its queue.
	BackpressureResumed
	// BackpressureInflightCap: reading stopped at MaxInflight requests in
	// flight on the connection.
	BackpressureInflightCap
	// BackpressureSlotWait: a request waits for a node-wide slot
	// (MaxInflightTotal).
	BackpressureSlotWait
	// BackpressureClusterSlotWait: a request waits for a slot of its
	// route's cluster (MaxInflightCluster).
	BackpressureClusterSlotWait
	// BackpressureMemoryWait: a fetch or a produce waits for the node's memory budget
	// (MemoryBudget).
	BackpressureMemoryWait
	// BackpressureMemoryClosed: a client that held memory without
	// reading was closed for clients waiting for the memory budget.
	BackpressureMemoryClosed
	// BackpressureSlowClosed: a client stayed past MaxOutbound for
	// SlowTimeout and was closed.
	BackpressureSlowClosed
	// BackpressureFloodClosed: a paused client kept sending and was closed.
	BackpressureFloodClosed
	// BackpressurePushPaused: a subscribed partition was paused: its
	// connection holds more than MaxOutbound.
	BackpressurePushPaused
	// BackpressurePushResumed: a connection's paused partitions went on.
	BackpressurePushResumed
	numBackpressure
)

// NumBackpressureEvents is the number of BackpressureEvent values.
const NumBackpressureEvents = int(numBackpressure)

// String returns the event's metric label.
func (e BackpressureEvent) String() string {
	switch e {
	case BackpressurePaused:
		return "paused"
	case BackpressureResumed:
		return "resumed"
	case BackpressureInflightCap:
		return "inflight_cap"
	case BackpressureSlotWait:
		return "slot_wait"
	case BackpressureClusterSlotWait:
		return "cluster_slot_wait"
	case BackpressureMemoryWait:
		return "memory_wait"
	case BackpressureMemoryClosed:
		return "memory_closed"
	case BackpressureSlowClosed:
		return "slow_closed"
	case BackpressureFloodClosed:
		return "flood_closed"
	case BackpressurePushPaused:
		return "push_paused"
	case BackpressurePushResumed:
		return "push_resumed"
	}
	return "other"
}

// FrameReason is why a client frame or message was not served.
type FrameReason uint8

// Reasons for rejecting frames.
const (
	FrameProtocolError  FrameReason = iota // a frame violating RFC 6455: closed with 1002
	FrameTooBig                            // a message over MaxMessage: closed with 1009
	FrameInvalidPayload                    // e.g. a bad close payload: closed with 1007
	FrameUndecodable                       // a binary message that is not a PubSubReq ("wrong command")
	FrameNoCommand                         // a PubSubReq without a command: skipped
	FrameText                              // a text frame: skipped
	numFrameReasons
)

// NumFrameReasons is the number of FrameReason values.
const NumFrameReasons = int(numFrameReasons)

// String returns the reason's metric label.
func (r FrameReason) String() string {
	switch r {
	case FrameProtocolError:
		return "protocol_error"
	case FrameTooBig:
		return "too_big"
	case FrameInvalidPayload:
		return "invalid_payload"
	case FrameUndecodable:
		return "undecodable"
	case FrameNoCommand:
		return "no_command"
	case FrameText:
		return "text"
	}
	return "other"
}

// frameReason maps a close code of the frame decoder to its FrameReason.
func frameReason(code ws.StatusCode) FrameReason {
	switch code {
	case ws.StatusMessageTooBig:
		return FrameTooBig
	case ws.StatusInvalidFramePayloadData:
		return FrameInvalidPayload
	}
	return FrameProtocolError
}

// NopObserver ignores every event: the Observer of a Config without one. An
// Observer that embeds it needs only the methods of the events it wants.
type NopObserver struct{}

// Upgrade implements Observer.
func (NopObserver) Upgrade(string, int) {}

// ConnClosed implements Observer.
func (NopObserver) ConnClosed(string, CloseInfo) {}

// RouteRemoved implements Observer.
func (NopObserver) RouteRemoved(string) {}

// ConnRejected implements Observer.
func (NopObserver) ConnRejected(ConnReject) {}

// Request implements Observer.
func (NopObserver) Request(Command, bool, time.Duration) {}

// Delivered implements Observer.
func (NopObserver) Delivered(string, string, int, int) {}

// FetchCoalesced implements Observer.
func (NopObserver) FetchCoalesced() {}

// ListOffsetCoalesced implements Observer.
func (NopObserver) ListOffsetCoalesced() {}

// Backpressure implements Observer.
func (NopObserver) Backpressure(BackpressureEvent) {}

// FrameRejected implements Observer.
func (NopObserver) FrameRejected(FrameReason) {}

// Subscriptions implements Observer.
func (NopObserver) Subscriptions(int) {}
func (NopObserver) GroupMembers(int)  {}
func (NopObserver) GroupRebalance()   {}

// Lagging implements Observer.
func (NopObserver) Lagging(int) {}

// Tails implements Observer.
func (NopObserver) Tails(int) {}

// TailRead implements Observer.
func (NopObserver) TailRead(TailReadKind) {}

// Pushed implements Observer.
func (NopObserver) Pushed(string, int, int) {}
