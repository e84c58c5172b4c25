// Package demo is the embedded demo cluster of kafkaedge -embedded:
// franz-go's kfake with three brokers on loopback, a topic "demo" that a kgo
// producer writes a message to every half second, and the route /kafka to
// it. It is linked only into the demo build of kafkaedge (go build -tags
// demo, make run), never into the production binary.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/apisix"
)

const (
	// Topic is the topic the embedded cluster keeps writing to.
	Topic = "demo"
	// Partitions is its partition count.
	Partitions = 3
	// URI is the route the embedded demo installs.
	URI = "/kafka"
	// RouteID is that route's id in the admin API.
	RouteID = "embedded"
	// Interval is the time between two demo messages.
	Interval = 500 * time.Millisecond
	// Prime is how many messages exist before the first client comes.
	Prime = 10
)

// Cluster is the -embedded cluster: franz-go's kfake with three brokers on
// loopback and a producer that writes one message to topic "demo" every
// Interval.
type Cluster struct {
	cluster *kfake.Cluster
	client  *kgo.Client
	cancel  context.CancelFunc
	done    chan struct{}
	log     *slog.Logger
	n       int  // next message number; only the producing goroutine touches it
	started bool // run was started
}

// demoValue is the JSON value of each demo message.
type demoValue struct {
	N  int    `json:"n"`
	At string `json:"at"`
}

// Start starts the cluster, writes Prime messages and starts the producer,
// which logs its failures to log.
func Start(log *slog.Logger) (*Cluster, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(Partitions, Topic))
	if err != nil {
		return nil, fmt.Errorf("embedded: start kfake: %w", err)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.DefaultProduceTopic(Topic),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("embedded: producer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Cluster{cluster: c, client: cl, cancel: cancel, done: make(chan struct{}), log: log}
	for range Prime {
		if err := d.produce(ctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("embedded: first messages: %w", err)
		}
	}
	d.started = true
	go d.run(ctx)
	return d, nil
}

// produce writes the next demo message and waits for it to be acknowledged.
func (d *Cluster) produce(ctx context.Context) error {
	v, err := json.Marshal(demoValue{N: d.n, At: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return fmt.Errorf("encode demo message: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rec := &kgo.Record{Key: []byte("demo-" + strconv.Itoa(d.n)), Value: v}
	if err := d.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("produce demo message %d: %w", d.n, err)
	}
	d.n++
	return nil
}

func (d *Cluster) run(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.produce(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("embedded demo producer", "err", err)
			}
		}
	}
}

// Route is the /kafka route to the embedded cluster.
func (d *Cluster) Route() (*apisix.RouteSpec, error) {
	nodes := make(map[string]any)
	for _, a := range d.cluster.ListenAddrs() {
		nodes[a] = json.Number("1")
	}
	r, err := apisix.FromValue(map[string]any{
		"id":   RouteID,
		"uri":  URI,
		"name": "embedded demo cluster",
		"upstream": map[string]any{
			"nodes": nodes, "type": "none", "scheme": "kafka",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: demo route: %w", err)
	}
	return r, nil
}

// Close stops the producer and the cluster.
func (d *Cluster) Close() {
	d.cancel()
	if d.started {
		<-d.done
	}
	d.client.Close()
	d.cluster.Close()
}

// Banner tells a newcomer where the demo is and how to try it, given the
// address the WebSocket server listens on.
func (d *Cluster) Banner(w io.Writer, listen string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "127.0.0.1", "9080"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	ws := "ws://" + net.JoinHostPort(host, port) + URI
	fmt.Fprintf(w, "\n"+
		"  kafkaedge embedded demo\n"+
		"  Kafka:     3 in-process brokers (%s), topic %q with %d partitions, a new message every %s\n"+
		"  WebSocket: %s\n"+
		"  Try it:    send a binary PubSubReq{sequence:1, cmd_kafka_fetch:{topic:\"demo\", partition:0, offset:0}} to %s (README: client examples)\n\n",
		strings.Join(d.cluster.ListenAddrs(), ", "), Topic, Partitions, Interval, ws, ws)
}
