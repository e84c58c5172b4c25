package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// demoTopic is the topic the embedded cluster keeps writing to.
	demoTopic = "demo"
	// demoPartitions is its partition count.
	demoPartitions = 3
	// demoURI is the route the embedded demo installs.
	demoURI = "/kafka"
	// demoRouteID is that route's id in the admin API.
	demoRouteID = "embedded"
	// demoInterval is the time between two demo messages.
	demoInterval = 500 * time.Millisecond
	// demoPrime is how many messages exist before the first client comes.
	demoPrime = 10
)

// demo is the -embedded cluster: franz-go's kfake with three brokers on
// loopback and a producer that writes one message to topic "demo" every
// demoInterval.
type demo struct {
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

// startDemo starts the cluster, writes a few messages and starts the producer.
func startDemo(log *slog.Logger) (*demo, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(demoPartitions, demoTopic))
	if err != nil {
		return nil, fmt.Errorf("embedded: start kfake: %w", err)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.DefaultProduceTopic(demoTopic),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("embedded: producer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &demo{cluster: c, client: cl, cancel: cancel, done: make(chan struct{}), log: log}
	for range demoPrime {
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
func (d *demo) produce(ctx context.Context) error {
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

func (d *demo) run(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(demoInterval)
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

// route is the /kafka route to the embedded cluster.
func (d *demo) route() (*RouteSpec, error) {
	nodes := make(map[string]any)
	for _, a := range d.cluster.ListenAddrs() {
		nodes[a] = json.Number("1")
	}
	r, err := routeFromValue(map[string]any{
		"id":   demoRouteID,
		"uri":  demoURI,
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
func (d *demo) Close() {
	d.cancel()
	if d.started {
		<-d.done
	}
	d.client.Close()
	d.cluster.Close()
}
