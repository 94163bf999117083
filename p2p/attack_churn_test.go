package p2p_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/p2p"
)

// TestAttackChurnedOutNodeLosesItsPrivileges (finding 8, a node the chain
// removed): a holder protects the active nodes in its connection manager and
// puts their addresses on its resource manager's allowlist, so that a flood
// of fresh identities cannot keep them out. ConnectPeers only ever added:
// a node churned out — say for misbehaving — kept both for as long as the
// holder ran, and still got in past a connection flood that kept every
// other stranger out. Now KnownPeers.Set takes the whole known set each
// poll, and releases the peers that left it: the churned-out node is
// refused like any stranger, while the active node still gets in.
func TestAttackChurnedOutNodeLosesItsPrivileges(t *testing.T) {
	active, gone := newOwner(t), newOwner(t)
	id := newIdentity(t)
	// High watermark 4: the resource manager allows 8 connections.
	h := newHostConfig(t, p2p.HostConfig{Identity: id, Listen: testListen, ConnLow: 2, ConnHigh: 4})
	m := newMembers(active.id)
	hd := startHolderOn(t, h, id, t.TempDir(), m)
	ctx, cancel := context.WithTimeout(context.Background(), attackTimeout)
	defer cancel()
	known := p2p.NewKnownPeers(hd.h)
	info := func(o *owner) peer.AddrInfo { return peer.AddrInfo{ID: o.h.ID(), Addrs: o.h.Addrs()} }
	// Both are active; then a churn removes one.
	if err := known.Set(ctx, []peer.AddrInfo{info(active), info(gone)}); err != nil {
		t.Fatal(err)
	}
	if err := known.Set(ctx, []peer.AddrInfo{info(active)}); err != nil {
		t.Fatal(err)
	}
	if hd.h.ConnManager().IsProtected(gone.h.ID(), p2p.ProtectTag) {
		t.Error("the churned-out node is still protected from trimming")
	}
	for _, o := range []*owner{active, gone} {
		hd.h.Network().ClosePeer(o.h.ID())
		o.h.Network().ClosePeer(hd.h.ID())
	}
	waitUntil(t, 10*time.Second, "disconnected", func() bool {
		return len(hd.h.Network().ConnsToPeer(active.h.ID())) == 0 && len(hd.h.Network().ConnsToPeer(gone.h.ID())) == 0
	})

	for range 16 {
		a := newClient(t)
		a.h.Connect(ctx, hd.info())
	}
	waitUntil(t, 30*time.Second, "the holder's connection limit reached", func() bool {
		return systemConns(hd.h) >= 8
	})
	goneErr := gone.h.Connect(ctx, hd.info())
	// The holder closes a connection over its limits once it knows the
	// peer ID is not allowlisted; give it that moment.
	stillIn := func() bool { return len(hd.h.Network().ConnsToPeer(gone.h.ID())) > 0 }
	if goneErr == nil {
		deadline := time.Now().Add(5 * time.Second)
		for stillIn() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := active.push(t, hd, m.place(t, active.id, hd, vaultA, 5000, 5)); err != nil {
		t.Fatalf("active node's push while strangers hold every connection: %v", err)
	}
	if stillIn() {
		t.Fatal("the churned-out node got a connection past the flood: still on the allowlist")
	}
}
