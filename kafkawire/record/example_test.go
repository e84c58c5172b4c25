package record_test

import (
	"encoding/hex"
	"fmt"

	"github.com/kafkaedge/kafkaedge/kafkawire/record"
)

// The Records bytes of a fetched partition: one uncompressed record batch
// holding offsets 41 and 42.
const fetched = "0000000000000029000000590000000002a41743fb0000000000010000018bcfe56800" +
	"000000000000000000000000000000000000ffffffff00000002220000000c757365722d" +
	"310a68656c6c6f002a000a02010a776f726c64020a747261636506616263"

func ExampleDecoder_Append() {
	src, _ := hex.DecodeString(fetched)
	var d record.Decoder // zero value: 64 MiB cap per batch
	// Fetch asked for offset 42: the batch starts at 41, so it is trimmed.
	recs, err := d.Append(nil, src, 42, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		key := "null"
		if r.Key != nil {
			key = string(r.Key)
		}
		fmt.Printf("offset %d, time %d, key %s, value %s, header %s=%s\n",
			r.Offset, r.Timestamp, key, r.Value, r.Headers[0].Key, r.Headers[0].Value)
	}
	// Output:
	// offset 42, time 1700000000005, key null, value world, header trace=abc
}
