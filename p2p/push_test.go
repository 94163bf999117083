package p2p_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
	"github.com/ksb-project/ksb/store"
)

// owner is a node that pushes: a host with its identity.
type owner struct {
	id *identity.Identity
	h  host.Host
}

func newOwner(t testing.TB) *owner {
	id := newIdentity(t)
	return &owner{id: id, h: newHost(t, id)}
}

func (o *owner) push(t testing.TB, to *holder, vault string, b []byte) (*p2p.Receipt, error) {
	t.Helper()
	introduce(o.h, to.h)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p2p.Push(ctx, o.h, to.h.ID(), o.id, vault, b)
}

func TestPushReceipt(t *testing.T) {
	o := newOwner(t)
	var accepted []store.Entry
	hd := newHolder(t, newMembers(o.id), p2p.OnAccepted(func(e store.Entry) error { accepted = append(accepted, e); return nil }))
	b := blob(60<<10, 1)

	r, err := o.push(t, hd, vaultA, b)
	if err != nil {
		t.Fatal(err)
	}
	// The owner checks the receipt with nothing but identity.Verify.
	if err := identity.Verify(hd.id.PubKey(), r.SignedMessage(), r.Signature); err != nil {
		t.Fatalf("receipt does not verify under the holder's key: %v", err)
	}
	if !bytes.Equal(r.Holder, hd.id.PubKey()) || !bytes.Equal(r.Owner, o.id.PubKey()) || r.Vault != vaultA ||
		r.Digest != sha256.Sum256(b) || r.Size != int64(len(b)) {
		t.Fatalf("receipt %+v does not describe the push", r)
	}
	e, got, err := hd.st.Get(o.id.PubKey(), vaultA)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) || !e.Received.Equal(r.Time) {
		t.Fatalf("stored blob or time differs from the receipt")
	}
	if len(accepted) != 1 || accepted[0].Digest != r.Digest {
		t.Fatalf("OnAccepted called with %v", accepted)
	}
	if n := counter(t, hd.reg, "ksb_p2p_requests_total", map[string]string{"protocol": "push", "direction": "in", "result": "accepted"}); n != 1 {
		t.Fatalf("accepted pushes metric = %v", n)
	}
	if n := counter(t, hd.reg, "ksb_p2p_blob_bytes_total", map[string]string{"protocol": "push", "direction": "in"}); n != float64(len(b)) {
		t.Fatalf("bytes metric = %v", n)
	}

	// The receipt survives encoding, and any change to it breaks it.
	enc, _ := r.MarshalBinary()
	var back p2p.Receipt
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(); err != nil {
		t.Fatal(err)
	}
	back.Size++
	if err := back.Verify(); !errors.Is(err, p2p.ErrBadReceipt) {
		t.Fatalf("tampered receipt: err = %v", err)
	}
}

// TestPushOverQUIC pushes over the QUIC transport only.
func TestPushOverQUIC(t *testing.T) {
	o := newOwner(t)
	hd := newHolder(t, newMembers(o.id))
	var quic []multiaddr.Multiaddr
	for _, a := range hd.h.Addrs() {
		if strings.Contains(a.String(), "/quic-v1") {
			quic = append(quic, a)
		}
	}
	if len(quic) == 0 {
		t.Fatalf("holder listens on no QUIC address: %v", hd.h.Addrs())
	}
	if err := o.h.Connect(context.Background(), peer.AddrInfo{ID: hd.h.ID(), Addrs: quic}); err != nil {
		t.Fatal(err)
	}
	if _, err := p2p.Push(context.Background(), o.h, hd.h.ID(), o.id, vaultA, blob(1000, 2)); err != nil {
		t.Fatal(err)
	}
	for _, c := range o.h.Network().ConnsToPeer(hd.h.ID()) {
		if tr := c.ConnState().Transport; tr != "quic-v1" {
			t.Fatalf("connection over %q", tr)
		}
		if sec := c.ConnState().Security; sec != "" && sec != "/noise" {
			t.Fatalf("security %q", sec)
		}
	}
}

// rawPush opens a push stream from o to hd, writes the given bytes, closes
// its write side and returns the holder's response.
func rawPush(t *testing.T, from host.Host, to *holder, write []byte) (*pb.PushResponse, error) {
	t.Helper()
	introduce(from, to.h)
	s, err := from.NewStream(context.Background(), to.h.ID(), p2p.PushProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		s.Write(write)
		s.CloseWrite()
	}()
	b, err := io.ReadAll(s)
	if err != nil {
		return nil, err
	}
	n, m := protowire.ConsumeVarint(b)
	if m < 0 || int(n) != len(b)-m {
		t.Fatalf("response is not one frame: % x", b)
	}
	var resp pb.PushResponse
	if err := resp.Unmarshal(b[m:]); err != nil {
		t.Fatal(err)
	}
	return &resp, nil
}

func frame(msg []byte) []byte {
	return append(protowire.AppendVarint(nil, uint64(len(msg))), msg...)
}

func header(ownerKey []byte, vault string, b []byte, size uint64) []byte {
	d := sha256.Sum256(b)
	return frame((&pb.PushHeader{Owner: ownerKey, Vault: vault, Digest: d[:], Size: size}).Marshal())
}

