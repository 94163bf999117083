package p2p_test

import (
	"bytes"
	"context"
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

	"github.com/ksb-project/ksb/custody"
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

func (o *owner) push(t testing.TB, to *holder, c p2p.Copy) (*p2p.Receipt, error) {
	t.Helper()
	introduce(o.h, to.h)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p2p.Push(ctx, o.h, to.h.ID(), o.id, c)
}

// TestPushReceipt commits a share version of three copies to three holders
// and pushes each its copy: each stores exactly its copy with its custody,
// copy index and commit path, and answers a receipt that names them.
func TestPushReceipt(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	var accepted []store.Entry
	var hds []*holder
	for range 3 {
		hds = append(hds, newHolder(t, m, p2p.OnAccepted(func(e store.Entry) error { accepted = append(accepted, e); return nil })))
	}
	sh := m.commit(t, o.id, vaultA, 60<<10, 1, hds[0].id, hds[1].id, hds[2].id)

	for i, hd := range hds {
		c := sh.copy(t, i)
		r, err := o.push(t, hd, c)
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		// The owner checks the receipt with nothing but identity.Verify.
		if err := identity.Verify(hd.id.PubKey(), r.SignedMessage(), r.Signature); err != nil {
			t.Fatalf("receipt does not verify under the holder's key: %v", err)
		}
		if !bytes.Equal(r.Holder, hd.id.PubKey()) || !bytes.Equal(r.Pusher, o.id.PubKey()) || r.Custody != c.Custody ||
			r.CopyIndex != i || r.Size != int64(len(c.Blob)) || r.CopyRoot != sh.cm.CopyRoots[i] {
			t.Fatalf("receipt %+v does not describe copy %d", r, i)
		}
		e, got, err := hd.st.Get(c.Custody)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.Blob) || !e.Received.Equal(r.Time) || e.CopyIndex != i || e.Copies != 3 ||
			e.Vault != vaultA || !bytes.Equal(e.Owner, o.id.PubKey()) || len(e.CommitPath) != len(c.CommitPath) {
			t.Fatalf("stored entry %+v differs from the push", e)
		}
		// What it stored is all it needs to prove any segment.
		p, err := custody.ProveHeld(got, e.CopyIndex, e.Copies, e.CommitPath, 7)
		if err != nil {
			t.Fatal(err)
		}
		if err := custody.Verify(sh.cm.Root, sh.cm.Size, 3, i, 7, p); err != nil {
			t.Fatalf("proof from the stored copy: %v", err)
		}
		if n := waitCounter(t, hd.reg, "ksb_p2p_requests_total", map[string]string{"protocol": "push", "direction": "in", "result": "accepted"}, 1); n != 1 {
			t.Fatalf("accepted pushes metric = %v", n)
		}
		if n := waitCounter(t, hd.reg, "ksb_p2p_blob_bytes_total", map[string]string{"protocol": "push", "direction": "in"}, float64(len(c.Blob))); n != float64(len(c.Blob)) {
			t.Fatalf("bytes metric = %v", n)
		}
	}
	if len(accepted) != 3 {
		t.Fatalf("OnAccepted called %d times", len(accepted))
	}

	// The receipt survives encoding, and any change to it breaks it.
	r, err := o.push(t, hds[0], sh.copy(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := r.MarshalBinary()
	var back p2p.Receipt
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(); err != nil {
		t.Fatal(err)
	}
	back.Custody.Slot++
	if err := back.Verify(); !errors.Is(err, p2p.ErrBadReceipt) {
		t.Fatalf("tampered receipt: err = %v", err)
	}
}

// TestPushOverQUIC pushes over the QUIC transport only.
func TestPushOverQUIC(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	hd := newHolder(t, m)
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
	if _, err := p2p.Push(context.Background(), o.h, hd.h.ID(), o.id, m.place(t, o.id, hd, vaultA, 1000, 2)); err != nil {
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

// header is the push header of c, with f applied.
func header(c p2p.Copy, f func(*pb.PushHeader)) []byte {
	h := &pb.PushHeader{
		Commitment: c.Custody.Commitment, Slot: c.Custody.Slot, CopyIndex: uint32(c.CopyIndex),
		Size: uint64(len(c.Blob)), CommitPath: c.CommitPath, Owner: c.Owner,
	}
	if f != nil {
		f(h)
	}
	return frame(h.Marshal())
}

// TestPushRefusals feeds each bad push the holder must refuse and checks the
// error code, that the client sees the matching sentinel, and that nothing
// was stored.
func TestPushRefusals(t *testing.T) {
	o := newOwner(t)
	other := newOwner(t)    // an active node that owns none of these
	stranger := newOwner(t) // a peer that is not active
	elsewhere := newIdentity(t)

	type env struct {
		m  *members
		hd *holder
		c  p2p.Copy // o's copy, assigned to hd
		sh *share
	}
	cases := []struct {
		name string
		opts []p2p.Option
		// mod changes the fake chain before the push
		mod func(e *env)
		// either a well-formed Push of e.c (after edit) by who, or raw bytes
		who  func(e *env) *owner
		edit func(e *env, c *p2p.Copy)
		raw  func(e *env) []byte
		code p2p.Code
		want error
	}{
		{name: "pusher is not the owner", who: func(*env) *owner { return other },
			code: p2p.CodeNotOwner, want: p2p.ErrNotOwner},
		{name: "pusher not active", who: func(*env) *owner { return stranger }, code: p2p.CodeNotActive, want: p2p.ErrNotActive},
		// Refused before the copy is read, while the client is still
		// sending more than a stream window: the client must stop, not hang.
		{name: "pusher not active, largest copy", who: func(*env) *owner { return stranger },
			edit: func(_ *env, c *p2p.Copy) { c.Blob = blob(p2p.MaxBlobSize, 9) }, code: p2p.CodeNotActive, want: p2p.ErrNotActive},
		{name: "custody assigned to another holder",
			mod: func(e *env) {
				e.c = e.m.commit(t, o.id, vaultA, 5000, 3, elsewhere).copy(t, 0)
			}, code: p2p.CodeNotAssigned, want: p2p.ErrNotAssigned},
		{name: "custody not on chain",
			edit: func(_ *env, c *p2p.Copy) { c.Custody.Commitment += 1000 }, code: p2p.CodeUnknownCustody, want: p2p.ErrUnknownCustody},
		{name: "custody failed", mod: func(e *env) { e.m.update(e.c.Custody, func(c *p2p.Custody) { c.Failed = true }) },
			code: p2p.CodeNotLive, want: p2p.ErrNotLive},
		{name: "commitment superseded", mod: func(e *env) { e.m.update(e.c.Custody, func(c *p2p.Custody) { c.Live = false }) },
			code: p2p.CodeNotLive, want: p2p.ErrNotLive},
		{name: "wrong copy index", mod: func(e *env) {
			e.sh = e.m.commit(t, o.id, vaultA, 5000, 3, e.hd.id, elsewhere)
			e.c = e.sh.copy(t, 0)
		}, edit: func(e *env, c *p2p.Copy) { *c = e.sh.copy(t, 1); c.Custody.Slot = 0 }, code: p2p.CodeWrongCopy, want: p2p.ErrWrongCopy},
		{name: "wrong size", edit: func(_ *env, c *p2p.Copy) { c.Blob = append(c.Blob, 1) }, code: p2p.CodeWrongCopy, want: p2p.ErrWrongCopy},
		{name: "owner key not the commitment's", raw: func(e *env) []byte {
			return append(header(e.c, func(h *pb.PushHeader) { h.Owner = other.id.PubKey() }), e.c.Blob...)
		}, code: p2p.CodeWrongCopy, want: p2p.ErrWrongCopy},
		// The right size and index, another copy's bytes: its root is not
		// the committed one (a holder cannot be fed a copy it could not
		// prove, nor another holder's).
		{name: "copy does not match the committed root", mod: func(e *env) {
			e.sh = e.m.commit(t, o.id, vaultA, 5000, 3, e.hd.id, elsewhere)
			e.c = e.sh.copy(t, 0)
		}, edit: func(e *env, c *p2p.Copy) { c.Blob = e.sh.copies[1] }, code: p2p.CodeBadCopy, want: p2p.ErrBadCopy},
		{name: "commit path does not reach the root", mod: func(e *env) {
			e.sh = e.m.commit(t, o.id, vaultA, 5000, 3, e.hd.id, elsewhere)
			e.c = e.sh.copy(t, 0)
		}, edit: func(e *env, c *p2p.Copy) { c.CommitPath = [][]byte{bytes.Repeat([]byte{1}, 32)} }, code: p2p.CodeBadCopy, want: p2p.ErrBadCopy},
		{name: "commit path of the wrong shape", mod: func(e *env) {
			e.sh = e.m.commit(t, o.id, vaultA, 5000, 3, e.hd.id, elsewhere)
			e.c = e.sh.copy(t, 0)
		}, edit: func(e *env, c *p2p.Copy) { c.CommitPath = append(c.CommitPath, c.CommitPath[0]) }, code: p2p.CodeBadCopy, want: p2p.ErrBadCopy},
		{name: "over the size cap (option)", opts: []p2p.Option{p2p.WithMaxBlobSize(4096)}, code: p2p.CodeTooLarge, want: p2p.ErrTooLarge},
		// No copy bytes follow: the refusal must come from the header alone,
		// before anything is allocated or read.
		{name: "announced size far over the cap", raw: func(e *env) []byte {
			return header(e.c, func(h *pb.PushHeader) { h.Size = 1 << 40 })
		}, code: p2p.CodeTooLarge, want: p2p.ErrTooLarge},
		{name: "truncated copy", raw: func(e *env) []byte { return append(header(e.c, nil), e.c.Blob[:len(e.c.Blob)/2]...) },
			code: p2p.CodeTruncated, want: p2p.ErrTruncated},
		{name: "truncated header", raw: func(e *env) []byte { return header(e.c, nil)[:20] }, code: p2p.CodeTruncated, want: p2p.ErrTruncated},
		{name: "over copy quota", opts: []p2p.Option{p2p.WithQuota(1, 1<<20)},
			mod: func(e *env) {
				if _, err := o.push(t, e.hd, e.m.place(t, o.id, e.hd, vaultB, 100, 8)); err != nil {
					t.Fatalf("first push: %v", err)
				}
			}, code: p2p.CodeOverQuota, want: p2p.ErrOverQuota},
		{name: "over byte quota", opts: []p2p.Option{p2p.WithQuota(10, 4999)}, code: p2p.CodeOverQuota, want: p2p.ErrOverQuota},
		{name: "garbage header", raw: func(*env) []byte { return frame([]byte{0xff, 0xff, 0xff}) }, code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "header over its cap", raw: func(*env) []byte { return frame(make([]byte, 4096)) }, code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "slot over 255", raw: func(e *env) []byte {
			return append(header(e.c, func(h *pb.PushHeader) { h.Slot = 256 }), e.c.Blob...)
		}, code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "commit path over 6 hashes", raw: func(e *env) []byte {
			return header(e.c, func(h *pb.PushHeader) { h.CommitPath = make([][]byte, 7) })
		}, code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "no owner key", raw: func(e *env) []byte { return header(e.c, func(h *pb.PushHeader) { h.Owner = nil }) },
			code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "empty copy", raw: func(e *env) []byte { return header(e.c, func(h *pb.PushHeader) { h.Size = 0 }) },
			code: p2p.CodeMalformed, want: p2p.ErrMalformed},
		{name: "chain unreachable for a lookup", mod: func(e *env) { e.m.with(func() { e.m.lazy, e.m.down = true, true }) },
			code: p2p.CodeBusy, want: p2p.ErrBusy},
		{name: "over the lookup rate", opts: []p2p.Option{p2p.WithLookupRate(1, time.Hour)},
			mod: func(e *env) {
				e.m.with(func() { e.m.lazy = true })
				if _, err := o.push(t, e.hd, e.m.place(t, o.id, e.hd, vaultB, 100, 8)); err != nil {
					t.Fatalf("first push: %v", err)
				}
			}, code: p2p.CodeRateLimited, want: p2p.ErrRateLimited},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var accepted int
			m := newMembers(o.id, other.id)
			opts := append([]p2p.Option{p2p.OnAccepted(func(store.Entry) error { accepted++; return nil })}, c.opts...)
			e := &env{m: m, hd: newHolder(t, m, opts...)}
			e.c = m.place(t, o.id, e.hd, vaultA, 5000, 3)
			if c.mod != nil {
				c.mod(e)
				accepted = 0
			}
			before, _ := e.hd.st.Entries(nil)
			refusalsBefore := counter(t, e.hd.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "push", "reason": c.code.String()})
			var err error
			who := o
			if c.who != nil {
				who = c.who(e)
			}
			switch {
			case c.raw != nil:
				resp, rerr := rawPush(t, who.h, e.hd, c.raw(e))
				if rerr != nil {
					t.Fatalf("no response: %v", rerr)
				}
				if resp.Error == nil {
					t.Fatalf("got a receipt, want refusal %v", c.code)
				}
				err = &p2p.RefusedError{Code: p2p.Code(resp.Error.Code), Message: resp.Error.Message}
			default:
				cp := e.c
				if c.edit != nil {
					c.edit(e, &cp)
				}
				_, err = who.push(t, e.hd, cp)
			}
			var ref *p2p.RefusedError
			if !errors.As(err, &ref) || ref.Code != c.code || !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want refusal %v (%v)", err, c.code, c.want)
			}
			after, _ := e.hd.st.Entries(nil)
			if len(after) != len(before) || accepted != 0 {
				t.Fatalf("store went from %d to %d entries, %d accepted", len(before), len(after), accepted)
			}
			if n := counter(t, e.hd.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "push", "reason": c.code.String()}); n != refusalsBefore+1 {
				t.Fatalf("refusal metric for %v = %v", c.code, n)
			}
		})
	}
}

