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

// maxReturnStreamsPerPeer is how many return streams a recovering node
// accepts from one holder in one Recover call: one per request it answers,
// and Recover republishes a few times before the caller has what it needs.
const maxReturnStreamsPerPeer = 4

// recoverySession is the state of a running Recover.
type recoverySession struct {
	self    []byte
	onBlob  func(Fetched)
	mu      sync.Mutex // serialises onBlob
	streams map[peer.ID]int
}

// Recover asks the network for this node's blobs without the chain: it
// accepts ReturnProtocol streams, publishes a signed recovery request (owner
// key, random nonce, time, this host's addresses) on RecoveryTopic as soon as
// a peer is on the topic and again every RecoveryRepublishInterval (see
// WithRepublishInterval), and hands
// every blob a holder returns to onBlob (one call at a time; each blob's size
// and sha256 are checked against its header and its owner is this node,
// whether it opens is for onBlob to find out). It returns when ctx is done,
// with nil; the caller cancels ctx once it has what it needs. Return streams
// are refused outside Recover.
func (g *Gossip) Recover(ctx context.Context, onBlob func(Fetched)) error {
	sess := &recoverySession{self: g.id.PubKey(), onBlob: onBlob, streams: make(map[peer.ID]int)}
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
	for {
		if err := g.publishRecovery(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("recovery request", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-g.ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (g *Gossip) publishRecovery(ctx context.Context) error {
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
	if err := g.rec.Publish(ctx, req.Marshal()); err != nil {
		return fmt.Errorf("publishing recovery request: %w", err)
	}
	return nil
}

// handleReturn accepts one return stream while Recover runs.
func (g *Gossip) handleReturn(s network.Stream) {
	remote := s.Conn().RemotePeer()
	g.mu.Lock()
	sess := g.session
	ok := sess != nil && sess.streams[remote] < maxReturnStreamsPerPeer
	if ok {
		sess.streams[remote]++
	}
	g.mu.Unlock()
	if !ok {
		s.Reset()
		return
	}
	got, err := g.receiveReturn(s, sess)
	if err != nil {
		g.log.Info("return stream", "holder", remote, "err", err)
		s.Reset()
		return
	}
	s.Close()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	for _, f := range got {
		sess.onBlob(f)
	}
}

func (g *Gossip) receiveReturn(s network.Stream, sess *recoverySession) ([]Fetched, error) {
	if err := s.Scope().SetService(ReturnServiceName); err != nil {
		return nil, fmt.Errorf("attaching to service: %w", err)
	}
	// A holder opens the stream to send at once: its first frame is due
	// within HeaderTimeout, so a peer that opens return streams and sends
	// nothing holds none for long; the blobs then get FetchTimeout.
	if err := s.SetDeadline(time.Now().Add(HeaderTimeout)); err != nil {
		return nil, fmt.Errorf("setting deadline: %w", err)
	}
	first := true
	return receiveEntries(s, sess.self, func(*pb.EntryHeader) error {
		if first {
			first = false
			if err := s.SetDeadline(time.Now().Add(FetchTimeout)); err != nil {
				return fmt.Errorf("setting deadline: %w", err)
			}
		}
		return nil
	})
}
