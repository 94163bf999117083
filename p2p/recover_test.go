package p2p_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
)

// testClock is a wall clock a test moves forward.
type testClock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.d)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.d += d
	c.mu.Unlock()
}

// returns records what a Recover's handler was given.
type returns struct {
	mu     sync.Mutex
	offers map[peer.ID]int
	blobs  map[peer.ID][][]byte
	done   map[peer.ID]error
	// all is closed once every holder in want has delivered.
	want map[peer.ID]bool
	all  chan struct{}
}

func newReturns(want ...peer.ID) *returns {
	r := &returns{offers: map[peer.ID]int{}, blobs: map[peer.ID][][]byte{}, done: map[peer.ID]error{}, want: map[peer.ID]bool{}, all: make(chan struct{})}
	for _, p := range want {
		r.want[p] = true
	}
	return r
}

func (r *returns) handler() p2p.ReturnHandler {
	return p2p.ReturnHandler{
		Offer: func(o p2p.Offer) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.offers[o.Holder]++
		},
		Blob: func(f p2p.Fetched) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.blobs[f.Holder] = append(r.blobs[f.Holder], f.Blob)
		},
		Done: func(p peer.ID, err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.done[p] = err
			if err != nil || !r.want[p] {
				return
			}
			delete(r.want, p)
			if len(r.want) == 0 {
				close(r.all)
			}
		},
	}
}

func (r *returns) blobsOf(p peer.ID) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobs[p]
}

// recovering is an owner running Recover on a fresh host of its identity.
type recovering struct {
	n      *gossipNode
	r      *returns
	cancel context.CancelFunc
	done   chan struct{}
}

// startRecovery starts Recover on a new host of id, connected to via only,
// republishing every republish, expecting every holder in want to deliver.
func startRecovery(t *testing.T, id *identity.Identity, m p2p.Membership, via host.Host, republish time.Duration, want ...peer.ID) *recovering {
	t.Helper()
	oh := newHost(t, id)
	rc := &recovering{
		n: newGossipNode(t, id, oh, m, p2p.WithRepublishInterval(republish)),
		r: newReturns(want...), done: make(chan struct{}),
	}
	connect(t, oh, via)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	rc.cancel = cancel
	go func() {
		defer close(rc.done)
		rc.n.g.Recover(ctx, rc.r.handler())
	}()
	return rc
}

// wait waits until every expected holder delivered.
func (rc *recovering) wait(t *testing.T) {
	t.Helper()
	select {
	case <-rc.r.all:
	case <-rc.done:
		t.Fatalf("Recover ended before every holder delivered: %v", rc.r.done)

	}
}

// stop ends the recovery and closes its host.
func (rc *recovering) stop() {
	rc.cancel()
	<-rc.done
	rc.n.g.Close()
	rc.n.h.Close()
}

func returnCount(t *testing.T, hd *holder, result string) float64 {
	t.Helper()
	return counter(t, hd.reg, "ksb_p2p_requests_total", map[string]string{"protocol": "return", "direction": "out", "result": result})
}

