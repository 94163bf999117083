// Package pb holds the frames of the ksb libp2p protocols: the Go code
// protoc-gen-go generates from proto/ksb/p2p/v2/p2p.proto (p2p.pb.go, `make
// proto`), and, here, their one encoding and their strict decoding.
//
// Marshal encodes deterministically: fields in field-number order, default
// values omitted, as every protobuf implementation writes plain fields.
// Unmarshal accepts only that encoding: it refuses bytes that do not
// decode, an unknown field at any level, and anything that does not
// re-encode to the same bytes (a repeated singular field, fields out of
// order, a default value written out, a long varint), so that a signed
// message has exactly one encoding and a peer cannot smuggle data past a
// signature. Messages with cases (PushResponse, Frame) must carry exactly
// one. Callers read a frame with its protocol's cap before decoding it, so
// decoding allocates at most that.
package pb

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ErrMalformed is returned when bytes are not the canonical encoding of the
// message being decoded.
var ErrMalformed = errors.New("malformed protobuf message")

// marshal is the deterministic encoding of m; a message whose string field
// is not UTF-8 (which Unmarshal never yields and senders never build)
// encodes as nil, which no decoder accepts.
func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

// unmarshal decodes b into m strictly (see the package documentation).
func unmarshal(b []byte, m proto.Message) error {
	proto.Reset(m)
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(b, m); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := noUnknown(m.ProtoReflect()); err != nil {
		return err
	}
	if !bytes.Equal(marshal(m), b) {
		return fmt.Errorf("%w: not the canonical encoding of %s (repeated or out-of-order fields, default values, long varints)",
			ErrMalformed, m.ProtoReflect().Descriptor().Name())
	}
	return nil
}

// noUnknown refuses a message carrying unknown fields, at any level.
func noUnknown(m protoreflect.Message) error {
	if len(m.GetUnknown()) > 0 {
		return fmt.Errorf("%w: unknown field in %s", ErrMalformed, m.Descriptor().Name())
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			err = noUnknown(v.Message())
		}
		return err == nil
	})
	return err
}

// Marshal encodes h.
func (h *PushHeader) Marshal() []byte { return marshal(h) }

// Unmarshal decodes b into h.
func (h *PushHeader) Unmarshal(b []byte) error { return unmarshal(b, h) }

// Marshal encodes r.
func (r *Receipt) Marshal() []byte { return marshal(r) }

// Unmarshal decodes b into r.
func (r *Receipt) Unmarshal(b []byte) error { return unmarshal(b, r) }

// Unsigned encodes every field but the signature: the bytes the signature
// covers (after the domain tag).
func (r *Receipt) Unsigned() []byte {
	c := proto.Clone(r).(*Receipt)
	c.Signature = nil
	return marshal(c)
}

// Marshal encodes e.
func (e *Error) Marshal() []byte { return marshal(e) }

// Unmarshal decodes b into e.
func (e *Error) Unmarshal(b []byte) error { return unmarshal(b, e) }

// Marshal encodes p.
func (p *PushResponse) Marshal() []byte { return marshal(p) }

// Unmarshal decodes b into p; exactly one of Receipt and Error must be set.
func (p *PushResponse) Unmarshal(b []byte) error {
	if err := unmarshal(b, p); err != nil {
		return err
	}
	if (p.Receipt == nil) == (p.Error == nil) {
		return fmt.Errorf("%w: push response must hold exactly one of receipt and error", ErrMalformed)
	}
	return nil
}

// Marshal encodes r.
func (r *FetchRequest) Marshal() []byte { return marshal(r) }

// Unmarshal decodes b into r.
func (r *FetchRequest) Unmarshal(b []byte) error { return unmarshal(b, r) }

// Marshal encodes e.
func (e *EntryHeader) Marshal() []byte { return marshal(e) }

// Unmarshal decodes b into e.
func (e *EntryHeader) Unmarshal(b []byte) error { return unmarshal(b, e) }

// Marshal encodes f.
func (f *Frame) Marshal() []byte { return marshal(f) }

// Unmarshal decodes b into f; exactly one of Entry, End and Error must be
// set.
func (f *Frame) Unmarshal(b []byte) error {
	if err := unmarshal(b, f); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{f.Entry != nil, f.End != nil, f.Error != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: frame holds %d cases, want exactly one", ErrMalformed, n)
	}
	return nil
}

// Marshal encodes h.
func (h *Heartbeat) Marshal() []byte { return marshal(h) }

// Unmarshal decodes b into h.
func (h *Heartbeat) Unmarshal(b []byte) error { return unmarshal(b, h) }

// Unsigned encodes fields 1-6: the bytes the signature covers.
func (h *Heartbeat) Unsigned() []byte {
	c := proto.Clone(h).(*Heartbeat)
	c.Signature = nil
	return marshal(c)
}

// Marshal encodes r.
func (r *RecoveryRequest) Marshal() []byte { return marshal(r) }

// Unmarshal decodes b into r.
func (r *RecoveryRequest) Unmarshal(b []byte) error { return unmarshal(b, r) }

// Unsigned encodes fields 1-4: the bytes the signature covers.
func (r *RecoveryRequest) Unsigned() []byte {
	c := proto.Clone(r).(*RecoveryRequest)
	c.Signature = nil
	return marshal(c)
}

// Marshal encodes o.
func (o *ReturnOffer) Marshal() []byte { return marshal(o) }

// Unmarshal decodes b into o.
func (o *ReturnOffer) Unmarshal(b []byte) error { return unmarshal(b, o) }

// Marshal encodes r.
func (r *ReturnReply) Marshal() []byte { return marshal(r) }

// Unmarshal decodes b into r.
func (r *ReturnReply) Unmarshal(b []byte) error { return unmarshal(b, r) }
