package kafkawire_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkaedge/kafkaedge/kafkawire"
)

// Example lists the offsets of a partition and fetches from it, against an
// in-process fake cluster that kgo writes three records to.
func Example() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, "events"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("events"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = producer.ProduceSync(ctx,
		&kgo.Record{Key: []byte("a"), Value: []byte("first")},
		&kgo.Record{Value: []byte("second")},
		&kgo.Record{Key: []byte("c"), Value: []byte("third")},
	).FirstErr()
	producer.Close()
	if err != nil {
		fmt.Println(err)
		return
	}

	client, err := kafkawire.New(kafkawire.Config{
		Brokers: cluster.ListenAddrs()[:1],
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	first, _ := client.ListOffset(ctx, "events", 0, -2)
	next, _ := client.ListOffset(ctx, "events", 0, -1)
	fmt.Println("offsets", first, "to", next)

	res, err := client.Fetch(ctx, "events", 0, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res.Records {
		fmt.Printf("%d key=%q value=%q\n", r.Offset, r.Key, r.Value)
	}
	res.Release() // the records' bytes are not used after this

	_, err = client.Fetch(ctx, "events", 0, 10)
	var e *kafkawire.Error
	if errors.As(err, &e) {
		fmt.Println(e, "| code:", e.Code)
	}
	_, err = client.Fetch(ctx, "nope", 0, 0)
	if errors.As(err, &e) {
		fmt.Println(e, "| unknown topic:", errors.Is(err, kafkawire.ErrUnknownTopic))
	}
	// Output:
	// offsets 0 to 3
	// 1 key="" value="second"
	// 2 key="c" value="third"
	// fetch events/0@10: OFFSET_OUT_OF_RANGE | code: 1
	// fetch nope/0@0: unknown topic or partition | unknown topic: true
}

// ExampleClient_NewStream tails a partition: the Stream delivers the
// records there are, then each new one as it comes.
func ExampleClient_NewStream() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cluster.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("events"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer producer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		fmt.Println(err)
		return
	}

	client, err := kafkawire.New(kafkawire.Config{Brokers: cluster.ListenAddrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	got := make(chan string, 10)
	stream := client.NewStream(func(r *kafkawire.FetchResult) {
		defer r.Release() // the partition is fetched again once released
		if r.Err != nil {
			got <- r.Err.Error()
			return
		}
		for _, rec := range r.Records {
			got <- fmt.Sprintf("%d %s", rec.Offset, rec.Value)
		}
	})
	defer stream.Close()
	stream.Add("events", 0, 0)
	fmt.Println(<-got)
	if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("second")}).FirstErr(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output:
	// 0 first
	// 1 second
}
