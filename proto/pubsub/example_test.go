package pubsub_test

import (
	"fmt"

	"github.com/kafkaedge/kafkaedge/proto/pubsub"
	"google.golang.org/protobuf/proto"
)

// A fetch response is encoded once as a KafkaFetchResp body, then prefixed
// with a per-client header holding that client's sequence.
func ExampleAppendRespHeader() {
	var body []byte
	body = pubsub.AppendKafkaMessage(body, 41, 1700000000000, []byte("k"), []byte("hello"))
	body = pubsub.AppendKafkaMessage(body, 42, 1700000000001, nil, []byte("world"))

	for _, seq := range []int64{7, -3} {
		frame := pubsub.AppendRespHeader(nil, seq, pubsub.FieldKafkaFetchResp, len(body))
		frame = append(frame, body...)

		var resp pubsub.PubSubResp
		if err := proto.Unmarshal(frame, &resp); err != nil {
			fmt.Println(err)
			return
		}
		for _, m := range resp.GetKafkaFetchResp().GetMessages() {
			fmt.Println(resp.GetSequence(), m.GetOffset(), string(m.GetKey()), string(m.GetValue()))
		}
	}
	// Output:
	// 7 41 k hello
	// 7 42  world
	// -3 41 k hello
	// -3 42  world
}
