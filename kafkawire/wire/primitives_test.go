package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
)

func TestAppendMatchesKbin(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 63, -64, 64, -65, 8191, -8192, math.MaxInt32, math.MinInt32} {
		if got, want := AppendVarint(nil, v), kbin.AppendVarint(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendVarint(%d) = %x, kbin %x", v, got, want)
		}
		if got, want := AppendInt32(nil, v), kbin.AppendInt32(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendInt32(%d) = %x, kbin %x", v, got, want)
		}
		if got, want := AppendUvarint(nil, uint32(v)), kbin.AppendUvarint(nil, uint32(v)); !bytes.Equal(got, want) {
			t.Errorf("AppendUvarint(%d) = %x, kbin %x", uint32(v), got, want)
		}
	}
	for _, v := range []int64{0, 1, -1, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64} {
		if got, want := AppendVarlong(nil, v), kbin.AppendVarlong(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendVarlong(%d) = %x, kbin %x", v, got, want)
		}
		if got, want := AppendInt64(nil, v), kbin.AppendInt64(nil, v); !bytes.Equal(got, want) {
			t.Errorf("AppendInt64(%d) = %x, kbin %x", v, got, want)
		}
	}
	s := "héllo"
	checks := []struct {
		name      string
		got, want []byte
	}{
		{"Int8", AppendInt8(nil, -2), kbin.AppendInt8(nil, -2)},
		{"Int16", AppendInt16(nil, -300), kbin.AppendInt16(nil, -300)},
		{"Uint32", AppendUint32(nil, 0xdeadbeef), kbin.AppendUint32(nil, 0xdeadbeef)},
		{"Bool", AppendBool(AppendBool(nil, true), false), kbin.AppendBool(kbin.AppendBool(nil, true), false)},
		{"String", AppendString(nil, s), kbin.AppendString(nil, s)},
		{"CompactString", AppendCompactString(nil, s), kbin.AppendCompactString(nil, s)},
		{"NullableString", AppendNullableString(nil, &s), kbin.AppendNullableString(nil, &s)},
		{"NullableString nil", AppendNullableString(nil, nil), kbin.AppendNullableString(nil, nil)},
		{"CompactNullableString", AppendCompactNullableString(nil, &s), kbin.AppendCompactNullableString(nil, &s)},
		{"CompactNullableString nil", AppendCompactNullableString(nil, nil), kbin.AppendCompactNullableString(nil, nil)},
		{"Bytes", AppendBytes(nil, []byte(s)), kbin.AppendNullableBytes(nil, []byte(s))},
		{"Bytes nil", AppendBytes(nil, nil), kbin.AppendNullableBytes(nil, nil)},
		{"CompactBytes", AppendCompactBytes(nil, []byte(s)), kbin.AppendCompactNullableBytes(nil, []byte(s))},
		{"CompactBytes nil", AppendCompactBytes(nil, nil), kbin.AppendCompactNullableBytes(nil, nil)},
		{"ArrayLen", AppendArrayLen(nil, 5), kbin.AppendArrayLen(nil, 5)},
		{"ArrayLen null", AppendArrayLen(nil, -1), kbin.AppendNullableArrayLen(nil, 0, true)},
		{"CompactArrayLen", AppendCompactArrayLen(nil, 5), kbin.AppendCompactArrayLen(nil, 5)},
		{"CompactArrayLen null", AppendCompactArrayLen(nil, -1), kbin.AppendCompactNullableArrayLen(nil, 0, true)},
		{"UUID", AppendUUID(nil, uuid(7)), kbin.AppendUuid(nil, uuid(7))},
		{"EmptyTags", AppendEmptyTags(nil), kbin.AppendUvarint(nil, 0)},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: %x, kbin %x", c.name, c.got, c.want)
		}
	}
}

