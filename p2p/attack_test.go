package p2p_test

// The adversarial suite (issue 8 items 2, 4, 5, 7; issue 14 item 4): attackers
// in-process — fresh identities, and active nodes gone bad — against real
// libp2p hosts and real Badger stores. Each test asserts that honest traffic
// still succeeds while the attack runs and that nothing the attacker sent was
// stored. Every loop is bounded; waits are on events (a stream ending, a
// verdict, a score), polled with a deadline where no event exists.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
	"github.com/ksb-project/ksb/store"
)

// attackTimeout bounds each attack test.
const attackTimeout = 2 * time.Minute

// maxAttackRounds bounds how often one attacking stream is reopened after
// the holder refused it.
const maxAttackRounds = 1000

// newClient is a fresh identity on a host that listens nowhere: an attacker
// costs the test no listener.
func newClient(t testing.TB) *owner {
	t.Helper()
	id := newIdentity(t)
	return &owner{id: id, h: newHostConfig(t, p2p.HostConfig{Identity: id})}
}

// serviceInbound is how many inbound streams are attached to a service of
// h's resource manager.
func serviceInbound(h host.Host, svc string) int {
	n := 0
	h.Network().ResourceManager().ViewService(svc, func(s network.ServiceScope) error {
		n = s.Stat().NumStreamsInbound
		return nil
	})
	return n
}

// flood keeps streams of one protocol open from attackers to a holder:
// each stream completes the protocol negotiation, writes pre (possibly
// nothing) and then waits; when the holder ends it, it is opened again, up
// to maxAttackRounds times, until stop.
type flood struct {
	stop     context.CancelFunc
	wg       sync.WaitGroup
	settled  atomic.Int32 // streams whose first round has ended
	rounds   atomic.Int32 // rounds ended, all streams
	received atomic.Int64 // bytes the attackers were sent
}

func startFlood(t *testing.T, attackers []*owner, perAttacker int, to peer.ID, proto protocol.ID, pre []byte) *flood {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &flood{stop: cancel}
	t.Cleanup(f.halt)
	for _, a := range attackers {
		for range perAttacker {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				for r := 0; r < maxAttackRounds && ctx.Err() == nil; r++ {
					s, err := a.h.NewStream(ctx, to, proto)
					if err == nil {
						stop := context.AfterFunc(ctx, func() { s.Reset() })
						s.Write(pre)
						n, _ := io.Copy(io.Discard, s)
						f.received.Add(n)
						stop()
						s.Reset()
					}
					if r == 0 {
						f.settled.Add(1)
					}
					f.rounds.Add(1)
					if err != nil {
						// Refused before it opened (by the holder's resource
						// manager): try again shortly, not in a hot loop.
						select {
						case <-ctx.Done():
						case <-time.After(10 * time.Millisecond):
						}
					}
				}
			}()
		}
	}
	return f
}

func (f *flood) halt() { f.stop(); f.wg.Wait() }

// waitUntil polls cond every 10 ms for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("%s: not reached within %v", what, d)
		}
	}
}

