package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/kafkaedge/kafkaedge/internal/wsclient"
	"github.com/kafkaedge/kafkaedge/proto/pubsub"
)

// The produce scenario (issue 14): WebSocket clients write single-record
// requests, each keyed by its client (a device id), to a 4-partition
// topic, and wait for each answer before sending the next.
//   - produce-closed: -produce-clients clients, each as fast as answered;
//   - produce-paced: -produce-paced-clients clients, each at
//     -produce-paced-rate requests per second (phases spread at random).
//
// A request counts once its record is acknowledged (acks all); its
// latency is from the send to the answer. The brokers' Produce requests
// (kfake's counter, or JMX) over the client requests show how many
// records the server gathers into one broker request.
const (
	scProduce       = "produce"
	scProduceClosed = "produce-closed"
	scProducePaced  = "produce-paced"
	produceParts    = 4
)

// produce runs both produce scenarios on every WebSocket system.
func (b *bench) produce(ctx context.Context) error {
	topic := b.topic("produce")
	if err := b.cl.createTopic(ctx, topic, produceParts); err != nil {
		return err
	}
	if b.topics == nil {
		b.topics = make(map[string][]int64)
	}
	b.topics[topic] = make([]int64, produceParts) // empty, for warm-up's partition count
	b.each(ctx, scProduceClosed, b.cfg.produceClients, topic, nil, func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
		return b.produceLoad(ctx, t, m, l, topic, b.cfg.produceClients, 0)
	})
	b.each(ctx, scProducePaced, b.cfg.producePaced, topic, nil, func(ctx context.Context, t *target, m *meter, l *load) (map[string]float64, error) {
		return b.produceLoad(ctx, t, m, l, topic, b.cfg.producePaced, b.cfg.producePacedRate)
	})
	return nil
}

// produceLoad: n clients produce one record per request, back to back
// (rate 0) or each at rate requests per second.
func (b *bench) produceLoad(ctx context.Context, t *target, m *meter, l *load, topic string, n, rate int) (map[string]float64, error) {
	conns, err := dialMany(ctx, t.url, n, 32, wsclient.Options{}, nil)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	value := make([]byte, b.cfg.valueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	// Warm the produce path (producer id, leaders, batches) up on every
	// connection before measuring.
	var warm firstError
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if _, err := c.Produce(produceCmd(topic, i, value)); err != nil {
				warm.set(fmt.Errorf("warm-up produce on connection %d: %w", i, err))
			}
		})
	}
	wg.Wait()
	if err := warm.get(); err != nil {
		return nil, err
	}
	m.begin()
	start := time.Now()
	until := start.Add(b.cfg.duration)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(rate)))
	for i, c := range conns {
		var phase time.Duration
		if rate > 0 {
			phase = time.Duration(rng.Int64N(int64(time.Second / time.Duration(rate))))
		}
		wg.Go(func() {
			rec := l.recorder()
			defer rec.flush()
			_ = c.SetDeadline(until.Add(30 * time.Second))
			cmd := produceCmd(topic, i, value)
			for k := 0; k < maxRequests && ctx.Err() == nil; k++ {
				if rate > 0 {
					next := start.Add(phase + time.Duration(k)*time.Second/time.Duration(rate))
					if !next.Before(until) || !sleepCtx(ctx, time.Until(next)) {
						return
					}
				} else if !time.Now().Before(until) {
					return
				}
				t0 := time.Now()
				res, err := c.Produce(cmd)
				if err == nil && res[0].GetError() != "" {
					err = fmt.Errorf("record refused: %s (code %d)", res[0].GetError(), res[0].GetErrorCode())
				}
				if err != nil {
					l.fail(err)
					if _, ok := err.(*wsclient.ServerError); !ok {
						return // the connection is gone
					}
					continue
				}
				rec.add(time.Since(t0), 1, len(value))
			}
		})
	}
	wg.Wait()
	m.stop()
	extra := map[string]float64{}
	if rate > 0 {
		extra["offered_per_sec"] = float64(n * rate)
	}
	if m.counts.produces >= 0 {
		if reqs := l.reqs.Load(); reqs > 0 {
			extra["broker_produces_per_request"] = float64(m.counts.produces) / float64(reqs)
		}
	}
	return extra, nil
}

// produceCmd is client i's request: one record keyed by the client.
func produceCmd(topic string, i int, value []byte) *pubsub.CmdKafkaProduce {
	return &pubsub.CmdKafkaProduce{Topic: topic, Records: []*pubsub.KafkaRecord{
		{Key: []byte("device-" + strconv.Itoa(i)), Value: value}}}
}