func TestReaderRoundTrip(t *testing.T) {
	s := "topic-name"
	var b []byte
	b = AppendInt8(b, -5)
	b = AppendBool(b, true)
	b = AppendInt16(b, -300)
	b = AppendInt32(b, -70000)
	b = AppendUint32(b, 0xfeedface)
	b = AppendInt64(b, math.MinInt64)
	b = AppendVarint(b, math.MinInt32)
	b = AppendVarlong(b, math.MaxInt64)
	b = AppendUvarint(b, math.MaxUint32)
	b = AppendString(b, s)
	b = AppendCompactString(b, s)
	b = AppendNullableString(b, nil)
	b = AppendCompactNullableString(b, nil)
	b = AppendCompactNullableString(b, &s)
	b = AppendBytes(b, []byte("xyz"))
	b = AppendBytes(b, nil)
	b = AppendBytes(b, []byte{})
	b = AppendCompactBytes(b, []byte("uvw"))
	b = AppendCompactBytes(b, nil)
	b = AppendArrayLen(b, -1)
	b = AppendCompactArrayLen(b, -1)
	b = AppendArrayLen(b, 0)
	b = AppendCompactArrayLen(b, 0)
	b = AppendUUID(b, uuid(9))
	b = append(b, 2, 5, 3, 1, 2, 3, 200, 1, 0) // tags: {5: 010203}, {200: ""}
	b = AppendEmptyTags(b)

	r := Reader{Src: b}
	if v := r.Int8(); v != -5 {
		t.Errorf("Int8 %d", v)
	}
	if !r.Bool() {
		t.Error("Bool false")
	}
	if v := r.Int16(); v != -300 {
		t.Errorf("Int16 %d", v)
	}
	if v := r.Int32(); v != -70000 {
		t.Errorf("Int32 %d", v)
	}
	if v := r.Uint32(); v != 0xfeedface {
		t.Errorf("Uint32 %x", v)
	}
	if v := r.Int64(); v != math.MinInt64 {
		t.Errorf("Int64 %d", v)
	}
	if v := r.Varint(); v != math.MinInt32 {
		t.Errorf("Varint %d", v)
	}
	if v := r.Varlong(); v != math.MaxInt64 {
		t.Errorf("Varlong %d", v)
	}
	if v := r.Uvarint(); v != math.MaxUint32 {
		t.Errorf("Uvarint %d", v)
	}
	if v := r.String(); v != s {
		t.Errorf("String %q", v)
	}
	if v := r.CompactString(); v != s {
		t.Errorf("CompactString %q", v)
	}
	if v := r.NullableString(); v != "" {
		t.Errorf("NullableString %q", v)
	}
	if v := r.CompactNullableString(); v != "" {
		t.Errorf("CompactNullableString null %q", v)
	}
	if v := r.CompactNullableString(); v != s {
		t.Errorf("CompactNullableString %q", v)
	}
	if v := r.Bytes(); string(v) != "xyz" {
		t.Errorf("Bytes %q", v)
	}
	if v := r.Bytes(); v != nil {
		t.Errorf("null Bytes %v", v)
	}
	if v := r.Bytes(); v == nil || len(v) != 0 {
		t.Errorf("empty Bytes %v", v)
	}
	if v := r.CompactBytes(); string(v) != "uvw" {
		t.Errorf("CompactBytes %q", v)
	}
	if v := r.CompactBytes(); v != nil {
		t.Errorf("null CompactBytes %v", v)
	}
	if n := r.ArrayLen(); n != -1 {
		t.Errorf("null ArrayLen %d", n)
	}
	if n := r.CompactArrayLen(); n != -1 {
		t.Errorf("null CompactArrayLen %d", n)
	}
	if n := r.ArrayLen(); n != 0 {
		t.Errorf("ArrayLen %d", n)
	}
	if n := r.CompactArrayLen(); n != 0 {
		t.Errorf("CompactArrayLen %d", n)
	}
	if id := r.UUID(); id != uuid(9) {
		t.Errorf("UUID %x", id)
	}
	r.SkipTags()
	r.SkipTags()
	if err := r.Complete(); err != nil {
		t.Fatal(err)
	}
}

func TestReaderBytesAlias(t *testing.T) {
	src := AppendBytes(nil, []byte("abc"))
	r := Reader{Src: src}
	b := r.Bytes()
	src[4] = 'X'
	if b[0] != 'X' {
		t.Fatal("Bytes copied instead of returning a sub-slice")
	}
	if cap(b) != 3 {
		t.Fatalf("Bytes cap %d lets an append overwrite the input", cap(b))
	}
}

