package record_test

import (
	"errors"
	"fmt"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// Records for one partition gathered into batches under a size cap: a
// record too large for any batch is refused; one that does not fit sends
// the batch and opens the next. (Records this short do not shrink with
// lz4, so the batches carry them uncompressed.)
func ExampleBuilder() {
	b := record.Builder{MaxBytes: 130}
	producer := record.Producer{ID: 7, Epoch: 0, Sequence: 0} // from InitProducerID
	send := func() {
		batch, err := b.AppendTo(nil, producer, record.CodecLz4)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("batch of %d records, sequence %d, %d bytes\n", b.Len(), producer.Sequence, len(batch))
		producer.Sequence += int32(b.Len())
		b.Reset()
	}
	values := []string{"a", "bb", "ccc", "dddd", string(make([]byte, 200)), "eeeee"}
	for i, v := range values {
		r := record.Record{Timestamp: 1_700_000_000_000 + int64(i), Key: []byte("user-1"), Value: []byte(v)}
		err := b.Add(r)
		if err == record.ErrBatchFull {
			send()
			err = b.Add(r)
		}
		if errors.Is(err, record.ErrRecordTooLarge) {
			fmt.Printf("record %d refused: %v\n", i, err)
			continue
		}
	}
	send()
	// Output:
	// record 4 refused: add record: record too large: a batch of it alone takes 276 bytes, over the 130-byte cap
	// batch of 4 records, sequence 0, 123 bytes
	// batch of 1 records, sequence 4, 79 bytes
}