// TestRecoveryOverGossip: an owner pushes to two holders, loses everything
// but its identity, and gets both copies back over gossip with a host at a
// new address that knows only one holder, each holder sending exactly once
// although the owner republishes its request every 200 ms. Then, the owner
// not recovering (a host with its key that runs no Recover):
//   - a request of it, accepted once, is ignored when replayed (the same
//     signed bytes, republished under its key) while the holders remember
//     its nonce;
//   - a request dated an hour ago is accepted (holders do not judge a
//     request by the requester's clock), and h1, past its repeat interval,
//     opens a return stream to the owner's key, which refuses it (it runs no
//     Recover): nothing is sent;
//   - an hour later on the holders' clocks that request, replayed again, is
//     accepted (its nonce forgotten) and again nothing is sent.
//
// Finally the owner recovers again and each holder sends once more.
func TestRecoveryOverGossip(t *testing.T) {
	o := newOwner(t)
	m := newMembers(o.id)
	h1 := newHolder(t, m)
	h2 := newHolder(t, m)
	m.add(h1.id)
	m.add(h2.id)
	sh := m.commit(t, o.id, vaultA, 60<<10, 20, h1.id, h2.id)
	want := map[string][]byte{}
	for i, hd := range []*holder{h1, h2} {
		if _, err := o.push(t, hd, sh.copy(t, i)); err != nil {
			t.Fatal(err)
		}
		want[string(hd.h.ID())] = sh.copies[i]
	}
	o.h.Close()

	clk := &testClock{}
	g1 := newGossipNode(t, h1.id, h1.h, m, p2p.ServeRecovery(h1.svc), p2p.WithClock(clk.now))
	newGossipNode(t, h2.id, h2.h, m, p2p.ServeRecovery(h2.svc), p2p.WithClock(clk.now))
	connect(t, h1.h, h2.h)
	waitTopicPeers(t, g1.g, 1)

	// The owner, recovering: same identity, new host, knows only h1.
	rc := startRecovery(t, o.id, m, h1.h, 200*time.Millisecond, h1.h.ID(), h2.h.ID())
	rc.wait(t)
	for _, hd := range []*holder{h1, h2} {
		got := rc.r.blobsOf(hd.h.ID())
		if len(got) != 1 || !bytes.Equal(got[0], want[string(hd.h.ID())]) {
			t.Fatalf("holder %s sent %d copies, want its own copy once", hd.h.ID(), len(got))
		}
	}
	// A holder counts its send once the owner has closed the stream.
	waitUntil(t, 20*time.Second, "holders count their sends", func() bool { return returnCount(t, h1, "ok") > 0 && returnCount(t, h2, "ok") > 0 })
	rc.stop()
	for _, hd := range []*holder{h1, h2} {
		if n := returnCount(t, hd, "ok"); n != 1 {
			t.Fatalf("holder %s returned blobs %v times, want once", hd.h.ID(), n)
		}
	}
	// Replay: a request of the owner (signed with its key, by a host with
	// its identity that runs no Recover), published, accepted, then the
	// same bytes again.
	replayer := newRawNode(t, o.id)
	connect(t, replayer.h, h1.h)
	waitFor(t, func() bool { return len(replayer.rc.ListPeers()) > 0 })
	accepted := func() int {
		return g1.v.count(verdict{p2p.RecoveryTopic, o.id.PeerID(), pubsub.ValidationAccept, "ok"})
	}
	replayed := func() int {
		return g1.v.count(verdict{p2p.RecoveryTopic, o.id.PeerID(), pubsub.ValidationIgnore, "replay"})
	}
	first := pb.RecoveryRequest{Owner: o.id.PubKey(), Nonce: bytes.Repeat([]byte{8}, 16), TimeUnixNano: time.Now().UnixNano()}
	first.Signature = o.id.Sign(append([]byte("ksb/recovery/v1\n"), first.Unsigned()...))
	before := accepted()
	publishUntil(t, func() { replayer.rc.Publish(context.Background(), first.Marshal()) }, func() bool { return accepted() > before })
	publishUntil(t, func() { replayer.rc.Publish(context.Background(), first.Marshal()) }, func() bool { return replayed() > 0 })

	// A request dated an hour ago, once h1's repeat interval has passed:
	// accepted, and the return refused (nobody recovers): nothing sent.
	failed := func() float64 { return returnCount(t, h1, "failed") }
	clk.advance(returnRepeat)
	before, failedBefore := accepted(), failed()
	old := pb.RecoveryRequest{Owner: o.id.PubKey(), Nonce: bytes.Repeat([]byte{9}, 16), TimeUnixNano: time.Now().Add(-time.Hour).UnixNano()}
	old.Signature = o.id.Sign(append([]byte("ksb/recovery/v1\n"), old.Unsigned()...))
	publishUntil(t, func() { replayer.rc.Publish(context.Background(), old.Marshal()) }, func() bool { return accepted() > before })
	waitUntil(t, 20*time.Second, "h1 tries the owner, whose key runs no recovery", func() bool { return failed() > failedBefore })

	// An hour later the first request again: its nonce is forgotten, it is
	// accepted, and still nothing is sent.
	clk.advance(61 * time.Minute)
	before, failedBefore = accepted(), failed()
	publishUntil(t, func() { replayer.rc.Publish(context.Background(), first.Marshal()) }, func() bool { return accepted() > before })
	waitUntil(t, 20*time.Second, "h1 tries the owner, whose key runs no recovery", func() bool { return failed() > failedBefore })
	for _, hd := range []*holder{h1, h2} {
		if n := returnCount(t, hd, "ok"); n != 1 {
			t.Fatalf("holder %s returned blobs %v times after the replays, want once", hd.h.ID(), n)
		}
	}

	// The owner recovers again: each holder sends once more. (The replayer
	// goes first: gossipsub keeps one stream per peer ID.)
	replayer.h.Close()
	clk.advance(returnRepeat)
	rc2 := startRecovery(t, o.id, m, h1.h, 200*time.Millisecond, h1.h.ID(), h2.h.ID())
	defer rc2.stop()
	rc2.wait(t)
	waitUntil(t, 20*time.Second, "holders count their sends", func() bool { return returnCount(t, h1, "ok") > 1 && returnCount(t, h2, "ok") > 1 })
	for _, hd := range []*holder{h1, h2} {
		if got := rc2.r.blobsOf(hd.h.ID()); len(got) != 1 || !bytes.Equal(got[0], want[string(hd.h.ID())]) {
			t.Fatalf("second recovery: holder %s sent %d blobs, want its copy once", hd.h.ID(), len(got))
		}
		if n := returnCount(t, hd, "ok"); n != 2 {
			t.Fatalf("holder %s returned blobs %v times, want twice (once per recovery)", hd.h.ID(), n)
		}
	}
}