// TestPushLooksUpNewCustodies: a push for a custody the holder's view does
// not have yet (the commit's block is newer than its last poll) is checked
// against the chain with one lookup and accepted; the lookups a peer causes
// are rate-limited, and a custody the view has costs none.
func TestPushLooksUpNewCustodies(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	m.with(func() { m.lazy = true })
	hd := newHolder(t, m, p2p.WithLookupRate(2, time.Hour))
	for i := range 2 {
		if _, err := o.push(t, hd, m.place(t, o.id, hd, vaultA, 100, byte(i))); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if n := m.lookupCount(); n != 2 {
		t.Fatalf("%d lookups, want 2", n)
	}
	_, err := o.push(t, hd, m.place(t, o.id, hd, vaultA, 100, 5))
	if !errors.Is(err, p2p.ErrRateLimited) {
		t.Fatalf("third lookup: %v, want ErrRateLimited", err)
	}
	m.with(func() { m.lazy = false })
	if _, err := o.push(t, hd, m.place(t, o.id, hd, vaultA, 100, 6)); err != nil {
		t.Fatalf("push of a cached custody: %v", err)
	}
	if n := m.lookupCount(); n != 2 {
		t.Fatalf("%d lookups after the rate limit and a cached push, want 2", n)
	}
}

// TestPushOnlyFromOwner: push carries copies from their owner only; even
// the chain's repair source of a custody is refused (it sends over
// RepairProtocol, repair_test.go), and the owner's push still passes.
func TestPushOnlyFromOwner(t *testing.T) {
	o, src := newOwner(t), newOwner(t)
	m := newMembers(o.id, src.id)
	hd := newHolder(t, m)
	c := m.place(t, o.id, hd, vaultA, 3000, 1)
	m.update(c.Custody, func(cu *p2p.Custody) { cu.Source = src.id.Address(identity.DefaultHRP) })
	if _, err := src.push(t, hd, c); !errors.Is(err, p2p.ErrNotOwner) {
		t.Fatalf("push by the repair source: %v, want ErrNotOwner", err)
	}
	if _, _, err := hd.st.Get(c.Custody); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused push stored a copy: %v", err)
	}
	r, err := o.push(t, hd, c)
	if err != nil {
		t.Fatalf("push by the owner: %v", err)
	}
	if !bytes.Equal(r.Pusher, o.id.PubKey()) {
		t.Fatalf("receipt pusher %x", r.Pusher)
	}
}

