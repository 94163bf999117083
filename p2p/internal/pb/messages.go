package pb

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// PushHeader opens a /ksb/push/1.0.0 stream; exactly Size blob bytes follow it.
type PushHeader struct {
	Owner  []byte // 1: owner's 33-byte compressed public key
	Vault  string // 2: vault public key
	Digest []byte // 3: sha256 of the blob
	Size   uint64 // 4: blob length in bytes
}

// Marshal encodes h.
func (h *PushHeader) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, h.Owner)
	b = appendString(b, 2, h.Vault)
	b = appendBytes(b, 3, h.Digest)
	b = appendUint(b, 4, h.Size)
	return b
}

// Unmarshal decodes b into h.
func (h *PushHeader) Unmarshal(b []byte) error {
	*h = PushHeader{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			h.Owner = clone(f.bytes)
		case 2:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			h.Vault = string(f.bytes)
		case 3:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			h.Digest = clone(f.bytes)
		case 4:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			h.Size = f.u
		default:
			return unknown(f)
		}
		return nil
	})
}

// Receipt is a holder's signed statement that it stored a blob durably.
type Receipt struct {
	Holder       []byte // 1: holder's 33-byte public key
	Owner        []byte // 2: owner's 33-byte public key
	Vault        string // 3
	Digest       []byte // 4: sha256 of the blob
	Size         uint64 // 5
	TimeUnixNano int64  // 6: when the holder accepted the blob
	Signature    []byte // 7: holder's signature over the domain tag and fields 1-6
}

// Unsigned encodes fields 1-6: the bytes the signature covers (after the
// domain tag).
func (r *Receipt) Unsigned() []byte {
	var b []byte
	b = appendBytes(b, 1, r.Holder)
	b = appendBytes(b, 2, r.Owner)
	b = appendString(b, 3, r.Vault)
	b = appendBytes(b, 4, r.Digest)
	b = appendUint(b, 5, r.Size)
	b = appendInt(b, 6, r.TimeUnixNano)
	return b
}

// Marshal encodes r.
func (r *Receipt) Marshal() []byte { return appendBytes(r.Unsigned(), 7, r.Signature) }

// Unmarshal decodes b into r.
func (r *Receipt) Unmarshal(b []byte) error {
	*r = Receipt{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1, 2, 3, 4, 7:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			switch f.num {
			case 1:
				r.Holder = clone(f.bytes)
			case 2:
				r.Owner = clone(f.bytes)
			case 3:
				r.Vault = string(f.bytes)
			case 4:
				r.Digest = clone(f.bytes)
			case 7:
				r.Signature = clone(f.bytes)
			}
		case 5, 6:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			if f.num == 5 {
				r.Size = f.u
			} else {
				r.TimeUnixNano = int64(f.u)
			}
		default:
			return unknown(f)
		}
		return nil
	})
}

// Error is a typed refusal.
type Error struct {
	Code    uint32 // 1: error code (see docs/protocol.md)
	Message string // 2: human-readable detail
}

// Marshal encodes e.
func (e *Error) Marshal() []byte {
	var b []byte
	b = appendUint(b, 1, uint64(e.Code))
	b = appendString(b, 2, e.Message)
	return b
}

// Unmarshal decodes b into e.
func (e *Error) Unmarshal(b []byte) error {
	*e = Error{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			if f.u > 1<<31 {
				return fmt.Errorf("%w: error code %d out of range", ErrMalformed, f.u)
			}
			e.Code = uint32(f.u)
		case 2:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			e.Message = string(f.bytes)
		default:
			return unknown(f)
		}
		return nil
	})
}

// PushResponse is the holder's answer on a push stream: exactly one of
// Receipt and Error is set.
type PushResponse struct {
	Receipt *Receipt // 1
	Error   *Error   // 2
}

// Marshal encodes p.
func (p *PushResponse) Marshal() []byte {
	switch {
	case p.Receipt != nil:
		return appendMessage(nil, 1, p.Receipt.Marshal())
	case p.Error != nil:
		return appendMessage(nil, 2, p.Error.Marshal())
	}
	return nil
}

// Unmarshal decodes b into p; exactly one case must be present.
func (p *PushResponse) Unmarshal(b []byte) error {
	*p = PushResponse{}
	var s seen
	err := walk(b, func(f field) error {
		switch f.num {
		case 1:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			p.Receipt = new(Receipt)
			return p.Receipt.Unmarshal(f.bytes)
		case 2:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			p.Error = new(Error)
			return p.Error.Unmarshal(f.bytes)
		default:
			return unknown(f)
		}
	})
	if err != nil {
		return err
	}
	if (p.Receipt == nil) == (p.Error == nil) {
		return fmt.Errorf("%w: push response must hold exactly one of receipt and error", ErrMalformed)
	}
	return nil
}

