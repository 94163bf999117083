package p2p

import (
	"context"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/p2p/internal/pb"
)

const (
	// maxReturnStreamsPerPeer is how many return streams a recovering node
	// reads from one holder in one Recover call, offers it declines
	// included: an honest holder sends once and offers again at most every
	// returnRepeatInterval (or at each request while its returns fail).
	maxReturnStreamsPerPeer = 8
	// maxOfferSize caps a return offer: a 16-byte nonce and two varints.
	maxOfferSize = 64
	// joinRepublishMin is the least time between a request and one
	// published because a peer joined the recovery topic; under the
	// holders' 2 s per-owner interval, so a holder that had the last request
	// ignores this one, and the new peer takes it.
	joinRepublishMin = time.Second
	// maxSessionNonces is how many of its own requests' nonces a Recover
	// remembers: holders answer one of the last few. At the default
	// interval that is the requests of the last 16 minutes.
	maxSessionNonces = 64
)

// Offer is a holder's answer to a recovery request, read before it sends
// anything.
type Offer struct {
	// Holder is the holder's peer ID (Noise-authenticated).
	Holder peer.ID
	// Count is how many blobs the holder says it holds for this node: the
	// most its stream may carry.
	Count int
	// HolderTime is the holder's clock when it wrote the offer, and Received
	// this node's (Gossip's clock) when it read it: Received − HolderTime is
	// this node's clock offset from the holder's, plus the one-way delay.
	HolderTime, Received time.Time
}

// ReturnHandler receives what holders return while Recover runs. Its
// functions are called one at a time, never concurrently, and for one
// holder's stream in order: Offer, then Blob for each blob, then Done. A nil
// function is not called.
type ReturnHandler struct {
	// Offer is called when this node accepts a holder's offer: the holder
	// is about to send up to Count blobs.
	Offer func(Offer)
	// Blob is called with each blob of a stream that arrived whole; its
	// size and sha256 are checked against its header and its owner is this
	// node (whether it opens is for the handler to find out).
	Blob func(Fetched)
	// Done is called when the stream of an accepted offer ends: with nil
	// after its blobs were handed to Blob, or with why it failed (a stream
	// that breaks a rule is dropped whole, as Fetch does, and none of its
	// blobs is handed over).
	Done func(holder peer.ID, err error)
}

// recoverySession is the state of a running Recover. Its maps are guarded
// by Gossip.mu; mu serialises the handler.
type recoverySession struct {
	self     []byte
	h        ReturnHandler
	mu       sync.Mutex
	nonces   map[string]bool // this recovery's requests
	order    []string        // the same nonces, oldest first
	offers   map[peer.ID]int // return streams read from each holder
	complete map[peer.ID]bool
}

// addNonce remembers one of this recovery's request nonces. g.mu is held.
func (s *recoverySession) addNonce(n []byte) {
	if len(s.order) == maxSessionNonces {
		delete(s.nonces, s.order[0])
		s.order = s.order[1:]
	}
	s.nonces[string(n)] = true
	s.order = append(s.order, string(n))
}

// Recover asks the network for this node's blobs without the chain: it
// accepts ReturnProtocol streams, publishes a signed recovery request (owner
// key, random nonce, time, this host's addresses) on RecoveryTopic as soon as
// a peer is on the topic, again every RecoveryRepublishInterval (see
// WithRepublishInterval) and when a peer joins the topic (at most once a
// second), and reports to h what holders offer and send.
// A holder's stream opens with an offer (the nonce of the request it answers,
// how many blobs it holds for this node, its clock); Recover accepts it
// only if the nonce is one of its own requests and the holder has not
// already delivered everything in this call, so that a replayed request, or
// a republished one a holder answers again, makes no holder send a blob.
// Recover returns when ctx is done, with nil; the caller cancels ctx once it
// has what it needs. Return streams are refused outside Recover.
func (g *Gossip) Recover(ctx context.Context, h ReturnHandler) error {
	sess := &recoverySession{
		self: g.id.PubKey(), h: h,
		nonces: make(map[string]bool), offers: make(map[peer.ID]int), complete: make(map[peer.ID]bool),
	}
	g.mu.Lock()
	if g.session != nil {
		g.mu.Unlock()
		return ErrRecovering
	}
	g.session = sess
	g.mu.Unlock()
	g.h.SetStreamHandler(ReturnProtocol, g.handleReturn)
	defer func() {
		g.h.RemoveStreamHandler(ReturnProtocol)
		g.mu.Lock()
		g.session = nil
		g.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // also ends the event reader below
	events, err := g.rec.EventHandler()
	if err != nil {
		return fmt.Errorf("watching %s: %w", RecoveryTopic, err)
	}
	defer events.Cancel()
	joined := make(chan struct{}, 1)
	go func() {
		for {
			ev, err := events.NextPeerEvent(ctx)
			if err != nil {
				return
			}
			if ev.Type == pubsub.PeerJoin {
				select {
				case joined <- struct{}{}:
				default:
				}
			}
		}
	}()
	if len(g.rec.ListPeers()) == 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-g.ctx.Done():
			return nil
		case <-joined:
		}
	}
	t := time.NewTicker(g.republish)
	defer t.Stop()
	var last time.Time
	for {
		if err := g.publishRecovery(ctx, sess); err != nil && ctx.Err() == nil {
			g.log.Warn("recovery request", "err", err)
		}
		last = time.Now()
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-g.ctx.Done():
				return nil
			case <-t.C:
				break wait
			case <-joined:
				// A peer that joins the topic late (a bootstrap peer
				// whose subscription came after the request) gets one at
				// once rather than at the next republish.
				if time.Since(last) >= joinRepublishMin {
					t.Reset(g.republish)
					break wait
				}
			}
		}
	}
}

