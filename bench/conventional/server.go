// Package conventional is the WebSocket-to-Kafka service a team would write
// without kafkaedge: net/http with gorilla/websocket, one goroutine per
// connection serving its requests in order, and franz-go's kgo for metadata,
// leaders, record decoding and producing (one shared producer per route).
//
// It speaks the same protocol as kafkaedge (docs/protocol.md) and exists
// only as the baseline of the benchmark suite; it is written plainly and
// correctly, not tuned down.
package conventional

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// Fetch parameters APISIX sends to Kafka, which this service copies.
const (
	fetchMaxWait  = 100 * time.Millisecond
	fetchMaxBytes = 10 << 20
)

// ErrNoRoutes is returned by New when the configuration has no route.
var ErrNoRoutes = errors.New("conventional: no routes")

// ErrUnknownTopic is wrapped by errors about a topic that does not exist,
// and ErrUnknownPartition about a partition that does not exist in a topic
// that does; the client sees their texts, as with APISIX.
var (
	ErrUnknownTopic     = errors.New("not found topic")
	ErrUnknownPartition = errors.New("not found partition")
)

// Route maps a WebSocket URI to a Kafka cluster.
type Route struct {
	URI     string
	Brokers []string
}

// ParseRoute parses "/uri=host:port,host:port".
func ParseRoute(s string) (Route, error) {
	uri, brokers, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(uri, "/") || brokers == "" {
		return Route{}, fmt.Errorf("parse route %q: want /uri=host:port[,host:port...]", s)
	}
	r := Route{URI: uri}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b == "" {
			return Route{}, fmt.Errorf("parse route %q: empty broker address", s)
		}
		r.Brokers = append(r.Brokers, b)
	}
	return r, nil
}

// Config configures a Server.
type Config struct {
	Routes []Route
	// MaxMessage caps a client message in bytes, default 1 MiB.
	MaxMessage int64
	// RequestTimeout bounds one Kafka round trip, default 30s.
	RequestTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server serves the pub/sub protocol over WebSocket. It is an http.Handler.
type Server struct {
	cfg      Config
	log      *slog.Logger
	routes   map[string]*backend
	upgrader websocket.Upgrader

	ctx    context.Context // canceled by Close: aborts Kafka calls in flight
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	wg     sync.WaitGroup
}

// New creates a Server with one kgo client per route.
func New(cfg Config) (*Server, error) {
	if len(cfg.Routes) == 0 {
		return nil, ErrNoRoutes
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 1 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ctx:    ctx,
		cancel: cancel,
		cfg:    cfg,
		log:    cfg.Logger,
		routes: make(map[string]*backend),
		conns:  make(map[*websocket.Conn]struct{}),
		upgrader: websocket.Upgrader{
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	for _, r := range cfg.Routes {
		if _, dup := s.routes[r.URI]; dup {
			s.closeBackends()
			cancel()
			return nil, fmt.Errorf("route %s: duplicate URI", r.URI)
		}
		b := &backend{decomp: kgo.DefaultDecompressor(), timeout: cfg.RequestTimeout, meta: make(map[string]*topicMeta)}
		s.routes[r.URI] = b
		// The metadata client is also the acks-all producer.
		for acks := range b.producers {
			opts := append([]kgo.Opt{kgo.SeedBrokers(r.Brokers...), kgo.ClientID("conventional")}, producerOpts(pubsub.Acks(acks))...)
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				s.closeBackends()
				cancel()
				return nil, fmt.Errorf("route %s: kafka client: %w", r.URI, err)
			}
			b.producers[acks] = cl
		}
		b.cl = b.producers[pubsub.Acks_ACKS_ALL]
	}
	return s, nil
}

// closeBackends closes every kgo client.
func (s *Server) closeBackends() {
	for _, b := range s.routes {
		for _, cl := range b.producers {
			if cl != nil {
				cl.Close()
			}
		}
	}
}

// Close closes every WebSocket connection, waits for their goroutines and
// closes the Kafka clients. The http.Server in front is closed by the caller.
func (s *Server) Close() error {
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
	s.mu.Lock()
	for c := range s.conns {
		// In parallel: a connection whose client does not read would
		// hold up the others for the whole write deadline.
		go func() {
			_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			c.Close()
		}()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.closeBackends()
	return nil
}

// ServeHTTP upgrades requests on a route's URI and serves the connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, ok := s.routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "websocket upgrade required", http.StatusBadRequest)
		return
	}
	c, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	c.SetReadLimit(s.cfg.MaxMessage)
	s.serve(s.ctx, c, b)
}

// serve reads requests one by one and answers each before reading the next.
func (s *Server) serve(ctx context.Context, c *websocket.Conn, b *backend) {
	var out []byte
	for {
		typ, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		var req pubsub.PubSubReq
		var resp *pubsub.PubSubResp
		if err := proto.Unmarshal(data, &req); err != nil {
			resp = errorResp(0, 0, "wrong command")
		} else {
			resp = b.handle(ctx, &req)
		}
		if resp == nil {
			continue
		}
		out, err = proto.MarshalOptions{}.MarshalAppend(out[:0], resp)
		if err != nil {
			s.log.Error("encode response", "sequence", resp.GetSequence(), "err", err)
			return
		}
		if err := c.WriteMessage(websocket.BinaryMessage, out); err != nil {
			return
		}
		if cap(out) > 16<<20 {
			out = nil // do not pin a huge buffer to an idle connection
		}
	}
}

// errorResp builds an ErrorResp answer.
func errorResp(seq int64, code int32, msg string) *pubsub.PubSubResp {
	return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_ErrorResp{
		ErrorResp: &pubsub.ErrorResp{Code: code, Message: msg}}}
}

