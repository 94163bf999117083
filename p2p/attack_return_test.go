package p2p_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
	"google.golang.org/protobuf/encoding/protowire"
)

// readRawFrame reads one varint-length-prefixed frame of at most 4 KiB.
func readRawFrame(r io.Reader) ([]byte, error) {
	var lenb []byte
	for {
		var b [1]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		lenb = append(lenb, b[0])
		if b[0] < 0x80 || len(lenb) == binary.MaxVarintLen64 {
			break
		}
	}
	n, k := protowire.ConsumeVarint(lenb)
	if k < 0 || n > 4<<10 {
		return nil, errors.New("bad frame length")
	}
	msg := make([]byte, n)
	_, err := io.ReadFull(r, msg)
	return msg, err
}

// signedRecoveryRequest is a valid recovery request of id, asking for returns
// to addrs.
func signedRecoveryRequest(t *testing.T, id *identity.Identity, addrs [][]byte) []byte {
	t.Helper()
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	req := pb.RecoveryRequest{Owner: id.PubKey(), Nonce: nonce, TimeUnixNano: time.Now().UnixNano(), Addrs: addrs}
	req.Signature = id.Sign(append([]byte("ksb/recovery/v1\n"), req.Unsigned()...))
	return req.Marshal()
}

// returnAttacker is an active node that keeps blobs on a holder, asks for
// them over gossip and never reads the return streams it is sent.
type returnAttacker struct {
	id    *identity.Identity
	raw   *rawNode
	addrs [][]byte
	mu    sync.Mutex
	held  int // return streams opened to it
}

// newReturnAttackers makes n return attackers (active in m), each keeping
// two blobs of the largest size on hd — so that a return it does not read
// cannot be written into the stream's flow-control window and end early —
// connected to hd. Their return streams are held until ctx is done.
func newReturnAttackers(t *testing.T, ctx context.Context, n int, m *members, hd *holder) []*returnAttacker {
	t.Helper()
	var as []*returnAttacker
	for i := range n {
		a := &returnAttacker{id: newIdentity(t)}
		m.add(a.id)
		a.raw = newRawNode(t, a.id)
		introduce(a.raw.h, hd.h)
		for j, v := range []string{vaultA, vaultB} {
			pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := p2p.Push(pctx, a.raw.h, hd.h.ID(), a.id, m.place(t, a.id, hd, v, p2p.MaxBlobSize, byte(40+2*i+j)))
			pcancel()
			if err != nil {
				t.Fatal(err)
			}
		}
		a.raw.h.SetStreamHandler(p2p.ReturnProtocol, func(s network.Stream) {
			// Accept the holder's offer, then never read the copies.
			if _, err := readRawFrame(s); err != nil {
				s.Reset()
				return
			}
			reply := (&pb.ReturnReply{Send: true}).Marshal()
			if _, err := s.Write(append(protowire.AppendVarint(nil, uint64(len(reply))), reply...)); err != nil {
				s.Reset()
				return
			}
			a.mu.Lock()
			a.held++
			a.mu.Unlock()
			<-ctx.Done()
			s.Reset()
		})
		for _, ad := range a.raw.h.Addrs() {
			a.addrs = append(a.addrs, ad.Bytes())
		}
		connect(t, a.raw.h, hd.h)
		as = append(as, a)
	}
	return as
}