// TestPushRefusals feeds each bad push the holder must refuse and checks the
// error code, that the client sees the matching sentinel, and that nothing
// was stored.
func TestPushRefusals(t *testing.T) {
	o := newOwner(t)
	stranger := newOwner(t) // a peer that is not active
	m := newMembers(o.id)
	b := blob(5000, 3)
	other := blob(5000, 4)

	cases := []struct {
		name string
		opts []p2p.Option
		// either a well-formed Push by who, or raw bytes from who
		who   *owner
		raw   []byte
		setup func(hd *holder)
		blob  []byte // for a well-formed Push; default b
		code  p2p.Code
		want  error
	}{
		{name: "not the owner named in the header", who: o,
			raw: append(header(stranger.id.PubKey(), vaultA, b, uint64(len(b))), b...), code: p2p.CodeNotOwner, want: p2p.ErrNotOwner},
		{name: "owner not active", who: stranger, code: p2p.CodeNotActive, want: p2p.ErrNotActive},
		// Refused before the blob is read, while the client is still sending
		// more than a stream window: the client must stop, not hang.
		{name: "owner not active, largest blob", who: stranger, blob: blob(p2p.MaxBlobSize, 9), code: p2p.CodeNotActive, want: p2p.ErrNotActive},
		{name: "over the size cap (option)", who: o, opts: []p2p.Option{p2p.WithMaxBlobSize(4096)}, code: p2p.CodeTooLarge, want: p2p.ErrTooLarge},
		// No blob bytes follow: the refusal must come from the header alone,
		// before anything is allocated or read.
		{name: "announced size far over the cap", who: o,
			raw: header(o.id.PubKey(), vaultA, b, 1<<40), code: p2p.CodeTooLarge, want: p2p.ErrTooLarge},
		{name: "digest mismatch", who: o,
			raw: append(header(o.id.PubKey(), vaultA, other, uint64(len(b))), b...), code: p2p.CodeDigestMismatch, want: p2p.ErrDigestMismatch},
		{name: "truncated blob", who: o,
			raw: append(header(o.id.PubKey(), vaultA, b, uint64(len(b))), b[:len(b)/2]...), code: p2p.CodeTruncated, want: p2p.ErrTruncated},
		{name: "truncated header", who: o,
			raw: header(o.id.PubKey(), vaultA, b, uint64(len(b)))[:20], code: p2p.CodeTruncated, want: p2p.ErrTruncated},
		{name: "over blob quota", who: o, opts: []p2p.Option{p2p.WithQuota(1, 1<<20)},
			setup: func(hd *holder) {
				if _, err := o.push(t, hd, vaultB, other); err != nil {
					t.Fatalf("first push: %v", err)
				}
			}, code: p2p.CodeOverQuota, want: p2p.ErrOverQuota},
		{name: "over byte quota", who: o, opts: []p2p.Option{p2p.WithQuota(10, 4999)}, code: p2p.CodeOverQuota, want: p2p.ErrOverQuota},
		{name: "garbage header", who: o, raw: frame([]byte{0xff, 0xff, 0xff}), code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "header over its cap", who: o, raw: frame(make([]byte, 4096)), code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "bad vault", who: o, raw: append(header(o.id.PubKey(), "a/b", b, uint64(len(b))), b...), code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "empty blob", who: o, raw: header(o.id.PubKey(), vaultA, nil, 0), code: p2p.CodeMalformed, want: p2p.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var accepted int
			opts := append([]p2p.Option{p2p.OnAccepted(func(store.Entry) error { accepted++; return nil })}, c.opts...)
			hd := newHolder(t, m, opts...)
			if c.setup != nil {
				c.setup(hd)
				accepted = 0
			}
			before, _ := hd.st.Entries(nil)
			var err error
			switch {
			case c.raw != nil:
				resp, rerr := rawPush(t, c.who.h, hd, c.raw)
				if rerr != nil {
					t.Fatalf("no response: %v", rerr)
				}
				if resp.Error == nil {
					t.Fatalf("got a receipt, want refusal %v", c.code)
				}
				err = &p2p.RefusedError{Code: p2p.Code(resp.Error.Code), Message: resp.Error.Message}
			default:
				pb := b
				if c.blob != nil {
					pb = c.blob
				}
				_, err = c.who.push(t, hd, vaultA, pb)
			}
			var ref *p2p.RefusedError
			if !errors.As(err, &ref) || ref.Code != c.code || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want refusal %v (%v)", err, c.code, c.want)
			}
			after, _ := hd.st.Entries(nil)
			if len(after) != len(before) || accepted != 0 {
				t.Fatalf("store went from %d to %d entries, %d accepted", len(before), len(after), accepted)
			}
			if n := counter(t, hd.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "push", "reason": c.code.String()}); n != 1 {
				t.Fatalf("refusal metric for %v = %v", c.code, n)
			}
		})
	}
}

