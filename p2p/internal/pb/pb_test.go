package pb_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/ksb-project/ksb/p2p/internal/pb"
	"google.golang.org/protobuf/encoding/protowire"
)

type message interface {
	Marshal() []byte
	Unmarshal([]byte) error
}

func roundTrip(t *testing.T, in, out message) {
	t.Helper()
	b := in.Marshal()
	if err := out.Unmarshal(b); err != nil {
		t.Fatalf("%T: unmarshal: %v", in, err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("%T: round trip:\n got %+v\nwant %+v", in, out, in)
	}
	if again := out.Marshal(); !bytes.Equal(again, b) {
		t.Fatalf("%T: re-encoding differs", in)
	}
}

func TestRoundTrip(t *testing.T) {
	d := bytes.Repeat([]byte{7}, 32)
	o := bytes.Repeat([]byte{2}, 33)
	r := &pb.Receipt{Holder: o, Owner: o, Vault: "v", Digest: d, Size: 60000, TimeUnixNano: 1700000000123456789, Signature: d}
	roundTrip(t, &pb.PushHeader{Owner: o, Vault: "thorpub1x", Digest: d, Size: 1 << 20}, new(pb.PushHeader))
	roundTrip(t, r, new(pb.Receipt))
	roundTrip(t, &pb.PushResponse{Receipt: r}, new(pb.PushResponse))
	roundTrip(t, &pb.PushResponse{Error: &pb.Error{Code: 4, Message: "too large"}}, new(pb.PushResponse))
	roundTrip(t, &pb.FetchRequest{Vault: "v", Digest: d}, new(pb.FetchRequest))
	roundTrip(t, &pb.Frame{Entry: &pb.EntryHeader{Owner: o, Vault: "v", Digest: d, Size: 9, ReceivedUnixNano: 5}}, new(pb.Frame))
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

func TestStrict(t *testing.T) {
	tag := func(b []byte, n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(b, n, typ) }
	dupSize := protowire.AppendVarint(tag(protowire.AppendVarint(tag(nil, 4, protowire.VarintType), 1), 4, protowire.VarintType), 2)
	wrongType := protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1)
	unknownField := protowire.AppendVarint(tag(nil, 9, protowire.VarintType), 1)
	fixed := protowire.AppendFixed32(tag(nil, 4, protowire.Fixed32Type), 1)
	truncated := []byte{0x0a, 0x05, 1, 2}
	bothCases := append((&pb.PushResponse{Receipt: &pb.Receipt{}}).Marshal(), (&pb.PushResponse{Error: &pb.Error{}}).Marshal()...)
	twoFrames := append((&pb.Frame{End: &pb.End{}}).Marshal(), (&pb.Frame{Error: &pb.Error{}}).Marshal()...)
	cases := []struct {
		name string
		msg  message
		in   []byte
	}{
		{"duplicate field", new(pb.PushHeader), dupSize},
		{"wrong wire type", new(pb.PushHeader), wrongType},
		{"unknown field", new(pb.PushHeader), unknownField},
		{"fixed32", new(pb.PushHeader), fixed},
		{"truncated bytes", new(pb.PushHeader), truncated},
		{"empty push response", new(pb.PushResponse), nil},
		{"push response with both cases", new(pb.PushResponse), bothCases},
		{"empty frame", new(pb.Frame), nil},
		{"frame with two cases", new(pb.Frame), twoFrames},
		{"reply not a bool", new(pb.ReturnReply), protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 2)},
		{"offer count out of range", new(pb.ReturnOffer), protowire.AppendVarint(tag(nil, 2, protowire.VarintType), 1<<33)},
		{"bad varint", new(pb.Heartbeat), []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, c := range cases {
		if err := c.msg.Unmarshal(c.in); !errors.Is(err, pb.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", c.name, err)
		}
	}
}

// FuzzDecode checks that no input makes a decoder panic, and that whatever
// decodes re-encodes to bytes that decode to the same message.
func FuzzDecode(f *testing.F) {
	f.Add((&pb.PushHeader{Owner: []byte{2, 3}, Vault: "v", Size: 3}).Marshal())
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
			out := m()
			if err := out.Unmarshal(in.Marshal()); err != nil {
				t.Fatalf("%T: re-encoding does not decode: %v", in, err)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("%T: re-encoding changed the message", in)
			}
		}
	})
}
