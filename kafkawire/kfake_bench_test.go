package kafkawire_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/kafkawire"
)

// BenchmarkFetchKfake measures one uncompressed Fetch of a partition holding
// 4,000 records of 256 bytes (about 1 MiB), through the public API.
func BenchmarkFetchKfake(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("f"),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	val := make([]byte, 256)
	var recs []*kgo.Record
	for range 4000 {
		recs = append(recs, &kgo.Record{Value: val, Partition: 0})
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	cl, err := kafkawire.New(kafkawire.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	b.ReportAllocs()
	b.SetBytes(4000 * 256)
	for b.Loop() {
		res, err := cl.Fetch(ctx, "f", 0, 0)
		if err != nil || len(res.Records) == 0 {
			b.Fatalf("%v %v", res, err)
		}
		res.Release()
	}
}