// ask makes each attacker publish recovery requests until hd's gossip node
// has accepted `requests` of each (the holder accepts one request of an
// owner per 10 s).
func askReturns(t *testing.T, ctx context.Context, as []*returnAttacker, gh *gossipNode, requests int) {
	t.Helper()
	accepted := func(a *returnAttacker) int {
		return gh.v.count(verdict{p2p.RecoveryTopic, a.id.PeerID(), pubsub.ValidationAccept, "ok"})
	}
	limit := time.Duration(requests) * 20 * time.Second
	deadline := time.Now().Add(limit)
	for {
		done := true
		for _, a := range as {
			if accepted(a) < requests {
				done = false
				a.raw.rc.Publish(ctx, signedRecoveryRequest(t, a.id, a.addrs))
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("attacker requests not accepted %d times each within %v", requests, limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// heldReturns is how many return streams the attackers hold, in all and at
// most to one of them.
func heldReturns(as []*returnAttacker) (total, most int) {
	for _, a := range as {
		a.mu.Lock()
		total += a.held
		most = max(most, a.held)
		a.mu.Unlock()
	}
	return total, most
}

// recoverOverGossip runs Recover for o (a new host with o's identity,
// connected to hd) for at most d and returns the first blob it gets back
// and how long that took.
func recoverOverGossip(t *testing.T, o *owner, m *members, hd *holder, gh *gossipNode, peers int, d time.Duration) ([]byte, time.Duration) {
	t.Helper()
	oh := newHost(t, o.id)
	og := newGossipNode(t, o.id, oh, m, p2p.WithRepublishInterval(200*time.Millisecond))
	connect(t, oh, hd.h)
	waitTopicPeers(t, gh.g, peers)
	rctx, rcancel := context.WithTimeout(context.Background(), d)
	defer rcancel()
	var got []byte
	start := time.Now()
	og.g.Recover(rctx, p2p.ReturnHandler{Blob: func(f p2p.Fetched) {
		if got == nil {
			got = f.Blob
		}
		rcancel()
	}})
	return got, time.Since(start)
}

// TestAttackOwnersHoldEveryReturnSlot (finding 1, active nodes gone bad): a
// holder answers recovery requests with at most four return streams at once,
// and dropped the requests that came while four were running. Two active
// nodes that keep blobs on the holder (any active node can push its own
// shares to any holder) each ask for their blobs twice, 10 s apart — as often
// as the holder accepts requests of one owner — and never read the return
// streams: each stream held a return slot for the whole fetch deadline
// (60 s), so the two held every slot (the resource manager allows two return
// streams per peer), and an honest owner recovering over gossip got nothing
// from this holder: no blob in 15 s of asking, its requests accepted and then
// dropped ("too many returns in flight"). Now one owner has at most one
// return running or waiting, and the honest owner's blob comes back at once.
func TestAttackOwnersHoldEveryReturnSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the holder's 10 s per-owner request interval")
	}
	t.Parallel()
	o := newOwner(t)
	m := newMembers(o.id)
	hd := newHolder(t, m)
	m.add(hd.id)
	gh := newGossipNode(t, hd.id, hd.h, m, p2p.ServeRecovery(hd.svc))
	c := m.place(t, o.id, hd, vaultA, 60<<10, 30)
	share := c.Blob
	if _, err := o.push(t, hd, c); err != nil {
		t.Fatal(err)
	}
	o.h.Close() // the honest owner loses its disk

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	as := newReturnAttackers(t, ctx, 2, m, hd)
	waitTopicPeers(t, gh.g, len(as))
	askReturns(t, ctx, as, gh, 2)
	waitUntil(t, 10*time.Second, "the holder opened the attackers' returns", func() bool { n, _ := heldReturns(as); return n >= len(as) })

	got, took := recoverOverGossip(t, o, m, hd, gh, len(as)+1, 15*time.Second)
	total, most := heldReturns(as)
	t.Logf("attackers: %d return streams opened to them and held unread (at most %d to one); honest owner: %d requests accepted, blob back: %v after %v",
		total, most, gh.v.count(verdict{p2p.RecoveryTopic, o.id.PeerID(), pubsub.ValidationAccept, "ok"}), got != nil, took.Round(time.Millisecond))
	if !bytes.Equal(got, share) {
		t.Fatalf("the honest owner got no blob back in 15 s while two active nodes held %d return streams unread", total)
	}
	if most > 1 {
		t.Fatalf("one owner got %d return streams at once, want at most 1", most)
	}
}

// TestAttackReturnSlotsAreServedInTurn (finding 1): four active nodes gone
// bad hold every return slot of a holder (one each) with returns they never
// read. An honest owner's request that comes meanwhile waits for the first
// slot to free — the holder's fetch deadline, 4 s here — instead of being
// dropped: before the fix it was dropped, and the owner's next request is
// accepted only 10 s later (one per owner per 10 s), so its blob came back
// after 10 s at the earliest, and not at all while the attackers kept
// asking.
func TestAttackReturnSlotsAreServedInTurn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs five recovering nodes against one holder")
	}
	t.Parallel()
	o := newOwner(t)
	m := newMembers(o.id)
	const hold = 4 * time.Second
	hd := newHolder(t, m, p2p.WithTimeouts(p2p.PushTimeout, hold))
	m.add(hd.id)
	gh := newGossipNode(t, hd.id, hd.h, m, p2p.ServeRecovery(hd.svc))
	c := m.place(t, o.id, hd, vaultA, 60<<10, 31)
	share := c.Blob
	if _, err := o.push(t, hd, c); err != nil {
		t.Fatal(err)
	}
	o.h.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	as := newReturnAttackers(t, ctx, 4, m, hd)
	waitTopicPeers(t, gh.g, len(as))
	askReturns(t, ctx, as, gh, 1)
	waitUntil(t, 10*time.Second, "the holder opened the attackers' returns", func() bool { n, _ := heldReturns(as); return n >= len(as) })

	got, took := recoverOverGossip(t, o, m, hd, gh, len(as)+1, 20*time.Second)
	total, _ := heldReturns(as)
	t.Logf("attackers: %d return streams opened to them and held unread; honest owner: blob back: %v after %v (return deadline %v)",
		total, got != nil, took.Round(time.Millisecond), hold)
	if !bytes.Equal(got, share) {
		t.Fatal("the honest owner got no blob back in 20 s")
	}
	// Served when the first slot freed, not at its next request 10 s later.
	if took >= 9*time.Second {
		t.Fatalf("the honest owner's blob came back after %v: its first request was not kept waiting for a slot", took)
	}
}
