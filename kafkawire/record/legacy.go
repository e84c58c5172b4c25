package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Legacy message attribute bits (magic 0 and 1).
const legacyLogAppendTime = 0x08 // magic 1 only

// message is one parsed legacy (magic 0 or 1) message.
type message struct {
	offset, timestamp int64
	magic, attrs      byte
	key, value        []byte
}

// parseMessage parses the legacy message entry b (offset, size, then exactly
// size bytes of message) and checks its CRC-32 (IEEE).
func parseMessage(b []byte) (message, error) {
	m := message{offset: int64(binary.BigEndian.Uint64(b)), magic: b[magicAt], timestamp: -1}
	if want, got := binary.BigEndian.Uint32(b[lengthEnd:]), crc32.ChecksumIEEE(b[magicAt:]); want != got {
		return m, corrupt("crc32 %08x, computed %08x", want, got)
	}
	m.attrs = b[magicAt+1]
	rest := b[magicAt+2:]
	switch m.magic {
	case 0:
	case 1:
		if len(rest) < 8 {
			return m, corrupt("message too short for its timestamp")
		}
		m.timestamp = int64(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
	default:
		return m, corrupt("unknown message magic %d", m.magic)
	}
	var ok bool
	if m.key, rest, ok = legacyBytes(rest); !ok {
		return m, corrupt("message key length does not fit")
	}
	if m.value, rest, ok = legacyBytes(rest); !ok {
		return m, corrupt("message value length does not fit")
	}
	if len(rest) != 0 {
		return m, corrupt("%d bytes after the message value", len(rest))
	}
	return m, nil
}

// legacyBytes reads int32-length bytes (-1 = null) from the start of b.
func legacyBytes(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	l := int64(int32(binary.BigEndian.Uint32(b)))
	b = b[4:]
	if l == -1 {
		return nil, b, true
	}
	if l < 0 || l > int64(len(b)) {
		return nil, nil, false
	}
	return b[:l:l], b[l:], true
}

// appendLegacy decodes one top-level legacy message b, which may be a
// compressed wrapper whose value is a nested message set.
func (st *state) appendLegacy(dst []Record, b []byte) ([]Record, error) {
	m, err := parseMessage(b)
	if err != nil {
		return dst, err
	}
	codec := int(m.attrs & attrCodecMask)
	if codec == CodecNone {
		if m.offset >= st.from {
			dst = append(dst, Record{Offset: m.offset, Timestamp: m.timestamp, Key: m.key, Value: m.value})
		}
		return dst, nil
	}
	if m.offset < st.from && m.offset != 0 {
		// A wrapper carries the offset of its last inner message (or 0
		// from old librdkafka): the whole set is before the request.
		return dst, nil
	}
	if m.value == nil {
		return dst, corrupt("compressed wrapper message without a value")
	}
	inner, err := st.decompress(codec, m.value)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	for len(inner) > 0 {
		if len(inner) < lengthEnd+minV0Size {
			return dst[:start], corrupt("truncated inner message (%d bytes)", len(inner))
		}
		size := int64(int32(binary.BigEndian.Uint32(inner[8:])))
		if size < minV0Size || lengthEnd+size > int64(len(inner)) {
			return dst[:start], corrupt("inner message length %d with %d bytes left", size, len(inner)-lengthEnd)
		}
		im, err := parseMessage(inner[:lengthEnd+size])
		if err != nil {
			return dst[:start], wrapf(err, "inner message %d", len(dst)-start)
		}
		inner = inner[lengthEnd+size:]
		if len(dst)-start >= st.room()/recordSize {
			return dst[:start], fmt.Errorf("%w: inner messages take more than %d bytes", ErrTooLarge, st.room())
		}
		if im.attrs&attrCodecMask != CodecNone {
			return dst[:start], corrupt("compressed message nested in a compressed message")
		}
		ts := im.timestamp
		if m.magic == 1 && m.attrs&legacyLogAppendTime != 0 {
			ts = m.timestamp
		}
		dst = append(dst, Record{Offset: im.offset, Timestamp: ts, Key: im.key, Value: im.value})
	}
	if len(dst) == start {
		return dst, corrupt("compressed wrapper message with no inner messages")
	}
	// Magic 1 inner offsets are relative; the wrapper holds the absolute
	// offset of the last one. A wrapper offset of 0 (old librdkafka) means
	// the inner offsets are used as they are, as Kafka's consumer does.
	if m.magic == 1 && m.offset != 0 {
		last := dst[len(dst)-1].Offset
		if m.offset < last {
			return dst[:start], corrupt("wrapper offset %d below its last inner offset %d", m.offset, last)
		}
		for i := start; i < len(dst); i++ {
			dst[i].Offset += m.offset - last
		}
	}
	kept := start
	for i := start; i < len(dst); i++ {
		if dst[i].Offset >= st.from {
			dst[kept] = dst[i]
			kept++
		}
	}
	clear(dst[kept:])
	return dst[:kept], nil
}
