package pb_test

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ksb-project/ksb/p2p/internal/pb"
)

type message interface {
	proto.Message
	Marshal() []byte
	Unmarshal([]byte) error
}

func roundTrip(t *testing.T, in, out message) {
	t.Helper()
	b := in.Marshal()
	if err := out.Unmarshal(b); err != nil {
		t.Fatalf("%T: unmarshal: %v", in, err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("%T: round trip:\n got %v\nwant %v", in, out, in)
	}
	if again := out.Marshal(); !bytes.Equal(again, b) {
		t.Fatalf("%T: re-encoding differs", in)
	}
}

func path(n int) [][]byte {
	var p [][]byte
	for i := range n {
		p = append(p, bytes.Repeat([]byte{byte(i + 1)}, 32))
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	d := bytes.Repeat([]byte{7}, 32)
	o := bytes.Repeat([]byte{2}, 33)
	r := &pb.Receipt{Holder: o, Pusher: o, Commitment: 12, Slot: 2, CopyIndex: 2, Size: 60000, CopyRoot: d, TimeUnixNano: 1700000000123456789, Signature: d}
	roundTrip(t, &pb.PushHeader{Commitment: 1 << 40, Slot: 255, CopyIndex: 63, Size: 1 << 20, CommitPath: path(6)}, new(pb.PushHeader))
	roundTrip(t, r, new(pb.Receipt))
	roundTrip(t, &pb.PushResponse{Receipt: r}, new(pb.PushResponse))
	roundTrip(t, &pb.PushResponse{Error: &pb.Error{Code: 4, Message: "too large"}}, new(pb.PushResponse))
	roundTrip(t, &pb.FetchRequest{Vault: "v", Commitment: 9}, new(pb.FetchRequest))
	roundTrip(t, &pb.Frame{Entry: &pb.EntryHeader{Owner: o, Vault: "v", Digest: d, Size: 9, ReceivedUnixNano: 5,
		Commitment: 3, Slot: 1, CopyIndex: 1, Copies: 3, CommitPath: path(2)}}, new(pb.Frame))
	roundTrip(t, &pb.Frame{End: &pb.End{Count: 3}}, new(pb.Frame))
	roundTrip(t, &pb.Frame{End: &pb.End{}}, new(pb.Frame))
	roundTrip(t, &pb.Frame{Error: &pb.Error{Code: 2}}, new(pb.Frame))
	roundTrip(t, &pb.Heartbeat{Node: o, Blobs: 1, Bytes: 2, QuotaBlobs: 3, QuotaBytes: 4, TimeUnixNano: 5, Signature: d}, new(pb.Heartbeat))
	roundTrip(t, &pb.RecoveryRequest{Owner: o, Nonce: d, TimeUnixNano: 5, Addrs: [][]byte{{1, 2}, {}, {3}}, Signature: d}, new(pb.RecoveryRequest))
	roundTrip(t, &pb.ReturnOffer{Nonce: d[:16], Count: 2, TimeUnixNano: 1700000000123456789}, new(pb.ReturnOffer))
	roundTrip(t, &pb.ReturnOffer{}, new(pb.ReturnOffer))
	roundTrip(t, &pb.ReturnReply{Send: true}, new(pb.ReturnReply))
	roundTrip(t, &pb.ReturnReply{}, new(pb.ReturnReply))
}

// TestUnsignedIsAPrefix: the signed bytes of each signed message are its
// encoding without the signature, the last field, so a verifier computing
// them from the decoded message gets exactly what the signer signed.
func TestUnsignedIsAPrefix(t *testing.T) {
	d := bytes.Repeat([]byte{7}, 32)
	r := &pb.Receipt{Holder: d, Commitment: 1, Size: 2, CopyRoot: d, Signature: bytes.Repeat([]byte{9}, 64)}
	if b := r.Marshal(); !bytes.HasPrefix(b, r.Unsigned()) || len(r.Unsigned()) >= len(b) {
		t.Fatal("receipt: unsigned bytes are not the encoding without the signature")
	}
	if r.Signature == nil {
		t.Fatal("Unsigned cleared the caller's signature")
	}
	h := &pb.Heartbeat{Node: d, Blobs: 1, Signature: d}
	if !bytes.HasPrefix(h.Marshal(), h.Unsigned()) {
		t.Fatal("heartbeat")
	}
	q := &pb.RecoveryRequest{Owner: d, Addrs: [][]byte{{1}}, Signature: d}
	if !bytes.HasPrefix(q.Marshal(), q.Unsigned()) {
		t.Fatal("recovery request")
	}
}

func TestStrict(t *testing.T) {
	tag := func(b []byte, n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(b, n, typ) }
	dupSize := protowire.AppendVarint(tag(protowire.AppendVarint(tag(nil, 4, protowire.VarintType), 1), 4, protowire.VarintType), 2)
	outOfOrder := protowire.AppendVarint(tag(protowire.AppendVarint(tag(nil, 4, protowire.VarintType), 1), 1, protowire.VarintType), 2)
	wrongType := protowire.AppendBytes(tag(nil, 1, protowire.BytesType), []byte{1})
	unknownField := protowire.AppendVarint(tag(nil, 9, protowire.VarintType), 1)
	zeroWritten := protowire.AppendVarint(tag(nil, 4, protowire.VarintType), 0)
	longVarint := append(tag(nil, 4, protowire.VarintType), 0x81, 0x00)
	truncated := []byte{0x2a, 0x05, 1, 2}
	nestedUnknown := protowire.AppendBytes(tag(nil, 2, protowire.BytesType), unknownField)
	bothCases := append((&pb.PushResponse{Receipt: &pb.Receipt{}}).Marshal(), (&pb.PushResponse{Error: &pb.Error{}}).Marshal()...)
	twoFrames := append((&pb.Frame{End: &pb.End{}}).Marshal(), (&pb.Frame{Error: &pb.Error{}}).Marshal()...)
	badUTF8 := protowire.AppendBytes(tag(nil, 1, protowire.BytesType), []byte{0xff})
	cases := []struct {
		name string
		msg  message
		in   []byte
	}{
		{"duplicate field", new(pb.PushHeader), dupSize},
		{"fields out of order", new(pb.PushHeader), outOfOrder},
		{"wrong wire type", new(pb.PushHeader), wrongType},
		{"unknown field", new(pb.PushHeader), unknownField},
		{"default value written", new(pb.PushHeader), zeroWritten},
		{"long varint", new(pb.PushHeader), longVarint},
		{"truncated bytes", new(pb.PushHeader), truncated},
		{"unknown field in a nested message", new(pb.Frame), nestedUnknown},
		{"empty push response", new(pb.PushResponse), nil},
		{"push response with both cases", new(pb.PushResponse), bothCases},
		{"empty frame", new(pb.Frame), nil},
		{"frame with two cases", new(pb.Frame), twoFrames},
		{"reply not a bool", new(pb.ReturnReply), protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 2)},
		{"offer count out of range", new(pb.ReturnOffer), protowire.AppendVarint(tag(nil, 2, protowire.VarintType), 1<<33)},
		{"string not UTF-8", new(pb.FetchRequest), badUTF8},
		{"bad varint", new(pb.Heartbeat), []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, c := range cases {
		if err := c.msg.Unmarshal(c.in); !errors.Is(err, pb.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", c.name, err)
		}
	}
}

// FuzzDecode checks that no input makes a decoder panic, and that whatever
// decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add((&pb.PushHeader{Commitment: 2, Slot: 3, Size: 3, CommitPath: path(2)}).Marshal())
	f.Add((&pb.Frame{End: &pb.End{Count: 1}}).Marshal())
	f.Add((&pb.RecoveryRequest{Addrs: [][]byte{{1}}}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range []func() message{
			func() message { return new(pb.PushHeader) },
			func() message { return new(pb.Receipt) },
			func() message { return new(pb.PushResponse) },
			func() message { return new(pb.FetchRequest) },
			func() message { return new(pb.Frame) },
			func() message { return new(pb.Heartbeat) },
			func() message { return new(pb.RecoveryRequest) },
			func() message { return new(pb.ReturnOffer) },
			func() message { return new(pb.ReturnReply) },
		} {
			in := m()
			if in.Unmarshal(b) != nil {
				continue
			}
			if !bytes.Equal(in.Marshal(), b) {
				t.Fatalf("%T: accepted bytes that are not its encoding", in)
			}
			out := m()
			if err := out.Unmarshal(in.Marshal()); err != nil {
				t.Fatalf("%T: re-encoding does not decode: %v", in, err)
			}
			if !proto.Equal(in, out) {
				t.Fatalf("%T: re-encoding changed the message", in)
			}
		}
	})
}
