// Package wire encodes and decodes the Kafka protocol messages kafkaedge uses.
// It holds the primitive types (in the append/Reader style of franz-go's kbin),
// the request and response codec for each supported API version, and the
// Kafka error code table.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShort is wrapped by Reader errors when the input ends before a value does.
var ErrShort = errors.New("wire: input too short")

// ErrInvalid is wrapped by Reader errors when a value is malformed: a negative
// length, a length beyond the remaining input, a varint that overflows, or
// trailing bytes after a message.
var ErrInvalid = errors.New("wire: invalid input")

// AppendInt8 appends v to dst.
func AppendInt8(dst []byte, v int8) []byte { return append(dst, byte(v)) }

// AppendInt16 appends v in big-endian order to dst.
func AppendInt16(dst []byte, v int16) []byte { return binary.BigEndian.AppendUint16(dst, uint16(v)) }

// AppendInt32 appends v in big-endian order to dst.
func AppendInt32(dst []byte, v int32) []byte { return binary.BigEndian.AppendUint32(dst, uint32(v)) }

// AppendInt64 appends v in big-endian order to dst.
func AppendInt64(dst []byte, v int64) []byte { return binary.BigEndian.AppendUint64(dst, uint64(v)) }

// AppendUint32 appends v in big-endian order to dst.
func AppendUint32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

// AppendBool appends v to dst as one byte, 1 for true and 0 for false.
func AppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendUvarint appends v as an unsigned varint to dst.
func AppendUvarint(dst []byte, v uint32) []byte { return binary.AppendUvarint(dst, uint64(v)) }

// AppendVarint appends v as a zig-zag encoded varint to dst.
func AppendVarint(dst []byte, v int32) []byte {
	return binary.AppendUvarint(dst, uint64(uint32(v<<1)^uint32(v>>31)))
}

// AppendVarlong appends v as a zig-zag encoded 64-bit varint to dst.
func AppendVarlong(dst []byte, v int64) []byte {
	return binary.AppendUvarint(dst, uint64(v<<1)^uint64(v>>63))
}

// AppendString appends s with an int16 length prefix to dst.
func AppendString(dst []byte, s string) []byte {
	dst = AppendInt16(dst, int16(len(s)))
	return append(dst, s...)
}

// AppendCompactString appends s with an unsigned varint length+1 prefix to dst.
func AppendCompactString(dst []byte, s string) []byte {
	dst = AppendUvarint(dst, uint32(len(s))+1)
	return append(dst, s...)
}

// AppendNullableString appends s with an int16 length prefix to dst; a nil s
// is written as the null string (length -1).
func AppendNullableString(dst []byte, s *string) []byte {
	if s == nil {
		return AppendInt16(dst, -1)
	}
	return AppendString(dst, *s)
}

// AppendCompactNullableString appends s as a compact string to dst; a nil s
// is written as the null string (length 0).
func AppendCompactNullableString(dst []byte, s *string) []byte {
	if s == nil {
		return AppendUvarint(dst, 0)
	}
	return AppendCompactString(dst, *s)
}

// AppendBytes appends b with an int32 length prefix to dst; a nil b is
// written as null (length -1).
func AppendBytes(dst []byte, b []byte) []byte {
	if b == nil {
		return AppendInt32(dst, -1)
	}
	dst = AppendInt32(dst, int32(len(b)))
	return append(dst, b...)
}

// AppendCompactBytes appends b with an unsigned varint length+1 prefix to
// dst; a nil b is written as null (length 0).
func AppendCompactBytes(dst []byte, b []byte) []byte {
	if b == nil {
		return AppendUvarint(dst, 0)
	}
	dst = AppendUvarint(dst, uint32(len(b))+1)
	return append(dst, b...)
}

// AppendArrayLen appends an int32 array length to dst; -1 is the null array.
func AppendArrayLen(dst []byte, n int) []byte { return AppendInt32(dst, int32(n)) }

// AppendCompactArrayLen appends a compact array length (n+1 as an unsigned
// varint) to dst; -1 is the null array, written as 0.
func AppendCompactArrayLen(dst []byte, n int) []byte { return AppendUvarint(dst, uint32(n+1)) }

// AppendUUID appends the 16 bytes of id to dst.
func AppendUUID(dst []byte, id [16]byte) []byte { return append(dst, id[:]...) }

// AppendEmptyTags appends an empty tagged-field section to dst.
func AppendEmptyTags(dst []byte) []byte { return append(dst, 0) }

// Reader reads Kafka primitives from Src, consuming it as it goes. The first
// error is remembered and every later read returns a zero value, so a decoder
// reads all its fields and checks once with Complete.
type Reader struct {
	// Src is the input not yet consumed.
	Src []byte
	err error
}