// pushLatencies pushes n copies from o to hd (each of a new commitment in
// m) and returns each push's time.
func pushLatencies(t *testing.T, m *members, o *owner, hd *holder, n int, tag string) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i := range n {
		c := m.place(t, o.id, hd, vaultA, 60<<10, byte(i))
		start := time.Now()
		if _, err := o.push(t, hd, c); err != nil {
			t.Fatalf("honest push %d (%s): %v", i, tag, err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestAttackStrangersHoldPushStreams (issue 8.2): ten fresh identities, each
// holding four push streams open and sending nothing after the protocol
// negotiation (and reopening them when refused). Before the fix the streams
// took every slot of the push service for the whole push deadline and honest
// pushes failed with "resource limit exceeded". Now a stranger is refused
// NOT_ACTIVE before anything is read or reserved, and honest pushes go
// through. It logs the honest push latency without and with the attack.
func TestAttackStrangersHoldPushStreams(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	hd := newHolder(t, m)
	introduce(o.h, hd.h)
	const rounds = 8
	quiet := pushLatencies(t, m, o, hd, rounds, "quiet")

	const attackers, perAttacker = 10, 4
	var as []*owner
	for range attackers {
		a := newClient(t)
		connect(t, a.h, hd.h)
		as = append(as, a)
	}
	f := startFlood(t, as, perAttacker, hd.h.ID(), p2p.PushProtocol, nil)
	// The attack is in place once every stream either ended (refused) or
	// holds a slot of the push service.
	waitUntil(t, 30*time.Second, "attack streams settled", func() bool {
		return int(f.settled.Load())+serviceInbound(hd.h, p2p.PushServiceName) >= attackers*perAttacker
	})

	loud := pushLatencies(t, m, o, hd, rounds, "attacked")
	t.Logf("honest push of 60 KiB, median of %d: %v quiet, %v with %d stranger streams held open (%d refused stranger streams during the attack)",
		rounds, median(quiet), median(loud), attackers*perAttacker, f.rounds.Load())
	f.halt()

	entries, err := hd.st.Entries(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !bytes.Equal(e.Owner, o.id.PubKey()) {
			t.Fatalf("the holder stored a blob of %x", e.Owner)
		}
	}
	if len(entries) != 2*rounds {
		t.Fatalf("%d entries stored, want %d", len(entries), 2*rounds)
	}
	if n := counter(t, hd.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "push", "reason": "not_active"}); n < attackers*perAttacker {
		t.Fatalf("%v not_active refusals, want one per stranger stream at least", n)
	}
}

// TestAttackActiveNodeStallsHeader (issue 8.2, an active node gone bad): an
// active node opens more push streams than its allowance and stalls each one
// inside the header. It gets no more than MaxPushStreamsPerPeer, those are
// taken back at the header deadline rather than the push deadline, and another
// active node's push goes through meanwhile.
func TestAttackActiveNodeStallsHeader(t *testing.T) {
	o, bad := newOwner(t), newOwner(t)
	m := newMembers(o.id, bad.id)
	hd := newHolder(t, m, p2p.WithHeaderTimeout(time.Second))
	connect(t, bad.h, hd.h)

	const streams = p2p.MaxPushStreamsPerPeer + 2
	ended := make(chan error, streams)
	for range streams {
		go func() {
			s, err := bad.h.NewStream(context.Background(), hd.h.ID(), p2p.PushProtocol)
			if err != nil {
				ended <- err
				return
			}
			defer s.Reset()
			// One byte of a length prefix that announces more to come.
			s.Write([]byte{0x80})
			_, err = io.Copy(io.Discard, s)
			ended <- err
		}()
	}
	if _, err := o.push(t, hd, m.place(t, o.id, hd, vaultA, 5000, 1)); err != nil {
		t.Fatalf("honest push while an active node stalls: %v", err)
	}
	// Every stalled stream is ended by the holder: two at once (over the
	// allowance), the others at the header deadline (1 s here), long before
	// the push deadline (30 s).
	timeout := time.After(10 * time.Second)
	for i := range streams {
		select {
		case <-ended:
		case <-timeout:
			t.Fatalf("%d of %d stalled streams still held after 10 s", streams-i, streams)
		}
	}
	// The bad node's slots are free again: its own honest push works.
	if _, err := bad.push(t, hd, m.place(t, bad.id, hd, vaultB, 5000, 2)); err != nil {
		t.Fatalf("push after the stall: %v", err)
	}
	if n := counter(t, hd.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "push", "reason": "busy"}); n < 2 {
		t.Fatalf("%v busy refusals, want the 2 streams over the allowance", n)
	}
}

// TestAttackStrangersHoldFetchStreams (issue 8.2): eight fresh identities ×
// two fetch streams, sending nothing after the negotiation, while a node
// that left the active set (a stranger to the chain) recovers its blob from
// the holder. Before the fix the strangers took every fetch slot and the
// recovery failed at once.
func TestAttackStrangersHoldFetchStreams(t *testing.T) {
	rec := newOwner(t)
	m := newMembers(rec.id)
	hd := newHolder(t, m)
	c := m.place(t, rec.id, hd, vaultA, 60<<10, 3)
	share := c.Blob
	if _, err := rec.push(t, hd, c); err != nil {
		t.Fatal(err)
	}
	m.remove(rec.id) // it left at a churn, then lost its disk

	const attackers, perAttacker = 8, 2
	var as []*owner
	for range attackers {
		a := newClient(t)
		connect(t, a.h, hd.h)
		as = append(as, a)
	}
	f := startFlood(t, as, perAttacker, hd.h.ID(), p2p.FetchProtocol, nil)
	waitUntil(t, 30*time.Second, "attack streams settled", func() bool {
		return int(f.settled.Load())+serviceInbound(hd.h, p2p.FetchServiceName) >= attackers*perAttacker
	})

	got, err := fetch(t, rec, hd, vaultA, 0)
	if err != nil {
		t.Fatalf("recovering owner's fetch while strangers hold fetch streams: %v", err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].Blob, share) {
		t.Fatalf("fetched %d blobs", len(got))
	}
	f.halt()
	// The strangers got refusal frames, never a blob byte.
	if n := counter(t, hd.reg, "ksb_p2p_blob_bytes_total", map[string]string{"protocol": "fetch", "direction": "in"}); n != float64(len(share)) {
		t.Fatalf("holder sent %v blob bytes, want only the owner's %d", n, len(share))
	}
	if f.received.Load() > int64(attackers*perAttacker*int(f.rounds.Load())*1024) {
		t.Fatalf("strangers received %d bytes", f.received.Load())
	}
}

// TestAttackStrangerFetchBudgetIsGlobal (issue 8.7): fresh identities fetch
// again and again, and five nodes that left the active set (so their blobs
// are held here) fetch once each. Fresh identities are refused NOT_FOUND and
// spend nothing; the five share one budget of 3 fetches, although each has a
// fresh per-peer budget; an active node's fetch is untouched.
func TestAttackStrangerFetchBudgetIsGlobal(t *testing.T) {
	member := newOwner(t)
	m := newMembers(member.id)
	hd := newHolder(t, m, p2p.WithStrangerFetchRate(3, time.Hour))
	if _, err := member.push(t, hd, m.place(t, member.id, hd, vaultA, 1000, 4)); err != nil {
		t.Fatal(err)
	}
	var former []*owner
	for i := range 5 {
		o := newClient(t)
		m.add(o.id)
		if _, err := o.push(t, hd, m.place(t, o.id, hd, vaultA, 1000, byte(10+i))); err != nil {
			t.Fatal(err)
		}
		m.remove(o.id)
		former = append(former, o)
	}

	for i := range 12 {
		a := newClient(t)
		for range 3 {
			if _, err := fetch(t, a, hd, vaultA, 0); !errors.Is(err, p2p.ErrNotFound) {
				t.Fatalf("fresh identity %d: err = %v, want ErrNotFound", i, err)
			}
		}
	}
	served, limited := 0, 0
	for i, o := range former {
		_, err := fetch(t, o, hd, vaultA, 0)
		switch {
		case err == nil:
			served++
		case errors.Is(err, p2p.ErrRateLimited):
			limited++
		default:
			t.Fatalf("former member %d: %v", i, err)
		}
	}
	if served != 3 || limited != 2 {
		t.Fatalf("%d fetches of non-active owners served, %d rate-limited; want 3 and 2 (one shared budget of 3)", served, limited)
	}
	if _, err := fetch(t, member, hd, vaultA, 0); err != nil {
		t.Fatalf("active node's fetch: %v", err)
	}
}

// TestAttackConnectionFloodKeepsActiveNodes (issue 8.2): fresh identities
// fill every connection the holder's resource manager allows; an active node
// connecting afterwards is still let in (it is on the allowlist, bound to its
// peer ID) and its push goes through.
func TestAttackConnectionFloodKeepsActiveNodes(t *testing.T) {
	member := newOwner(t)
	id := newIdentity(t)
	// High watermark 4: the resource manager allows 8 connections.
	h := newHostConfig(t, p2p.HostConfig{Identity: id, Listen: testListen, ConnLow: 2, ConnHigh: 4})
	m := newMembers(member.id)
	hd := startHolderOn(t, h, id, t.TempDir(), m)
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	defer cancel()
	// The holder learns the active set (as the daemon does each chain poll),
	// then the connection drops.
	if err := p2p.ConnectPeers(ctx, hd.h, []peer.AddrInfo{{ID: member.h.ID(), Addrs: member.h.Addrs()}}); err != nil {
		t.Fatal(err)
	}
	hd.h.Network().ClosePeer(member.h.ID())
	member.h.Network().ClosePeer(hd.h.ID())
	waitUntil(t, 10*time.Second, "member disconnected", func() bool {
		return len(hd.h.Network().ConnsToPeer(member.h.ID())) == 0
	})

	// Twice as many fresh identities as the holder has connections for. A
	// connection over the limit is closed by the holder, once its peer ID is
	// known not to be on the allowlist.
	for range 16 {
		a := newClient(t)
		a.h.Connect(ctx, hd.info())
	}
	waitUntil(t, 30*time.Second, "the holder's connection limit reached", func() bool {
		return systemConns(hd.h) >= 8
	})
	strangers := len(hd.h.Network().Peers())

	if _, err := member.push(t, hd, m.place(t, member.id, hd, vaultA, 5000, 5)); err != nil {
		t.Fatalf("active node's push while %d strangers hold every connection: %v", strangers, err)
	}
}

// systemConns is how many connections h's resource manager counts in its
// (not allowlisted) system scope.
func systemConns(h host.Host) int {
	n := 0
	h.Network().ResourceManager().ViewSystem(func(s network.ResourceScope) error {
		st := s.Stat()
		n = st.NumConnsInbound + st.NumConnsOutbound
		return nil
	})
	return n
}

// TestAttackActiveNodePushesWhatTheChainDidNotAssign (issue 10): an active
// node gone bad pushes, concurrently with an honest owner, copies the chain
// never gave it to place here: another owner's custody assigned to this
// holder (it is not the owner), its own commitment's custody assigned to
// another holder, custodies nobody committed, and its own custody here with
// a copy that is not the committed one. Each is refused with its code
// before (or, for the bad copy, right after) the copy is read, nothing of
// it is stored or recorded, and the made-up custodies cost at most the
// lookup allowance in chain queries.
func TestAttackActiveNodePushesWhatTheChainDidNotAssign(t *testing.T) {
	o, bad := newOwner(t), newOwner(t)
	elsewhere := newIdentity(t)
	m := newMembers(o.id, bad.id)
	var accepted atomic.Int32
	hd := newHolder(t, m, p2p.OnAccepted(func(store.Entry) error { accepted.Add(1); return nil }),
		p2p.WithLookupRate(4, time.Hour))
	introduce(bad.h, hd.h)

	honest := m.place(t, o.id, hd, vaultA, 2000, 99)
	others := m.place(t, o.id, hd, vaultB, 2000, 98) // o's, assigned here: bad pushes it
	notHere := m.commit(t, bad.id, vaultA, 2000, 97, elsewhere).copy(t, 0)
	own := m.commit(t, bad.id, vaultB, 2000, 96, hd.id, elsewhere)
	wrongBytes := own.copy(t, 0)
	wrongBytes.Blob = own.copies[1]

	type attempt struct {
		name string
		c    p2p.Copy
		want error
	}
	var attempts []attempt
	for i := range 5 {
		attempts = append(attempts,
			attempt{"another owner's custody", others, p2p.ErrNotOwner},
			attempt{"custody of another holder", notHere, p2p.ErrNotAssigned},
			attempt{"another copy's bytes", wrongBytes, p2p.ErrBadCopy})
		made := notHere
		made.Custody.Commitment = 1000 + uint64(i)
		attempts = append(attempts, attempt{"made-up custody", made, nil})
	}
	errs := make(chan error, len(attempts))
	go func() {
		for _, a := range attempts {
			_, err := p2p.Push(context.Background(), bad.h, hd.h.ID(), bad.id, a.c)
			errs <- err
		}
	}()
	if _, err := o.push(t, hd, honest); err != nil {
		t.Fatalf("honest push during the attack: %v", err)
	}
	unknown, limited := 0, 0
	for _, a := range attempts {
		err := <-errs
		switch {
		case a.want != nil && !errors.Is(err, a.want):
			t.Fatalf("%s: err = %v, want %v", a.name, err, a.want)
		case a.want == nil && errors.Is(err, p2p.ErrUnknownCustody):
			unknown++
		case a.want == nil && errors.Is(err, p2p.ErrRateLimited):
			limited++
		case a.want == nil:
			t.Fatalf("%s: err = %v", a.name, err)
		}
	}
	if unknown != 4 || limited != 1 || m.lookupCount() != 4 {
		t.Fatalf("made-up custodies: %d unknown, %d rate-limited, %d chain lookups; want 4, 1, 4", unknown, limited, m.lookupCount())
	}
	entries, _ := hd.st.Entries(nil)
	if len(entries) != 1 || entries[0].Custody != honest.Custody || accepted.Load() != 1 {
		t.Fatalf("store holds %d entries, %d accepted; want only the honest one", len(entries), accepted.Load())
	}
	// The bad node's own custody, with its own copy, is accepted: the
	// checks are about what the chain assigned, not about who asks.
	if _, err := bad.push(t, hd, own.copy(t, 0)); err != nil {
		t.Fatalf("bad node's push of its own assigned copy: %v", err)
	}
}

// TestOwnerStaysWithinHolderAllowance (issue 14.4): an owner runs four times
// the holder's per-peer push allowance concurrently through Service.Push.
// None is reset or refused: the owner keeps to MaxPushStreamsPerPeer (the
// constant both sides share), and the holder gives a slot back before it
// sends the receipt.
func TestOwnerStaysWithinHolderAllowance(t *testing.T) {
	own := newHolder(t, newMembers()) // the owner's node runs a Service too
	m := newMembers(own.id)
	hd := newHolder(t, m)
	introduce(own.h, hd.h)
	const n = 4 * p2p.MaxPushStreamsPerPeer
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var copies []p2p.Copy
	for i := range n {
		copies = append(copies, m.place(t, own.id, hd, vaultA, 60<<10, byte(i)))
	}
	for _, c := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
			defer cancel()
			_, err := own.svc.Push(ctx, hd.h.ID(), c)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent push: %v", err)
		}
	}
	if b := counter(t, hd.reg, "ksb_p2p_refusals_total", map[string]string{"protocol": "push", "reason": "busy"}); b != 0 {
		t.Fatalf("holder refused %v pushes as busy", b)
	}
	if entries, _ := hd.st.Entries(nil); len(entries) != n {
		t.Fatalf("%d entries stored, want %d", len(entries), n)
	}
}