func TestPushDuplicate(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	var accepted []store.Entry
	hd := newHolder(t, m, p2p.OnAccepted(func(e store.Entry) error { accepted = append(accepted, e); return nil }))
	c := m.place(t, o.id, hd, vaultA, 3000, 5)

	r1, err := o.push(t, hd, c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := o.push(t, hd, c)
	if err != nil {
		t.Fatalf("duplicate push: %v", err)
	}
	if !again.Time.Equal(r1.Time) || again.CopyRoot != r1.CopyRoot {
		t.Fatalf("duplicate receipt %+v differs from the first %+v", again, r1)
	}
	// A duplicate is acknowledged again, so its attestation is queued again
	// (idempotently) in case the first queueing was lost.
	if len(accepted) != 2 || accepted[1].Custody != c.Custody {
		t.Fatalf("after duplicate: %d accepted", len(accepted))
	}
	// A new version is a new commitment, held beside the old one until the
	// chain drops the old custody.
	c2 := m.place(t, o.id, hd, vaultA, 4000, 6)
	if _, err := o.push(t, hd, c2); err != nil {
		t.Fatal(err)
	}
	if entries, _ := hd.st.Entries(nil); len(entries) != 2 {
		t.Fatalf("store holds %d entries", len(entries))
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
	m := newMembers(o.id)
	sh := m.commit(t, o.id, vaultA, 1000, 7, liar)
	c := sh.copy(t, 0)
	cases := map[string]func(r *p2p.Receipt){
		"signed by another key": func(r *p2p.Receipt) {
			r.Holder = impostor.PubKey()
			r.Signature = impostor.Sign(r.SignedMessage())
		},
		"wrong copy root": func(r *p2p.Receipt) {
			r.CopyRoot[0] ^= 1
			r.Signature = liar.Sign(r.SignedMessage())
		},
		"another custody": func(r *p2p.Receipt) {
			r.Custody.Slot++
			r.Signature = liar.Sign(r.SignedMessage())
		},
		"another pusher": func(r *p2p.Receipt) {
			r.Pusher = impostor.PubKey()
			r.Signature = liar.Sign(r.SignedMessage())
		},
		"bad signature": func(r *p2p.Receipt) { r.Signature[5] ^= 1 },
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			h.SetStreamHandler(p2p.PushProtocol, func(s network.Stream) {
				defer s.Close()
				io.Copy(io.Discard, s)
				r := &p2p.Receipt{Holder: liar.PubKey(), Pusher: o.id.PubKey(), Custody: c.Custody, CopyIndex: 0,
					Size: int64(len(c.Blob)), CopyRoot: sh.cm.CopyRoots[0], Time: time.Now()}
				r.Signature = liar.Sign(r.SignedMessage())
				corrupt(r)
				enc, _ := r.MarshalBinary()
				s.Write(frame(appendMsg(1, enc)))
			})
			introduce(o.h, h)
			_, err := p2p.Push(context.Background(), o.h, h.ID(), o.id, c)
			if !errors.Is(err, p2p.ErrBadReceipt) {
				t.Fatalf("err = %v, want ErrBadReceipt", err)
			}
		})
	}
}

