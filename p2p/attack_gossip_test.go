package p2p_test

import (
	"context"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/p2p/internal/pb"
)

// TestAttackGossipFloodIsPenalised (issue 8.5): a fresh identity floods the
// heartbeat topic with malformed messages and an active node gone bad floods
// it with forged ones. The victim's peer score of each falls below the
// graylist threshold (their RPCs are then dropped unread), while an honest
// active node's heartbeats are still accepted, its score stays non-negative,
// and a recovering stranger's request is still accepted.
func TestAttackGossipFloodIsPenalised(t *testing.T) {
	v, h, bad, stranger, rec := newIdentity(t), newIdentity(t), newIdentity(t), newIdentity(t), newIdentity(t)
	m := newMembers(v, h, bad)
	fast := p2p.WithHeartbeatMinInterval(0)
	nv := newGossipNode(t, v, newHost(t, v), m, fast)
	nh := newGossipNode(t, h, newHost(t, h), m, fast)
	// The attackers send every message to every peer they know, mesh or
	// not (gossipsub's default sends only to mesh peers, and the victim
	// prunes a misbehaving peer from its mesh early).
	rs := newRawNode(t, stranger, pubsub.WithFloodPublish(true))
	rb := newRawNode(t, bad, pubsub.WithFloodPublish(true))
	connect(t, nh.h, nv.h)
	connect(t, rs.h, nv.h)
	connect(t, rb.h, nv.h)
	waitTopicPeers(t, nv.g, 3)
	waitUntil(t, 20*time.Second, "attackers see the topic", func() bool {
		return len(rs.hb.ListPeers()) > 0 && len(rb.hb.ListPeers()) > 0
	})

	forged := func() []byte {
		hb := pb.Heartbeat{Node: bad.PubKey(), TimeUnixNano: time.Now().UnixNano()}
		hb.Signature = stranger.Sign(append([]byte("ksb/heartbeat/v1\n"), hb.Unsigned()...))
		return hb.Marshal()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var floodWG sync.WaitGroup
	floodWG.Add(1)
	go func() {
		defer floodWG.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 3000 && ctx.Err() == nil; i++ {
			rs.hb.Publish(ctx, []byte{0xff, 0xff, byte(i), byte(i >> 8)})
			rb.hb.Publish(ctx, forged())
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	defer floodWG.Wait()
	defer cancel()

	deadline := time.Now().Add(60 * time.Second)
	for {
		s := nv.g.PeerScores()
		if s[stranger.PeerID()] < p2p.GraylistThreshold && s[bad.PeerID()] < p2p.GraylistThreshold {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attackers not graylisted within 60 s: scores %v (stranger %s, bad %s); rejects %d, %d; verdicts %d",
				s, stranger.PeerID(), bad.PeerID(),
				nv.v.count(verdict{p2p.HeartbeatTopic, stranger.PeerID(), pubsub.ValidationReject, "malformed"}),
				nv.v.count(verdict{p2p.HeartbeatTopic, bad.PeerID(), pubsub.ValidationReject, "bad_signature"}), len(nv.v.seen))
		}
		time.Sleep(10 * time.Millisecond)
	}
	rejected := nv.v.count(verdict{p2p.HeartbeatTopic, stranger.PeerID(), pubsub.ValidationReject, "malformed"})

	// Honest traffic while the flood goes on.
	publishUntil(t, func() { nh.g.PublishHeartbeat(context.Background(), p2p.HeartbeatStats{Blobs: 1}) },
		func() bool {
			return nv.v.count(verdict{p2p.HeartbeatTopic, h.PeerID(), pubsub.ValidationAccept, "ok"}) > 0
		})
	nr := newGossipNode(t, rec, newHost(t, rec), newMembers())
	connect(t, nr.h, nv.h)
	rctx, rcancel := context.WithCancel(context.Background())
	recDone := make(chan struct{})
	go func() { defer close(recDone); nr.g.Recover(rctx, p2p.ReturnHandler{}) }()
	nv.v.wait(t, verdict{p2p.RecoveryTopic, rec.PeerID(), pubsub.ValidationAccept, "ok"})
	rcancel()
	<-recDone

	s := nv.g.PeerScores()
	if s[h.PeerID()] < 0 || s[rec.PeerID()] < 0 {
		t.Fatalf("honest peers penalised: active %v, recovering stranger %v", s[h.PeerID()], s[rec.PeerID()])
	}
	t.Logf("scores at the victim: stranger %.0f, bad active node %.0f, honest active node %.0f; %d malformed messages validated before the stranger was graylisted, %d after",
		s[stranger.PeerID()], s[bad.PeerID()], s[h.PeerID()], rejected,
		nv.v.count(verdict{p2p.HeartbeatTopic, stranger.PeerID(), pubsub.ValidationReject, "malformed"})-rejected)
}