func TestPushDuplicateAndReplace(t *testing.T) {
	o := newOwner(t)
	var accepted, replaced []store.Entry
	hd := newHolder(t, newMembers(o.id),
		p2p.OnAccepted(func(e store.Entry) error { accepted = append(accepted, e); return nil }),
		p2p.OnReplaced(func(e store.Entry) { replaced = append(replaced, e) }))
	v1, v2 := blob(3000, 5), blob(4000, 6)

	r1, err := o.push(t, hd, vaultA, v1)
	if err != nil {
		t.Fatal(err)
	}
	again, err := o.push(t, hd, vaultA, v1)
	if err != nil {
		t.Fatalf("duplicate push: %v", err)
	}
	if !again.Time.Equal(r1.Time) || again.Digest != r1.Digest {
		t.Fatalf("duplicate receipt %+v differs from the first %+v", again, r1)
	}
	// A duplicate is acknowledged again, so its attestation is queued again
	// (idempotently) in case the first queueing was lost.
	if len(accepted) != 2 || accepted[1].Digest != r1.Digest || len(replaced) != 0 {
		t.Fatalf("after duplicate: %d accepted, %d replaced", len(accepted), len(replaced))
	}

	r2, err := o.push(t, hd, vaultA, v2)
	if err != nil {
		t.Fatal(err)
	}
	if len(replaced) != 1 || replaced[0].Digest != r1.Digest || len(accepted) != 3 || accepted[2].Digest != r2.Digest {
		t.Fatalf("replace: accepted %v, replaced %v", accepted, replaced)
	}
	entries, _ := hd.st.Entries(nil)
	_, got, _ := hd.st.Get(o.id.PubKey(), vaultA)
	if len(entries) != 1 || !bytes.Equal(got, v2) {
		t.Fatalf("store holds %d entries, blob equal to v2: %v", len(entries), bytes.Equal(got, v2))
	}
	if n := counter(t, hd.reg, "ksb_p2p_requests_total", map[string]string{"protocol": "push", "result": "duplicate"}); n != 1 {
		t.Fatalf("duplicate metric = %v", n)
	}
}

// TestPushBadReceipt runs Push against holders that answer with receipts
// that must not be accepted.
func TestPushBadReceipt(t *testing.T) {
	o := newOwner(t)
	liar := newIdentity(t)
	h := newHost(t, liar)
	impostor := newIdentity(t)
	b := blob(1000, 7)
	cases := map[string]func(r *p2p.Receipt){
		"signed by another key": func(r *p2p.Receipt) {
			r.Holder = impostor.PubKey()
			r.Signature = impostor.Sign(r.SignedMessage())
		},
		"wrong digest": func(r *p2p.Receipt) {
			r.Digest[0] ^= 1
			r.Signature = liar.Sign(r.SignedMessage())
		},
		"bad signature": func(r *p2p.Receipt) { r.Signature[5] ^= 1 },
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			h.SetStreamHandler(p2p.PushProtocol, func(s network.Stream) {
				defer s.Close()
				io.Copy(io.Discard, s)
				r := &p2p.Receipt{Holder: liar.PubKey(), Owner: o.id.PubKey(), Vault: vaultA, Digest: sha256.Sum256(b), Size: int64(len(b)), Time: time.Now()}
				r.Signature = liar.Sign(r.SignedMessage())
				corrupt(r)
				enc, _ := r.MarshalBinary()
				s.Write(frame(appendMsg(1, enc)))
			})
			introduce(o.h, h)
			_, err := p2p.Push(context.Background(), o.h, h.ID(), o.id, vaultA, b)
			if !errors.Is(err, p2p.ErrBadReceipt) {
				t.Fatalf("err = %v, want ErrBadReceipt", err)
			}
		})
	}
}

func appendMsg(num protowire.Number, msg []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), msg)
}

// TestManyPushes pushes more blobs in a row than the per-peer stream limit
// of the push service: every stream must be released when it is done.
func TestManyPushes(t *testing.T) {
	o := newOwner(t)
	hd := newHolder(t, newMembers(o.id))
	for i := 0; i < 20; i++ {
		if _, err := o.push(t, hd, fmt.Sprintf("vault-%d", i), blob(2000, byte(i))); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if entries, _ := hd.st.Entries(nil); len(entries) != 20 {
		t.Fatalf("%d entries stored", len(entries))
	}
}

// TestPushRefusedWhenNotRecorded: a holder that cannot record an accepted
// blob (its attestation queue fails) sends no receipt; the owner's retry,
// once recording works, is acknowledged.
func TestPushRefusedWhenNotRecorded(t *testing.T) {
	o := newOwner(t)
	var fail atomic.Bool
	fail.Store(true)
	hd := newHolder(t, newMembers(o.id), p2p.OnAccepted(func(store.Entry) error {
		if fail.Load() {
			return errors.New("queue unavailable")
		}
		return nil
	}))
	v := blob(2000, 9)
	if _, err := o.push(t, hd, vaultA, v); !errors.Is(err, p2p.ErrInternal) {
		t.Fatalf("push with a failing record: %v, want ErrInternal", err)
	}
	fail.Store(false)
	if _, err := o.push(t, hd, vaultA, v); err != nil {
		t.Fatalf("retry: %v", err)
	}
}