func (r *Reader) fail(what string, sentinel error) {
	if r.err == nil {
		r.err = fmt.Errorf("read %s with %d bytes left: %w", what, len(r.Src), sentinel)
	}
	r.Src = nil
}

// Err returns the first error the Reader met, or nil.
func (r *Reader) Err() error { return r.err }

// Complete returns the first error the Reader met, or an error wrapping
// ErrInvalid if unread bytes remain.
func (r *Reader) Complete() error {
	if r.err != nil {
		return r.err
	}
	if len(r.Src) != 0 {
		return fmt.Errorf("%d trailing bytes: %w", len(r.Src), ErrInvalid)
	}
	return nil
}

func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.Src) {
		r.fail(what, ErrShort)
		return nil
	}
	b := r.Src[:n:n]
	r.Src = r.Src[n:]
	return b
}

// Int8 reads one signed byte.
func (r *Reader) Int8() int8 {
	b := r.take(1, "int8")
	if b == nil {
		return 0
	}
	return int8(b[0])
}

// Bool reads one byte as a boolean (any non-zero value is true).
func (r *Reader) Bool() bool { return r.Int8() != 0 }

// Int16 reads a big-endian int16.
func (r *Reader) Int16() int16 {
	b := r.take(2, "int16")
	if b == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(b))
}

// Int32 reads a big-endian int32.
func (r *Reader) Int32() int32 {
	b := r.take(4, "int32")
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

// Uint32 reads a big-endian uint32.
func (r *Reader) Uint32() uint32 { return uint32(r.Int32()) }

// Int64 reads a big-endian int64.
func (r *Reader) Int64() int64 {
	b := r.take(8, "int64")
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// Uvarint reads an unsigned varint of at most 32 bits.
func (r *Reader) Uvarint() uint32 {
	if r.err != nil {
		return 0
	}
	var v uint32
	for i := 0; i < 5; i++ {
		if i >= len(r.Src) {
			r.fail("uvarint", ErrShort)
			return 0
		}
		c := r.Src[i]
		if i == 4 && c > 0x0f {
			r.fail("uvarint", ErrInvalid)
			return 0
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.Src = r.Src[i+1:]
			return v
		}
	}
	r.fail("uvarint", ErrInvalid)
	return 0
}

// Uvarlong reads an unsigned varint of at most 64 bits.
func (r *Reader) Uvarlong() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.Src)
	switch {
	case n == 0:
		r.fail("uvarlong", ErrShort)
		return 0
	case n < 0:
		r.fail("uvarlong", ErrInvalid)
		return 0
	}
	r.Src = r.Src[n:]
	return v
}

// Varint reads a zig-zag encoded varint of at most 32 bits.
func (r *Reader) Varint() int32 {
	u := r.Uvarint()
	return int32(u>>1) ^ -int32(u&1)
}

// Varlong reads a zig-zag encoded varint of at most 64 bits.
func (r *Reader) Varlong() int64 {
	u := r.Uvarlong()
	return int64(u>>1) ^ -int64(u&1)
}

// String reads a string with an int16 length prefix; a null string is an
// error wrapping ErrInvalid. Because String consumes input, a *Reader must
// not be passed to fmt's %v or %s verbs (which would call it).
func (r *Reader) String() string {
	n := r.Int16()
	if n < 0 {
		if r.err == nil {
			r.fail("string (null where not allowed)", ErrInvalid)
		}
		return ""
	}
	return string(r.take(int(n), "string"))
}

// NullableString reads a string with an int16 length prefix; null reads as "".
func (r *Reader) NullableString() string {
	n := r.Int16()
	if n < 0 {
		return ""
	}
	return string(r.take(int(n), "nullable string"))
}

// CompactString reads a string with an unsigned varint length+1 prefix; a
// null string is an error wrapping ErrInvalid.
func (r *Reader) CompactString() string {
	n := r.Uvarint()
	if n == 0 {
		if r.err == nil {
			r.fail("compact string (null where not allowed)", ErrInvalid)
		}
		return ""
	}
	return string(r.take(int(n-1), "compact string"))
}

// CompactNullableString reads a compact string; null reads as "".
func (r *Reader) CompactNullableString() string {
	n := r.Uvarint()
	if n == 0 {
		return ""
	}
	return string(r.take(int(n-1), "compact nullable string"))
}