// TestPushRetriesBusyHolder (issue 14.4): a holder that answers BUSY, then
// resets a stream as its resource manager does when over a limit, then
// accepts: Service.Push retries with backoff and returns the receipt. A
// holder that stays busy makes Push return ErrBusy (not a refusal of the
// holder's own).
func TestPushRetriesBusyHolder(t *testing.T) {
	own := newHolder(t, newMembers())
	hid := newIdentity(t)
	h := newHost(t, hid)
	introduce(own.h, h)
	c := newMembers().commit(t, own.id, vaultA, 3000, 6, hid).copy(t, 0)
	root, _ := custody.CopyRoot(c.Blob)
	var tries atomic.Int32
	var alwaysBusy atomic.Bool
	h.SetStreamHandler(p2p.PushProtocol, func(s network.Stream) {
		try := tries.Add(1)
		switch {
		case alwaysBusy.Load() || try == 1:
			s.Write(frame((&pb.PushResponse{Error: &pb.Error{Code: uint32(p2p.CodeBusy), Message: "busy"}}).Marshal()))
			s.Close()
			return
		case try == 2:
			s.ResetWithError(network.StreamResourceLimitExceeded)
			return
		}
		defer s.Close()
		io.Copy(io.Discard, s)
		r := &p2p.Receipt{Holder: hid.PubKey(), Pusher: own.id.PubKey(), Custody: c.Custody, Size: int64(len(c.Blob)), CopyRoot: root, Time: time.Now()}
		r.Signature = hid.Sign(r.SignedMessage())
		enc, _ := r.MarshalBinary()
		s.Write(frame(appendMsg(1, enc)))
	})
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	defer cancel()
	if _, err := own.svc.Push(ctx, h.ID(), c); err != nil {
		t.Fatalf("push to a holder busy twice: %v", err)
	}
	if n := tries.Load(); n != 3 {
		t.Fatalf("%d tries, want 3", n)
	}

	alwaysBusy.Store(true)
	tries.Store(0)
	_, err := own.svc.Push(ctx, h.ID(), c)
	if !errors.Is(err, p2p.ErrBusy) {
		t.Fatalf("push to a holder always busy: err = %v, want ErrBusy", err)
	}
	if n := tries.Load(); n < 2 || n > 10 {
		t.Fatalf("%d tries of an always-busy holder", n)
	}
}
