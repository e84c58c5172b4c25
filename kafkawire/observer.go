package kafkawire

import (
	"errors"
	"sync"
	"time"

	"github.com/kafkaedge/kafkaedge/kafkawire/wire"
)

// Observer receives a Client's events, for metrics. Its methods are called
// from the Client's goroutines, many at once, so they must be safe for
// concurrent use, quick, and must not call back into the Client. Config.Observer
// nil means no events; the Observer is not part of Config.Key.
//
// The broker argument is a broker's "host:port" as the cluster advertises it
// (or as the bootstrap list names it), so its values are bounded by the
// cluster, never by what WebSocket clients send.
type Observer interface {
	// KafkaRequest reports one request/response round trip with a broker
	// that ended: api is the API name ("Fetch", "ListOffsets", "Metadata",
	// "ApiVersions", "SaslHandshake", "SaslAuthenticate"), outcome the Kafka
	// error name of the first error code in the response ("NONE" when
	// there is none), or "timeout", "network" or "closed" when no response
	// was decoded.
	KafkaRequest(api, broker, outcome string, d time.Duration)
	// BrokerConn reports a change of one connection to a broker.
	BrokerConn(broker string, ev ConnEvent)
	// MetadataRefresh reports one refresh of the cached cluster metadata
	// (on demand or periodic; Ready's probes are not refreshes); err is
	// nil when a broker answered.
	MetadataRefresh(err error)
	// Decompressed reports one decompressed record batch, as
	// record.Observer does.
	Decompressed(codec string, in, out int, failed bool)
	// BrokerUsed reports that the Client started using a broker address
	// (its first connection pool for it), BrokerUnused that it stopped:
	// on Close (before Close returns), or when the cluster's metadata
	// no longer lists the broker. Every KafkaRequest and BrokerConn of the
	// Client naming the address comes between the two, so the address's
	// series can go once every Client that used it reported it unused
	// (several Clients may use one address at once). An address may be
	// used again later, after a new BrokerUsed.
	BrokerUsed(broker string)
	BrokerUnused(broker string)
	// ProduceBatch reports one record batch of the producer that settled:
	// its records and encoded bytes, how long its first record waited
	// before the batch was first sent (linger and in-flight limit), how
	// many times it was sent again, and the Kafka error name it failed with
	// ("NONE" when written; "timeout", "network" or "closed" as for
	// KafkaRequest).
	ProduceBatch(records, bytes int, waited time.Duration, retries int, outcome string)
}

// brokerUse is a Client's use of one broker address, as its Observer sees
// it: BrokerUsed when it starts, then the events naming the address, each
// reported between enter and exit, then BrokerUnused once the use is
// closed and no report is in progress; a report that would come later is
// not made. A dial is one report from its start to its end, and so is a
// round trip, so that their events balance. The nil *brokerUse (no
// Observer) reports nothing.
type brokerUse struct {
	obs  Observer
	addr string
	wg   *sync.WaitGroup // done once BrokerUnused is reported

	mu       sync.Mutex
	active   int  // reports in progress
	closed   bool // the Client stopped using the address
	released bool // BrokerUnused reported
}

// newBrokerUse reports addr used; wg is done once it is reported unused.
func newBrokerUse(obs Observer, addr string, wg *sync.WaitGroup) *brokerUse {
	wg.Add(1)
	obs.BrokerUsed(addr)
	return &brokerUse{obs: obs, addr: addr, wg: wg}
}

// enter starts a report, and reports false (make none) once the use is
// released or without an Observer.
func (u *brokerUse) enter() bool {
	if u == nil {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.released {
		return false
	}
	u.active++
	return true
}

// exit ends a report that enter started.
func (u *brokerUse) exit() {
	u.mu.Lock()
	u.active--
	u.releaseLocked()
}

// close ends the use: BrokerUnused follows once no report is in progress.
func (u *brokerUse) close() {
	if u == nil {
		return
	}
	u.mu.Lock()
	u.closed = true
	u.releaseLocked()
}

// releaseLocked reports the use released if it is closed and no report is
// in progress; it unlocks u.mu.
func (u *brokerUse) releaseLocked() {
	last := u.closed && u.active == 0 && !u.released
	u.released = u.released || last
	u.mu.Unlock()
	if last {
		u.obs.BrokerUnused(u.addr)
		u.wg.Done()
	}
}

// conn reports a change of one connection to the address.
func (u *brokerUse) conn(ev ConnEvent) {
	if u.enter() {
		u.obs.BrokerConn(u.addr, ev)
		u.exit()
	}
}

// ConnEvent is a change of one broker connection's state.
type ConnEvent uint8

// Broker connection events. A connection is dialing from ConnDialing until
// ConnUp or ConnDialFailed, and up from ConnUp until ConnClosed.
const (
	ConnDialing    ConnEvent = iota + 1 // a dial (TCP, TLS, ApiVersions, SASL) started
	ConnUp                              // the dial succeeded; the connection takes requests
	ConnDialFailed                      // the dial failed
	ConnClosed                          // a connection that was up died or was closed
)

// String returns the event's name: "dialing", "up", "dial_failed" or "closed".
func (e ConnEvent) String() string {
	switch e {
	case ConnDialing:
		return "dialing"
	case ConnUp:
		return "up"
	case ConnDialFailed:
		return "dial_failed"
	case ConnClosed:
		return "closed"
	}
	return "unknown"
}

// Outcomes of KafkaRequest that are not Kafka error names.
const (
	OutcomeTimeout = "timeout" // the deadline passed before the response
	OutcomeNetwork = "network" // the connection failed or the response did not decode
	OutcomeClosed  = "closed"  // the Client was closed under the call
)

// requestOutcome is the outcome label of a round trip that ended with err,
// or with the first error code of resp.
func requestOutcome(resp response, err error) string {
	switch {
	case err == nil:
		return wire.ErrorName(responseCode(resp))
	case codeOf(err) != 0:
		return wire.ErrorName(codeOf(err))
	case errors.Is(err, ErrClosed):
		return OutcomeClosed
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	}
	return OutcomeNetwork
}

// responseCode returns the first non-zero error code of a decoded response,
// top level first, then per topic or partition; 0 if there is none.
func responseCode(resp response) int16 {
	switch r := resp.(type) {
	case *wire.FetchResponse:
		if r.ErrorCode != 0 {
			return r.ErrorCode
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
	case *wire.ListOffsetsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
	case *wire.MetadataResponse:
		for _, t := range r.Topics {
			if t.ErrorCode != 0 {
				return t.ErrorCode
			}
		}
	case *wire.ApiVersionsResponse:
		return r.ErrorCode
	case *wire.SaslHandshakeResponse:
		return r.ErrorCode
	case *wire.SaslAuthenticateResponse:
		return r.ErrorCode
	case *wire.FindCoordinatorResponse:
		for _, c := range r.Coordinators {
			if c.ErrorCode != 0 {
				return c.ErrorCode
			}
		}
	case *wire.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
	case *wire.InitProducerIDResponse:
		return r.ErrorCode
	case *wire.OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
	case *wire.OffsetFetchResponse:
		for _, g := range r.Groups {
			if g.ErrorCode != 0 {
				return g.ErrorCode
			}
			for _, t := range g.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 {
						return p.ErrorCode
					}
				}
			}
		}
	}
	return 0
}