// Bytes reads bytes with an int32 length prefix and returns a sub-slice of
// Src (no copy); null reads as nil.
func (r *Reader) Bytes() []byte {
	n := r.Int32()
	if n < 0 {
		return nil
	}
	b := r.take(int(n), "bytes")
	if b == nil && r.err == nil {
		return []byte{}
	}
	return b
}

// CompactBytes reads bytes with an unsigned varint length+1 prefix and
// returns a sub-slice of Src (no copy); null reads as nil.
func (r *Reader) CompactBytes() []byte {
	n := r.Uvarint()
	if n == 0 {
		return nil
	}
	b := r.take(int(n-1), "compact bytes")
	if b == nil && r.err == nil {
		return []byte{}
	}
	return b
}

// ArrayLen reads an int32 array length; -1 is the null array. A length that
// cannot fit in the remaining input (each element takes at least one byte) is
// an error wrapping ErrInvalid, so a lying length never causes a large
// allocation.
func (r *Reader) ArrayLen() int {
	n := r.Int32()
	if r.err != nil {
		return 0
	}
	if n < 0 {
		return -1
	}
	if int(n) > len(r.Src) {
		r.fail(fmt.Sprintf("array length %d", n), ErrInvalid)
		return 0
	}
	return int(n)
}

// CompactArrayLen reads a compact array length (n+1 as an unsigned varint);
// -1 is the null array. It is bounded by the remaining input like ArrayLen.
func (r *Reader) CompactArrayLen() int {
	u := r.Uvarint()
	if r.err != nil {
		return 0
	}
	n := int(u) - 1
	if n > len(r.Src) {
		r.fail(fmt.Sprintf("compact array length %d", n), ErrInvalid)
		return 0
	}
	return n
}

// UUID reads 16 bytes.
func (r *Reader) UUID() [16]byte {
	var id [16]byte
	copy(id[:], r.take(16, "uuid"))
	return id
}

// SkipTags reads and discards a tagged-field section.
func (r *Reader) SkipTags() {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.Uvarint() // tag
		r.take(int(r.Uvarint()), "tagged field")
	}
}

// Flexible-aware helpers used by the message codecs.

func (r *Reader) str(flex bool) string {
	if flex {
		return r.CompactString()
	}
	return r.String()
}

func (r *Reader) nstr(flex bool) string {
	if flex {
		return r.CompactNullableString()
	}
	return r.NullableString()
}

func (r *Reader) bytes(flex bool) []byte {
	if flex {
		return r.CompactBytes()
	}
	return r.Bytes()
}

// arrayLen reads an array length and checks that the remaining input can hold
// that many elements of at least minSize bytes each, so that the slice a
// decoder makes for them stays within a small multiple of the input size.
func (r *Reader) arrayLen(flex bool, minSize int) int {
	var n int
	if flex {
		n = r.CompactArrayLen()
	} else {
		n = r.ArrayLen()
	}
	if n > 0 && n*minSize > len(r.Src) {
		r.fail(fmt.Sprintf("array of %d elements of at least %d bytes", n, minSize), ErrInvalid)
		return 0
	}
	return n
}

func (r *Reader) tags(flex bool) {
	if flex {
		r.SkipTags()
	}
}

func (r *Reader) int32s(flex bool) []int32 {
	n := r.arrayLen(flex, 4)
	if n < 0 {
		return nil
	}
	s := make([]int32, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		s = append(s, r.Int32())
	}
	return s
}

func (r *Reader) strings(flex bool) []string {
	n := r.arrayLen(flex, 1)
	if n < 0 {
		return nil
	}
	s := make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		s = append(s, r.str(flex))
	}
	return s
}

func appendStr(dst []byte, s string, flex bool) []byte {
	if flex {
		return AppendCompactString(dst, s)
	}
	return AppendString(dst, s)
}

// appendNstr appends s as a nullable string, "" as null.
func appendNstr(dst []byte, s string, flex bool) []byte {
	switch {
	case s != "":
		return appendStr(dst, s, flex)
	case flex:
		return AppendUvarint(dst, 0)
	}
	return AppendInt16(dst, -1)
}

func appendInt32s(dst []byte, s []int32, flex bool) []byte {
	dst = appendArrayLen(dst, len(s), flex)
	for _, v := range s {
		dst = AppendInt32(dst, v)
	}
	return dst
}

func appendBytes(dst []byte, b []byte, flex bool) []byte {
	if flex {
		return AppendCompactBytes(dst, b)
	}
	return AppendBytes(dst, b)
}

func appendArrayLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return AppendCompactArrayLen(dst, n)
	}
	return AppendArrayLen(dst, n)
}

func appendTags(dst []byte, flex bool) []byte {
	if flex {
		return AppendEmptyTags(dst)
	}
	return dst
}