// backend is the Kafka side of one route.
type backend struct {
	cl        *kgo.Client                            // metadata, fetches, list offsets; producers[ACKS_ALL]
	producers [pubsub.Acks_ACKS_NONE + 1]*kgo.Client // by acks, shared by every connection of the route
	decomp    kgo.Decompressor
	timeout   time.Duration

	mu   sync.RWMutex
	meta map[string]*topicMeta
}

// handle answers one request; nil means the request is skipped.
func (b *backend) handle(ctx context.Context, req *pubsub.PubSubReq) *pubsub.PubSubResp {
	seq := req.GetSequence()
	switch r := req.GetReq().(type) {
	case nil:
		return nil
	case *pubsub.PubSubReq_CmdPing:
		return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_PongResp{
			PongResp: &pubsub.PongResp{State: r.CmdPing.GetState()}}}
	case *pubsub.PubSubReq_CmdKafkaListOffset:
		cmd := r.CmdKafkaListOffset
		off, err := b.listOffset(ctx, cmd.GetTopic(), cmd.GetPartition(), cmd.GetTimestamp())
		if err != nil {
			return errorResp(seq, codeOf(err), fmt.Sprintf("failed to list offset, topic: %s, partition: %d, err: %s",
				cmd.GetTopic(), cmd.GetPartition(), reason(err)))
		}
		return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaListOffsetResp{
			KafkaListOffsetResp: &pubsub.KafkaListOffsetResp{Offset: off}}}
	case *pubsub.PubSubReq_CmdKafkaFetch:
		cmd := r.CmdKafkaFetch
		recs, err := b.fetch(ctx, cmd.GetTopic(), cmd.GetPartition(), cmd.GetOffset())
		if err != nil {
			return errorResp(seq, codeOf(err), fmt.Sprintf("failed to fetch message, topic: %s, partition: %d, err: %s",
				cmd.GetTopic(), cmd.GetPartition(), reason(err)))
		}
		msgs := make([]pubsub.KafkaMessage, len(recs))
		ptrs := make([]*pubsub.KafkaMessage, len(recs))
		for i, rec := range recs {
			m := &msgs[i]
			m.Offset = rec.Offset
			m.Timestamp = rec.Timestamp.UnixMilli()
			m.Key = rec.Key
			m.Value = rec.Value
			ptrs[i] = m
		}
		return &pubsub.PubSubResp{Sequence: seq, Resp: &pubsub.PubSubResp_KafkaFetchResp{
			KafkaFetchResp: &pubsub.KafkaFetchResp{Messages: ptrs}}}
	case *pubsub.PubSubReq_CmdKafkaProduce:
		return b.produceResp(ctx, seq, r.CmdKafkaProduce)
	default:
		return errorResp(seq, 0, "unknown command")
	}
}

// codeOf returns the Kafka error code in err, 0 if none.
func codeOf(err error) int32 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return int32(ke.Code)
	}
	return 0
}

// reason is the <reason> of an error message: "not found partition", "not
// found topic", the Kafka error name, or the text of a transport error.
func reason(err error) string {
	if errors.Is(err, ErrUnknownPartition) {
		return ErrUnknownPartition.Error()
	}
	if errors.Is(err, ErrUnknownTopic) || errors.Is(err, kerr.UnknownTopicOrPartition) {
		return ErrUnknownTopic.Error()
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}

// leaderError reports whether code means our metadata is stale.
func leaderError(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.LeaderNotAvailable) ||
		errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.UnknownTopicID) ||
		errors.Is(err, kerr.UnknownLeaderEpoch)
}

// partitionInfo is what a request to one partition needs from metadata.
type partitionInfo struct {
	leader  int32
	topicID [16]byte
}

// metadataTTL is how long a topic's leaders are used without asking again
// (kgo's default MetadataMinAge); stale leaders are refreshed at once.
const metadataTTL = 5 * time.Second