func appendMsg(num protowire.Number, msg []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), msg)
}

// TestPushRefusesBadCopyLocally: Push refuses, before opening a stream,
// what no holder would accept.
func TestPushRefusesBadCopyLocally(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	hd := newHolder(t, m)
	c := m.place(t, o.id, hd, vaultA, 1000, 1)
	for name, edit := range map[string]func(*p2p.Copy){
		"empty":         func(c *p2p.Copy) { c.Blob = nil },
		"too large":     func(c *p2p.Copy) { c.Blob = make([]byte, p2p.MaxBlobSize+1) },
		"slot 256":      func(c *p2p.Copy) { c.Custody.Slot = 256 },
		"copy index 64": func(c *p2p.Copy) { c.CopyIndex = 64 },
		"negative copy": func(c *p2p.Copy) { c.CopyIndex = -1 },
		"long path":     func(c *p2p.Copy) { c.CommitPath = make([][]byte, 7) },
		"bad owner key": func(c *p2p.Copy) { c.Owner = []byte{2, 3} },
	} {
		cp := c
		edit(&cp)
		if _, err := o.push(t, hd, cp); err == nil || errors.As(err, new(*p2p.RefusedError)) {
			t.Errorf("%s: err = %v, want a local refusal", name, err)
		}
	}
	if n := counter(t, hd.reg, "ksb_p2p_requests_total", map[string]string{"protocol": "push", "direction": "in"}); n != 0 {
		t.Fatalf("%v streams reached the holder", n)
	}
}