// FetchRequest asks a holder for the requester's own blobs.
type FetchRequest struct {
	Vault  string // 1: only this vault; empty for all
	Digest []byte // 2: only this blob; empty for any
}

// Marshal encodes r.
func (r *FetchRequest) Marshal() []byte {
	var b []byte
	b = appendString(b, 1, r.Vault)
	b = appendBytes(b, 2, r.Digest)
	return b
}

// Unmarshal decodes b into r.
func (r *FetchRequest) Unmarshal(b []byte) error {
	*r = FetchRequest{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			r.Vault = string(f.bytes)
		case 2:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			r.Digest = clone(f.bytes)
		default:
			return unknown(f)
		}
		return nil
	})
}

// EntryHeader describes one blob in a fetch or return stream; exactly Size
// blob bytes follow it.
type EntryHeader struct {
	Owner            []byte // 1
	Vault            string // 2
	Digest           []byte // 3
	Size             uint64 // 4
	ReceivedUnixNano int64  // 5: when the holder accepted the blob
}

// Marshal encodes e.
func (e *EntryHeader) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, e.Owner)
	b = appendString(b, 2, e.Vault)
	b = appendBytes(b, 3, e.Digest)
	b = appendUint(b, 4, e.Size)
	b = appendInt(b, 5, e.ReceivedUnixNano)
	return b
}

// Unmarshal decodes b into e.
func (e *EntryHeader) Unmarshal(b []byte) error {
	*e = EntryHeader{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1, 2, 3:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			switch f.num {
			case 1:
				e.Owner = clone(f.bytes)
			case 2:
				e.Vault = string(f.bytes)
			case 3:
				e.Digest = clone(f.bytes)
			}
		case 4, 5:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			if f.num == 4 {
				e.Size = f.u
			} else {
				e.ReceivedUnixNano = int64(f.u)
			}
		default:
			return unknown(f)
		}
		return nil
	})
}

// End closes a fetch or return stream.
type End struct {
	Count uint32 // 1: number of entries sent
}

// Frame is one frame of a fetch or return stream: exactly one of Entry, End
// and Error is set.
type Frame struct {
	Entry *EntryHeader // 1
	End   *End         // 2
	Error *Error       // 3
}

// Marshal encodes f.
func (f *Frame) Marshal() []byte {
	switch {
	case f.Entry != nil:
		return appendMessage(nil, 1, f.Entry.Marshal())
	case f.End != nil:
		return appendMessage(nil, 2, appendUint(nil, 1, uint64(f.End.Count)))
	case f.Error != nil:
		return appendMessage(nil, 3, f.Error.Marshal())
	}
	return nil
}

// Unmarshal decodes b into f; exactly one case must be present.
func (f *Frame) Unmarshal(b []byte) error {
	*f = Frame{}
	var s seen
	err := walk(b, func(fl field) error {
		if err := s.once(fl, protowire.BytesType); err != nil {
			return err
		}
		if s&^(seen(1)<<fl.num) != 0 {
			return fmt.Errorf("%w: frame holds more than one case", ErrMalformed)
		}
		switch fl.num {
		case 1:
			f.Entry = new(EntryHeader)
			return f.Entry.Unmarshal(fl.bytes)
		case 2:
			f.End = new(End)
			var es seen
			return walk(fl.bytes, func(g field) error {
				if g.num != 1 {
					return unknown(g)
				}
				if err := es.once(g, protowire.VarintType); err != nil {
					return err
				}
				if g.u > 1<<31 {
					return fmt.Errorf("%w: end count %d out of range", ErrMalformed, g.u)
				}
				f.End.Count = uint32(g.u)
				return nil
			})
		case 3:
			f.Error = new(Error)
			return f.Error.Unmarshal(fl.bytes)
		default:
			return unknown(fl)
		}
	})
	if err != nil {
		return err
	}
	if s == 0 {
		return fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	return nil
}

// Heartbeat is a node's periodic signed announcement on the heartbeat topic.
type Heartbeat struct {
	Node         []byte // 1: sender's 33-byte public key
	Blobs        uint64 // 2: blobs held for others
	Bytes        uint64 // 3: bytes held for others
	QuotaBlobs   uint64 // 4: blobs one owner may keep on this node
	QuotaBytes   uint64 // 5: bytes one owner may keep on this node
	TimeUnixNano int64  // 6
	Signature    []byte // 7: over the domain tag and fields 1-6
}

// Unsigned encodes fields 1-6.
func (h *Heartbeat) Unsigned() []byte {
	var b []byte
	b = appendBytes(b, 1, h.Node)
	b = appendUint(b, 2, h.Blobs)
	b = appendUint(b, 3, h.Bytes)
	b = appendUint(b, 4, h.QuotaBlobs)
	b = appendUint(b, 5, h.QuotaBytes)
	b = appendInt(b, 6, h.TimeUnixNano)
	return b
}

// Marshal encodes h.
func (h *Heartbeat) Marshal() []byte { return appendBytes(h.Unsigned(), 7, h.Signature) }

// Unmarshal decodes b into h.
func (h *Heartbeat) Unmarshal(b []byte) error {
	*h = Heartbeat{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1, 7:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			if f.num == 1 {
				h.Node = clone(f.bytes)
			} else {
				h.Signature = clone(f.bytes)
			}
		case 2, 3, 4, 5, 6:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			switch f.num {
			case 2:
				h.Blobs = f.u
			case 3:
				h.Bytes = f.u
			case 4:
				h.QuotaBlobs = f.u
			case 5:
				h.QuotaBytes = f.u
			case 6:
				h.TimeUnixNano = int64(f.u)
			}
		default:
			return unknown(f)
		}
		return nil
	})
}