// topicMeta is the cached metadata of one topic.
type topicMeta struct {
	id      [16]byte
	leaders map[int32]int32 // partition -> leader, -1 while none
	at      time.Time
}

// lookup returns the leader of topic/partition, from the cache unless it
// is older than metadataTTL or fresh is set.
func (b *backend) lookup(ctx context.Context, topic string, partition int32, fresh bool) (partitionInfo, error) {
	b.mu.RLock()
	tm := b.meta[topic]
	b.mu.RUnlock()
	if tm == nil || fresh || time.Since(tm.at) > metadataTTL {
		var err error
		if tm, err = b.loadTopic(ctx, topic, fresh); err != nil {
			return partitionInfo{}, err
		}
	}
	leader, ok := tm.leaders[partition]
	if !ok {
		return partitionInfo{}, fmt.Errorf("metadata %s/%d: %w", topic, partition, ErrUnknownPartition)
	}
	if leader < 0 {
		return partitionInfo{}, fmt.Errorf("metadata %s/%d: %w", topic, partition, kerr.LeaderNotAvailable)
	}
	return partitionInfo{leader: leader, topicID: tm.id}, nil
}

// loadTopic asks for topic's metadata through kgo and caches it.
func (b *backend) loadTopic(ctx context.Context, topic string, fresh bool) (*topicMeta, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	limit := time.Duration(0) // kgo's MetadataMinAge
	if fresh {
		limit = time.Millisecond
	}
	resp, err := b.cl.RequestCachedMetadata(ctx, req, limit)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", topic, err)
	}
	for _, mt := range resp.Topics {
		if mt.Topic == nil || *mt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				err = ErrUnknownTopic
			}
			return nil, fmt.Errorf("metadata %s: %w", topic, err)
		}
		tm := &topicMeta{id: mt.TopicID, leaders: make(map[int32]int32, len(mt.Partitions)), at: time.Now()}
		for _, mp := range mt.Partitions {
			tm.leaders[mp.Partition] = mp.Leader
		}
		b.mu.Lock()
		b.meta[topic] = tm
		b.mu.Unlock()
		return tm, nil
	}
	return nil, fmt.Errorf("metadata %s: %w", topic, ErrUnknownTopic)
}

// withLeader runs fn against the partition's leader, once more with fresh
// metadata if the first attempt found the metadata stale.
func (b *backend) withLeader(ctx context.Context, topic string, partition int32, fn func(context.Context, partitionInfo) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var err error
	for attempt := range 2 {
		var pi partitionInfo
		pi, err = b.lookup(ctx, topic, partition, attempt > 0)
		if err != nil {
			return err
		}
		if err = fn(ctx, pi); err == nil || !leaderError(err) {
			return err
		}
	}
	return err
}

// listOffset returns the offset of topic/partition at timestamp.
func (b *backend) listOffset(ctx context.Context, topic string, partition int32, timestamp int64) (int64, error) {
	var offset int64
	err := b.withLeader(ctx, topic, partition, func(ctx context.Context, pi partitionInfo) error {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = partition
		rp.CurrentLeaderEpoch = -1
		rp.Timestamp = timestamp
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := b.cl.Broker(int(pi.leader)).Request(ctx, req)
		if err != nil {
			return fmt.Errorf("list offsets %s/%d: %w", topic, partition, err)
		}
		resp := kresp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.Partition != partition {
					continue
				}
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return fmt.Errorf("list offsets %s/%d: %w", topic, partition, err)
				}
				offset = p.Offset
				return nil
			}
		}
		return fmt.Errorf("list offsets %s/%d: partition missing from response: %w", topic, partition, kerr.UnknownServerError)
	})
	return offset, err
}

// fetch returns the records of topic/partition from offset on.
func (b *backend) fetch(ctx context.Context, topic string, partition int32, offset int64) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	err := b.withLeader(ctx, topic, partition, func(ctx context.Context, pi partitionInfo) error {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = int32(fetchMaxWait / time.Millisecond)
		req.MinBytes = 0
		req.MaxBytes = fetchMaxBytes
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rt.TopicID = pi.topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.CurrentLeaderEpoch = -1
		rp.FetchOffset = offset
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = fetchMaxBytes
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := b.cl.Broker(int(pi.leader)).Request(ctx, req)
		if err != nil {
			return fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, err)
		}
		resp := kresp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, err)
		}
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				p := &resp.Topics[i].Partitions[j]
				if p.Partition != partition {
					continue
				}
				fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
					Offset: offset, Topic: topic, Partition: partition,
				}, p, b.decomp, nil)
				if fp.Err != nil {
					return fmt.Errorf("fetch %s/%d@%d: %w", topic, partition, offset, fp.Err)
				}
				recs = fp.Records
				return nil
			}
		}
		return fmt.Errorf("fetch %s/%d@%d: partition missing from response: %w", topic, partition, offset, kerr.UnknownServerError)
	})
	return recs, err
}