// returnRepeat is a little more than a holder's least time between two
// sends to one owner (p2p's returnRepeatInterval).
const returnRepeat = 11 * time.Second

// writeFrameTo writes msg as one varint-delimited frame.
func writeFrameTo(t *testing.T, w io.Writer, msg []byte) {
	t.Helper()
	if _, err := w.Write(append(protowire.AppendVarint(nil, uint64(len(msg))), msg...)); err != nil {
		t.Fatal(err)
	}
}

// readReply reads the owner's one-frame reply to an offer.
func readReply(t *testing.T, r io.Reader) *pb.ReturnReply {
	t.Helper()
	var lenb [1]byte
	if _, err := io.ReadFull(r, lenb[:]); err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	b := make([]byte, lenb[0])
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	rep := new(pb.ReturnReply)
	if err := rep.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReturnOfferNonce: a recovering owner has a holder send only in answer
// to one of its own current requests. A "holder" (a raw host) offers with a
// nonce the owner never sent and is declined; offers with the nonce of the
// owner's request and is accepted, and its blob is handed over; offers again
// and is declined, having delivered.
func TestReturnOfferNonce(t *testing.T) {
	o := newIdentity(t)
	fake := newRawNode(t, newIdentity(t))
	rc := startRecovery(t, o, newMembers(), fake.h, time.Hour, fake.h.ID())
	defer rc.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg, err := fake.recSub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var req pb.RecoveryRequest
	if err := req.Unmarshal(msg.Data); err != nil {
		t.Fatal(err)
	}

	offer := func(nonce []byte) (io.ReadWriteCloser, *pb.ReturnReply) {
		s, err := fake.h.NewStream(ctx, rc.n.h.ID(), p2p.ReturnProtocol)
		if err != nil {
			t.Fatal(err)
		}
		writeFrameTo(t, s, (&pb.ReturnOffer{Nonce: nonce, Count: 1, TimeUnixNano: time.Now().UnixNano()}).Marshal())
		return s, readReply(t, s)
	}
	s, rep := offer(bytes.Repeat([]byte{7}, 16))
	s.Close()
	if rep.Send {
		t.Fatal("an offer answering a request the owner never sent was accepted")
	}

	s, rep = offer(req.Nonce)
	if !rep.Send {
		t.Fatal("an offer answering the owner's request was declined")
	}
	b := blob(1000, 3)
	d := sha256.Sum256(b)
	writeFrameTo(t, s, (&pb.Frame{Entry: &pb.EntryHeader{Owner: o.PubKey(), Vault: vaultA, Digest: d[:], Size: uint64(len(b)), ReceivedUnixNano: 1, Commitment: 1, Copies: 1}}).Marshal())
	s.Write(b)
	writeFrameTo(t, s, (&pb.Frame{End: &pb.End{Count: 1}}).Marshal())
	io.Copy(io.Discard, s) // until the owner closes
	s.Close()
	rc.wait(t)
	if got := rc.r.blobsOf(fake.h.ID()); len(got) != 1 || !bytes.Equal(got[0], b) {
		t.Fatalf("owner was handed %d blobs", len(got))
	}

	s, rep = offer(req.Nonce)
	s.Close()
	if rep.Send {
		t.Fatal("a holder that delivered everything was asked to send again")
	}
}

// TestReturnRefusedWhenNotRecovering: a holder cannot push blobs at a node
// that is not running Recover.
func TestReturnRefusedWhenNotRecovering(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	na := newGossipNode(t, a, newHost(t, a), newMembers(a, b))
	hb := newHost(t, b)
	connect(t, hb, na.h)
	if _, err := hb.NewStream(context.Background(), na.h.ID(), p2p.ReturnProtocol); err == nil {
		t.Fatal("return stream opened to a node that is not recovering")
	}
}