func (g *Gossip) publishRecovery(ctx context.Context, sess *recoverySession) error {
	nonce, err := newNonce()
	if err != nil {
		return fmt.Errorf("nonce: %w", err)
	}
	req := pb.RecoveryRequest{Owner: g.id.PubKey(), Nonce: nonce, TimeUnixNano: g.now().UnixNano()}
	for _, a := range g.h.Addrs() {
		if len(req.Addrs) == maxRecoveryAddrs {
			break
		}
		if b := a.Bytes(); len(b) <= maxAddrSize {
			req.Addrs = append(req.Addrs, b)
		}
	}
	req.Signature = g.id.Sign(append([]byte(recoveryDomain), req.Unsigned()...))
	// Remembered before it goes out: a holder's offer may come back first.
	g.mu.Lock()
	sess.addNonce(nonce)
	g.mu.Unlock()
	if err := g.rec.Publish(ctx, req.Marshal()); err != nil {
		return fmt.Errorf("publishing recovery request: %w", err)
	}
	return nil
}

// handleReturn serves one return stream while Recover runs: it reads the
// holder's offer, answers whether to send, and reads the blobs.
func (g *Gossip) handleReturn(s network.Stream) {
	remote := s.Conn().RemotePeer()
	g.mu.Lock()
	sess := g.session
	ok := sess != nil && sess.offers[remote] < maxReturnStreamsPerPeer
	if ok {
		sess.offers[remote]++
	}
	g.mu.Unlock()
	if !ok {
		s.Reset()
		return
	}
	offer, send, err := g.readOffer(s, sess)
	if err != nil {
		g.log.Info("return stream", "holder", remote, "err", err)
		s.Reset()
		return
	}
	if !send {
		g.log.Debug("return offer declined", "holder", remote)
		s.Close()
		return
	}
	sess.mu.Lock()
	if sess.h.Offer != nil {
		sess.h.Offer(offer)
	}
	sess.mu.Unlock()
	got, err := g.receiveReturn(s, sess, offer.Count)
	if err != nil {
		g.log.Info("return stream", "holder", remote, "err", err)
		s.Reset()
	} else {
		g.mu.Lock()
		sess.complete[remote] = true
		g.mu.Unlock()
		s.Close()
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.h.Blob != nil {
		for _, f := range got {
			sess.h.Blob(f)
		}
	}
	if sess.h.Done != nil {
		sess.h.Done(remote, err)
	}
}

// readOffer reads a holder's offer within HeaderTimeout and answers it:
// send only for one of this recovery's requests, and only if this holder has
// not delivered everything already.
func (g *Gossip) readOffer(s network.Stream, sess *recoverySession) (Offer, bool, error) {
	if err := s.Scope().SetService(ReturnServiceName); err != nil {
		return Offer{}, false, fmt.Errorf("attaching to service: %w", err)
	}
	// A holder opens the stream to send at once: its offer is due within
	// HeaderTimeout, so a peer that opens return streams and sends nothing
	// holds none for long.
	if err := s.SetDeadline(time.Now().Add(HeaderTimeout)); err != nil {
		return Offer{}, false, fmt.Errorf("setting deadline: %w", err)
	}
	b, err := readFrame(s, maxOfferSize)
	if err != nil {
		return Offer{}, false, fmt.Errorf("reading the offer: %w", err)
	}
	var o pb.ReturnOffer
	if err := o.Unmarshal(b); err != nil {
		return Offer{}, false, fmt.Errorf("%w: offer: %w", ErrMalformed, err)
	}
	if len(o.Nonce) != nonceSize || o.Count == 0 || o.Count > MaxFetchEntries {
		return Offer{}, false, fmt.Errorf("%w: offer of %d blobs with a %d-byte nonce", ErrMalformed, o.Count, len(o.Nonce))
	}
	offer := Offer{
		Holder: s.Conn().RemotePeer(), Count: int(o.Count),
		HolderTime: time.Unix(0, o.TimeUnixNano), Received: g.now(),
	}
	g.mu.Lock()
	send := sess.nonces[string(o.Nonce)] && !sess.complete[offer.Holder]
	g.mu.Unlock()
	reply := pb.ReturnReply{Send: send}
	if err := writeFrame(s, reply.Marshal()); err != nil {
		return Offer{}, false, fmt.Errorf("answering the offer: %w", err)
	}
	return offer, send, nil
}

// receiveReturn reads the blobs of an accepted offer: at most count of them,
// checked as Fetch checks its answer, within FetchTimeout.
func (g *Gossip) receiveReturn(s network.Stream, sess *recoverySession, count int) ([]Fetched, error) {
	if err := s.SetDeadline(time.Now().Add(FetchTimeout)); err != nil {
		return nil, fmt.Errorf("setting deadline: %w", err)
	}
	n := 0
	return receiveEntries(s, sess.self, func(*pb.EntryHeader) error {
		if n++; n > count {
			return fmt.Errorf("%w: more blobs than the %d offered", ErrProtocol, count)
		}
		return nil
	})
}
