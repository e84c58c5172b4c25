package record

import "encoding/binary"

// Scan walks the complete batches (or legacy message set entries) at the
// start of src, reading only their fixed headers, up to and including the
// first whose last offset is at or past upTo. It returns the offset after
// the last batch walked (-1 if none was) and the bytes walked. It stops at
// the first entry that is truncated or not a batch Append could decode.
//
// A caller uses it to continue past batches that Append returned nothing
// from (control batches, aborted transactions), or to learn how many bytes
// of src the records up to an offset took.
func Scan(src []byte, upTo int64) (next int64, n int) {
	next = -1
	for len(src)-n > magicAt {
		b := src[n:]
		base := int64(binary.BigEndian.Uint64(b))
		size := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if size < minV0Size || lengthEnd+size > int64(len(b)) {
			break
		}
		switch b[magicAt] {
		case 2:
			if size < minV2Size {
				return next, n
			}
			next = base + int64(int32(binary.BigEndian.Uint32(b[lastDeltaAt:]))) + 1
		case 0, 1:
			next = base + 1 // a legacy entry's offset is its last one
		default:
			return next, n
		}
		n += int(lengthEnd + size)
		if next > upTo {
			break
		}
	}
	return next, n
}
