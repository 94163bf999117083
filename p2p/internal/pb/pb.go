// Package pb encodes and decodes the protobuf messages of the ksb libp2p
// protocols (see docs/protocol.md for the schema). The messages are small and
// fixed, so they are written by hand with protowire rather than generated.
//
// Decoding is strict so that a signed message has exactly one encoding: fields
// must appear at most once (repeated fields excepted), with the wire type the
// schema gives; unknown fields are refused. Encoding writes fields in field
// number order and omits zero values, as proto3 does.
package pb

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is returned when bytes are not a valid encoding of the message
// being decoded.
var ErrMalformed = errors.New("malformed protobuf message")

// field is one decoded field: its number, wire type, and either the varint
// value or the bytes of a length-delimited value (aliasing the input).
type field struct {
	num   protowire.Number
	typ   protowire.Type
	u     uint64
	bytes []byte
}

// walk calls fn for each field of b in order. It refuses group and fixed-width
// wire types, which no ksb message uses.
func walk(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: tag: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
			}
			f.u, b = v, b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
			}
			f.bytes, b = v, b[m:]
		default:
			return fmt.Errorf("%w: field %d has unsupported wire type %d", ErrMalformed, num, typ)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// seen tracks which singular fields a decoder has met, to refuse duplicates.
type seen uint64

func (s *seen) once(f field, want protowire.Type) error {
	if f.typ != want {
		return fmt.Errorf("%w: field %d has wire type %d, want %d", ErrMalformed, f.num, f.typ, want)
	}
	if f.num >= 64 {
		return fmt.Errorf("%w: unknown field %d", ErrMalformed, f.num)
	}
	bit := seen(1) << f.num
	if *s&bit != 0 {
		return fmt.Errorf("%w: field %d repeated", ErrMalformed, f.num)
	}
	*s |= bit
	return nil
}

func unknown(f field) error {
	return fmt.Errorf("%w: unknown field %d", ErrMalformed, f.num)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	return appendUint(b, num, uint64(v))
}

// appendMessage writes an embedded message. Unlike scalar fields it is
// written even when empty, because its presence selects a oneof case.
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}