// TestManyPushes pushes more copies in a row than the per-peer stream limit
// of the push service: every stream must be released when it is done.
func TestManyPushes(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	hd := newHolder(t, m)
	for i := 0; i < 20; i++ {
		if _, err := o.push(t, hd, m.place(t, o.id, hd, vaultA, 2000, byte(i))); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if entries, _ := hd.st.Entries(nil); len(entries) != 20 {
		t.Fatalf("%d entries stored", len(entries))
	}
}

// TestPushRefusedWhenNotRecorded: a holder that cannot record an accepted
// copy (its attestation queue fails) sends no receipt; the owner's retry,
// once recording works, is acknowledged.
func TestPushRefusedWhenNotRecorded(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	var fail atomic.Bool
	fail.Store(true)
	hd := newHolder(t, m, p2p.OnAccepted(func(store.Entry) error {
		if fail.Load() {
			return errors.New("queue unavailable")
		}
		return nil
	}))
	c := m.place(t, o.id, hd, vaultA, 2000, 9)
	if _, err := o.push(t, hd, c); !errors.Is(err, p2p.ErrInternal) {
		t.Fatalf("push with a failing record: %v, want ErrInternal", err)
	}
	fail.Store(false)
	if _, err := o.push(t, hd, c); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

// TestPushCopyRootGiven checks that Push uses the copy root the owner
// gives instead of hashing the copy again: the right root gives the same
// receipt, a wrong one makes the owner's Push fail with ErrBadReceipt
// (the holder's receipt names the root of what it stored).
func TestPushCopyRootGiven(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	hd := newHolder(t, m)
	sh := m.commit(t, o.id, vaultA, 5000, 3, hd.id)
	c := sh.copy(t, 0)
	c.CopyRoot = sh.cm.CopyRoots[0]
	r, err := o.push(t, hd, c)
	if err != nil || r.CopyRoot != sh.cm.CopyRoots[0] {
		t.Fatalf("push with the right root: %v", err)
	}
	c.CopyRoot[0] ^= 1
	if _, err := o.push(t, hd, c); !errors.Is(err, p2p.ErrBadReceipt) {
		t.Fatalf("push with a wrong root: %v, want ErrBadReceipt", err)
	}
}

// TestPushWritesAcceptRecords checks that the records of AcceptRecords are
// stored with the copy before the receipt goes out (also for a duplicate
// push), that Done hears whether the write committed, and that a copy
// refused before the write (BAD_COPY) asks for no records.
func TestPushWritesAcceptRecords(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	var asked, committed atomic.Int32
	hd := newHolder(t, m, p2p.AcceptRecords(func(e store.Entry) p2p.Acceptance {
		asked.Add(1)
		key := fmt.Sprintf("q/%d", e.Custody.Commitment)
		return p2p.Acceptance{
			Records: []store.MetaWrite{{Key: key, Value: []byte("queued")}},
			Done: func(ok bool) {
				if ok {
					committed.Add(1)
				}
			},
		}
	}))
	c := m.place(t, o.id, hd, vaultA, 3000, 5)
	for range 2 {
		if _, err := o.push(t, hd, c); err != nil {
			t.Fatal(err)
		}
		// The receipt is out: the record is durable with the copy.
		if v, err := hd.st.GetMeta(fmt.Sprintf("q/%d", c.Custody.Commitment)); err != nil || string(v) != "queued" {
			t.Fatalf("record after the receipt: %q, %v", v, err)
		}
		if err := hd.st.DeleteMeta(fmt.Sprintf("q/%d", c.Custody.Commitment)); err != nil {
			t.Fatal(err)
		}
	}
	if a, c := asked.Load(), committed.Load(); a != 2 || c != 2 {
		t.Fatalf("records asked %d times, committed %d; want 2, 2", a, c)
	}
	bad := m.place(t, o.id, hd, vaultA, 3000, 6)
	bad.Blob = append([]byte(nil), bad.Blob...)
	bad.Blob[0] ^= 1
	bad.CopyRoot = [32]byte{}
	if _, err := o.push(t, hd, bad); !errors.Is(err, p2p.ErrBadCopy) {
		t.Fatalf("bad copy: %v, want ErrBadCopy", err)
	}
	if a := asked.Load(); a != 2 {
		t.Fatalf("a refused copy asked for records (%d calls)", a)
	}
}

// TestCopiesInFlight: a push counts as in flight from its admission until
// its copy is stored and OnAccepted has run (so a holder batching its
// attestations sees the push that woke it still coming in), and the count's
// drop to zero is signalled, after an accepted copy and after a refused one.
func TestCopiesInFlight(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	var svc atomic.Pointer[p2p.Service]
	var during atomic.Int64
	during.Store(-1)
	hd := newHolder(t, m, p2p.OnAccepted(func(store.Entry) error {
		during.Store(int64(svc.Load().CopiesInFlight()))
		return nil
	}))
	svc.Store(hd.svc)
	if n := hd.svc.CopiesInFlight(); n != 0 {
		t.Fatalf("in flight before any push: %d", n)
	}
	idle := func(what string) {
		t.Helper()
		select {
		case <-hd.svc.CopiesIdle():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no idle signal", what)
		}
		if n := hd.svc.CopiesInFlight(); n != 0 {
			t.Fatalf("%s: %d in flight", what, n)
		}
	}

	c := m.place(t, o.id, hd, vaultA, 3000, 5)
	if _, err := o.push(t, hd, c); err != nil {
		t.Fatal(err)
	}
	if got := during.Load(); got != 1 {
		t.Fatalf("in flight while OnAccepted ran: %d, want 1 (the push itself)", got)
	}
	idle("accepted push")

	bad := m.place(t, o.id, hd, vaultB, 3000, 6)
	bad.Blob = bytes.Clone(bad.Blob)
	bad.Blob[0] ^= 1
	if _, err := o.push(t, hd, bad); !errors.Is(err, p2p.ErrBadCopy) {
		t.Fatalf("push of a corrupted copy: %v, want ErrBadCopy", err)
	}
	idle("refused push")
}