// RecoveryRequest asks holders to return the owner's blobs.
type RecoveryRequest struct {
	Owner        []byte   // 1: owner's 33-byte public key
	Nonce        []byte   // 2: random, never reused
	TimeUnixNano int64    // 3
	Addrs        [][]byte // 4 (repeated): binary multiaddrs to reach the owner at
	Signature    []byte   // 5: over the domain tag and fields 1-4
}

// Unsigned encodes fields 1-4.
func (r *RecoveryRequest) Unsigned() []byte {
	var b []byte
	b = appendBytes(b, 1, r.Owner)
	b = appendBytes(b, 2, r.Nonce)
	b = appendInt(b, 3, r.TimeUnixNano)
	for _, a := range r.Addrs {
		b = appendMessage(b, 4, a)
	}
	return b
}

// Marshal encodes r.
func (r *RecoveryRequest) Marshal() []byte { return appendBytes(r.Unsigned(), 5, r.Signature) }

// Unmarshal decodes b into r.
func (r *RecoveryRequest) Unmarshal(b []byte) error {
	*r = RecoveryRequest{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1, 2, 5:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			switch f.num {
			case 1:
				r.Owner = clone(f.bytes)
			case 2:
				r.Nonce = clone(f.bytes)
			case 5:
				r.Signature = clone(f.bytes)
			}
		case 3:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			r.TimeUnixNano = int64(f.u)
		case 4:
			if f.typ != protowire.BytesType {
				return fmt.Errorf("%w: field 4 has wire type %d", ErrMalformed, f.typ)
			}
			r.Addrs = append(r.Addrs, append([]byte{}, f.bytes...))
		default:
			return unknown(f)
		}
		return nil
	})
}

// ReturnOffer is the first frame of a return stream, holder to owner: which
// recovery request it answers, how many blobs it holds for the owner, and
// the holder's clock. Nothing else is sent until the owner answers with a
// ReturnReply.
type ReturnOffer struct {
	Nonce        []byte // 1: the nonce of the recovery request answered
	Count        uint32 // 2: blobs the holder holds for the owner
	TimeUnixNano int64  // 3: the holder's clock when it wrote the offer
}

// Marshal encodes o.
func (o *ReturnOffer) Marshal() []byte {
	var b []byte
	b = appendBytes(b, 1, o.Nonce)
	b = appendUint(b, 2, uint64(o.Count))
	b = appendInt(b, 3, o.TimeUnixNano)
	return b
}

// Unmarshal decodes b into o.
func (o *ReturnOffer) Unmarshal(b []byte) error {
	*o = ReturnOffer{}
	var s seen
	return walk(b, func(f field) error {
		switch f.num {
		case 1:
			if err := s.once(f, protowire.BytesType); err != nil {
				return err
			}
			o.Nonce = clone(f.bytes)
		case 2:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			if f.u > 1<<31 {
				return fmt.Errorf("%w: offer count %d out of range", ErrMalformed, f.u)
			}
			o.Count = uint32(f.u)
		case 3:
			if err := s.once(f, protowire.VarintType); err != nil {
				return err
			}
			o.TimeUnixNano = int64(f.u)
		default:
			return unknown(f)
		}
		return nil
	})
}

// ReturnReply is the owner's answer to a ReturnOffer: whether the holder is
// to send the blobs it offered.
type ReturnReply struct {
	Send bool // 1
}

// Marshal encodes r.
func (r *ReturnReply) Marshal() []byte {
	if !r.Send {
		return nil
	}
	return appendUint(nil, 1, 1)
}

// Unmarshal decodes b into r.
func (r *ReturnReply) Unmarshal(b []byte) error {
	*r = ReturnReply{}
	var s seen
	return walk(b, func(f field) error {
		if f.num != 1 {
			return unknown(f)
		}
		if err := s.once(f, protowire.VarintType); err != nil {
			return err
		}
		if f.u > 1 {
			return fmt.Errorf("%w: bool field %d is %d", ErrMalformed, f.num, f.u)
		}
		r.Send = f.u == 1
		return nil
	})
}
