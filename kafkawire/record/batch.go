package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"unsafe"
)

// Layout of a magic 2 record batch header.
const (
	crcAt        = 17 // crc uint32, over everything from attributes to the end
	attributesAt = 21 // int16
	lastDeltaAt  = 23 // lastOffsetDelta int32
	baseTimeAt   = 27 // baseTimestamp int64
	maxTimeAt    = 35 // maxTimestamp int64
	producerIDAt = 43 // int64; producer epoch int16 and base sequence int32 follow
	countAt      = 57 // record count int32

	// BatchHeaderSize is the size of a magic 2 record batch before its
	// records, from the base offset to the record count: the batch of one
	// record r is BatchHeaderSize + RecordSize(r) bytes uncompressed.
	BatchHeaderSize = 61
)

// Batch attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// minRecordSize is the smallest encoded record: length, attributes,
// timestampDelta, offsetDelta, key length, value length and header count,
// one byte each.
const minRecordSize = 7

// recordSize is the memory of one decoded Record. The limit on a batch
// applies to its Records too, so that a batch of tiny records (7 bytes on
// the wire, 88 decoded) cannot multiply the decompressed cap.
const recordSize = int(unsafe.Sizeof(Record{}))

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendBatch decodes one whole magic 2 record batch b (from its base offset
// to its end; the length field is already checked against len(b)).
func (st *state) appendBatch(dst []Record, b []byte) ([]Record, error) {
	if want, got := binary.BigEndian.Uint32(b[crcAt:]), crc32.Checksum(b[attributesAt:], castagnoli); want != got {
		return dst, corrupt("crc32c %08x, computed %08x", want, got)
	}
	base := int64(binary.BigEndian.Uint64(b))
	attrs := binary.BigEndian.Uint16(b[attributesAt:])
	lastOffset := base + int64(int32(binary.BigEndian.Uint32(b[lastDeltaAt:])))
	producerID := int64(binary.BigEndian.Uint64(b[producerIDAt:]))
	count := int64(int32(binary.BigEndian.Uint32(b[countAt:])))
	codec := int(attrs & attrCodecMask)
	raw := b[BatchHeaderSize:]

	if attrs&attrControl != 0 {
		// Control batches are never returned; an abort marker ends the
		// producer's aborted transaction for read_committed.
		if attrs&attrTransactional != 0 && st.aborts.aborts(producerID, base) {
			if codec != CodecNone {
				var err error
				if raw, err = st.decompress(codec, raw); err != nil {
					return dst, err
				}
			}
			if isAbortMarker(raw) {
				st.aborts.pop(producerID)
			}
		}
		return dst, nil
	}
	if lastOffset < st.from {
		return dst, nil // wholly before the requested offset
	}
	if attrs&attrTransactional != 0 && st.aborts.aborts(producerID, base) {
		return dst, nil
	}
	if count < 0 {
		return dst, corrupt("negative record count %d", count)
	}
	if count == 0 && len(raw) == 0 {
		return dst, nil // emptied by compaction (KAFKA-5443): only the header is kept
	}
	if codec != CodecNone {
		var err error
		if raw, err = st.decompress(codec, raw); err != nil {
			return dst, err
		}
	}
	if count*minRecordSize > int64(len(raw)) {
		return dst, corrupt("record count %d does not fit in %d record bytes", count, len(raw))
	}
	if room := st.room(); count > int64(room/recordSize) {
		return dst, fmt.Errorf("%w: %d records take more than %d bytes", ErrTooLarge, count, room)
	}
	st.left -= int(count) * recordSize
	dst = slices.Grow(dst, int(count))

	h := batchHeader{
		base:     base,
		baseTime: int64(binary.BigEndian.Uint64(b[baseTimeAt:])),
		from:     st.from,
	}
	if attrs&attrLogAppendTime != 0 {
		h.logAppend = true
		h.maxTime = int64(binary.BigEndian.Uint64(b[maxTimeAt:]))
	}
	for i := int64(0); i < count; i++ {
		var err error
		if dst, raw, err = h.appendRecord(dst, raw); err != nil {
			return dst, fmtRecordErr(i, count, err)
		}
	}
	if len(raw) != 0 {
		return dst, corrupt("%d bytes follow the last of %d records", len(raw), count)
	}
	return dst, nil
}

// batchHeader is what the records of one batch need from its header.
type batchHeader struct {
	base, baseTime, maxTime, from int64
	logAppend                     bool
}

// appendRecord decodes the record at the start of raw, appends it to dst
// unless its offset is before h.from, and returns the rest of raw.
func (h *batchHeader) appendRecord(dst []Record, raw []byte) ([]Record, []byte, error) {
	r := reader{b: raw}
	length := r.varint("record length")
	if r.err != "" {
		return dst, nil, corrupt("%s", r.err)
	}
	if length < 0 || length > int64(len(r.b)) {
		return dst, nil, corrupt("record length %d with %d bytes left", length, len(r.b))
	}
	rest := r.b[length:]
	r.b = r.b[:length]
	if len(r.b) == 0 {
		return dst, nil, corrupt("empty record")
	}
	r.b = r.b[1:] // record attributes: unused
	tsDelta := r.varint("timestamp delta")
	offsetDelta := r.varint32("offset delta")
	if r.err != "" {
		return dst, nil, corrupt("%s", r.err)
	}
	offset := h.base + offsetDelta
	if offset < h.from {
		return dst, rest, nil // trimmed: before the requested offset
	}
	rec := Record{Offset: offset, Timestamp: h.baseTime + tsDelta}
	if h.logAppend {
		rec.Timestamp = h.maxTime
	}
	rec.Key = r.bytes("key length")
	rec.Value = r.bytes("value length")
	n := r.varint32("header count")
	if r.err == "" && (n < 0 || n*2 > int64(len(r.b))) {
		return dst, nil, corrupt("header count %d with %d bytes left", n, len(r.b))
	}
	if n > 0 {
		rec.Headers = make([]Header, n)
		for i := range rec.Headers {
			k := r.bytes("header key length")
			if k == nil && r.err == "" {
				r.err = "null header key"
			}
			rec.Headers[i] = Header{Key: string(k), Value: r.bytes("header value length")}
		}
	}
	if r.err != "" {
		return dst, nil, corrupt("%s", r.err)
	}
	if len(r.b) != 0 {
		return dst, nil, corrupt("%d bytes left inside the record", len(r.b))
	}
	return append(dst, rec), rest, nil
}

// fmtRecordErr adds the record's index to err.
func fmtRecordErr(i, count int64, err error) error {
	return wrapf(err, "record %d of %d", i, count)
}

// isAbortMarker reports whether the records of a control batch start with an
// abort marker: a control record whose key is version int16, type int16 0.
func isAbortMarker(raw []byte) bool {
	r := reader{b: raw}
	length := r.varint("record length")
	if r.err != "" || length < 0 || length > int64(len(r.b)) {
		return false
	}
	r.b = r.b[:length]
	if len(r.b) == 0 {
		return false
	}
	r.b = r.b[1:]
	r.varint("timestamp delta")
	r.varint("offset delta")
	key := r.bytes("key length")
	return r.err == "" && len(key) >= 4 && key[2] == 0 && key[3] == 0
}

// reader reads the varint fields of a record and remembers the first
// failure.
type reader struct {
	b   []byte
	err string
}

// varint reads a zigzag varlong.
func (r *reader) varint(field string) int64 {
	if r.err != "" {
		return 0
	}
	if len(r.b) > 0 && r.b[0] < 0x80 { // one byte: the common case
		v := int64(r.b[0]>>1) ^ -int64(r.b[0]&1)
		r.b = r.b[1:]
		return v
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = "bad varint in " + field
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint32 reads a zigzag varint that must fit an int32.
func (r *reader) varint32(field string) int64 {
	v := r.varint(field)
	if int64(int32(v)) != v && r.err == "" {
		r.err = field + " overflows int32"
		r.b = nil
		return 0
	}
	return v
}

// bytes reads varint-length bytes: nil for length -1, a sub-slice of the
// input otherwise. field names the length ("key length"), for errors only.
func (r *reader) bytes(field string) []byte {
	l := r.varint32(field)
	if r.err != "" {
		return nil
	}
	if l == -1 {
		return nil
	}
	if l < -1 || l > int64(len(r.b)) {
		r.err = field + " " + itoa(l) + " with " + itoa(int64(len(r.b))) + " bytes left"
		r.b = nil
		return nil
	}
	v := r.b[:l:l]
	r.b = r.b[l:]
	return v
}

// aborter tracks, per producer, the first offsets of its aborted
// transactions, ascending, as franz-go's consumer does: a transactional batch
// of a producer at or after its first aborted offset is aborted until an
// abort marker pops that entry.
type aborter map[int64][]int64

func newAborter(txns []AbortedTransaction) aborter {
	a := make(aborter, len(txns))
	for _, t := range txns {
		a[t.ProducerID] = append(a[t.ProducerID], t.FirstOffset)
	}
	for pid := range a {
		slices.Sort(a[pid])
	}
	return a
}

// aborts reports whether the producer's transactional batch at base belongs
// to an aborted transaction.
func (a aborter) aborts(producerID, base int64) bool {
	firsts := a[producerID]
	return len(firsts) > 0 && base >= firsts[0]
}

// pop ends the producer's earliest aborted transaction.
func (a aborter) pop(producerID int64) {
	firsts := a[producerID]
	if len(firsts) <= 1 {
		delete(a, producerID)
		return
	}
	a[producerID] = firsts[1:]
}