func TestReaderErrors(t *testing.T) {
	cases := []struct {
		name string
		src  []byte
		read func(r *Reader)
		want error
	}{
		{"short int32", []byte{1, 2, 3}, func(r *Reader) { r.Int32() }, ErrShort},
		{"short int64", []byte{1}, func(r *Reader) { r.Int64() }, ErrShort},
		{"short string", AppendInt16(nil, 5), func(r *Reader) { _ = r.String() }, ErrShort},
		{"null string", AppendInt16(nil, -1), func(r *Reader) { _ = r.String() }, ErrInvalid},
		{"null compact string", []byte{0}, func(r *Reader) { r.CompactString() }, ErrInvalid},
		{"short compact string", []byte{10, 'a'}, func(r *Reader) { r.CompactString() }, ErrShort},
		{"bytes beyond input", AppendInt32(nil, math.MaxInt32), func(r *Reader) { r.Bytes() }, ErrShort},
		{"compact bytes beyond input", AppendUvarint(nil, math.MaxUint32), func(r *Reader) { r.CompactBytes() }, ErrShort},
		{"negative bytes length", AppendInt32(nil, -7), func(r *Reader) { r.Bytes(); r.Int8() }, ErrShort},
		{"lying array length", append(AppendInt32(nil, math.MaxInt32), 1, 2, 3), func(r *Reader) { r.ArrayLen() }, ErrInvalid},
		{"array length one too many", append(AppendInt32(nil, 4), 1, 2, 3), func(r *Reader) { r.ArrayLen() }, ErrInvalid},
		{"lying compact array length", append(AppendUvarint(nil, math.MaxUint32), 1, 2), func(r *Reader) { r.CompactArrayLen() }, ErrInvalid},
		{"uvarint too long", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, func(r *Reader) { r.Uvarint() }, ErrInvalid},
		{"uvarint overflows 32 bits", []byte{0xff, 0xff, 0xff, 0xff, 0x10}, func(r *Reader) { r.Uvarint() }, ErrInvalid},
		{"uvarint unterminated", []byte{0x80, 0x80}, func(r *Reader) { r.Uvarint() }, ErrShort},
		{"varlong unterminated", []byte{0x80}, func(r *Reader) { r.Varlong() }, ErrShort},
		{"varlong overflow", bytes.Repeat([]byte{0xff}, 11), func(r *Reader) { r.Varlong() }, ErrInvalid},
		{"short uuid", make([]byte, 15), func(r *Reader) { r.UUID() }, ErrShort},
		{"lying tag count", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0}, func(r *Reader) { r.SkipTags() }, ErrShort},
		{"tag size beyond input", []byte{1, 0, 9, 1}, func(r *Reader) { r.SkipTags() }, ErrShort},
		{"trailing bytes", []byte{1, 2}, func(r *Reader) { r.Int8() }, ErrInvalid},
	}
	for _, c := range cases {
		r := Reader{Src: c.src}
		c.read(&r)
		if err := r.Complete(); !errors.Is(err, c.want) {
			t.Errorf("%s: Complete() = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestReaderArrayLenFailsAtOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		src  []byte
		read func(r *Reader) int
	}{
		{"ArrayLen", append(AppendInt32(nil, 3), 1, 2), (*Reader).ArrayLen},
		{"CompactArrayLen", append(AppendUvarint(nil, 4), 1, 2), (*Reader).CompactArrayLen},
		{"CompactArrayLen max", append(AppendUvarint(nil, math.MaxUint32), 1, 2), (*Reader).CompactArrayLen},
	} {
		r := Reader{Src: c.src}
		if n := c.read(&r); n != 0 || !errors.Is(r.Err(), ErrInvalid) || len(r.Src) != 0 {
			t.Errorf("%s: n = %d, err = %v, %d bytes left", c.name, n, r.Err(), len(r.Src))
		}
	}
}

func TestReaderKeepsFirstError(t *testing.T) {
	r := Reader{Src: []byte{0, 0, 0, 1, 0xff}}
	if r.Int64() != 0 || r.Int8() != 0 {
		t.Fatal("reads after an error must return zero")
	}
	err := r.Complete()
	if !errors.Is(err, ErrShort) || r.Err() != err {
		t.Fatalf("first error lost: %v", err)
	}
}
