package p2p_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// udpProxy forwards UDP datagrams between one client and a target until it
// is made a black hole: then it drops everything, as a machine that died
// without closing its connections does.
type udpProxy struct {
	front, back *net.UDPConn
	target      *net.UDPAddr
	mu          sync.Mutex
	client      *net.UDPAddr
	dead        atomic.Bool
}

func newUDPProxy(t *testing.T, target *net.UDPAddr) *udpProxy {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{front: front, back: back, target: target}
	t.Cleanup(func() { front.Close(); back.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.client = from
			p.mu.Unlock()
			if !p.dead.Load() {
				back.WriteToUDP(buf[:n], target)
			}
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := back.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			c := p.client
			p.mu.Unlock()
			if c != nil && !p.dead.Load() {
				front.WriteToUDP(buf[:n], c)
			}
		}
	}()
	return p
}

// TestReconnectedPeerOldConnectionClosed: a node's QUIC connection to a
// peer goes dead without a word (the peer's machine died), and the peer comes
// back with the same key on a new connection. The node pings the old
// connection, gets no answer, and closes it within seconds — not at QUIC's
// 30 s idle timeout — and gossip between the two works over the new one.
func TestReconnectedPeerOldConnectionClosed(t *testing.T) {
	h, a := newIdentity(t), newIdentity(t)
	m := newMembers(h, a)
	nh := newGossipNode(t, h, newHost(t, h), m)
	ah := newHost(t, a)
	na := newGossipNode(t, a, ah, m)

	// h reaches a's QUIC address only through the proxy.
	var quicAddr *net.UDPAddr
	for _, ma := range ah.Addrs() {
		if ip, err := ma.ValueForProtocol(multiaddr.P_IP4); err == nil {
			if port, err := ma.ValueForProtocol(multiaddr.P_UDP); err == nil {
				quicAddr, _ = net.ResolveUDPAddr("udp4", ip+":"+port)
			}
		}
	}
	if quicAddr == nil {
		t.Fatal("no QUIC address")
	}
	proxy := newUDPProxy(t, quicAddr)
	via, err := multiaddr.NewMultiaddr("/ip4/127.0.0.1/udp/" + strconv.Itoa(proxy.front.LocalAddr().(*net.UDPAddr).Port) + "/quic-v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := nh.h.Connect(context.Background(), peer.AddrInfo{ID: a.PeerID(), Addrs: []multiaddr.Multiaddr{via}}); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, na.g, 1)
	old := nh.h.Network().ConnsToPeer(a.PeerID())
	if len(old) != 1 {
		t.Fatalf("%d connections", len(old))
	}

	// a's machine dies: nothing more gets through, nothing is closed.
	proxy.dead.Store(true)
	na.g.Close()
	ah.Close()

	// a comes back with the same key at a new address and connects.
	a2 := newGossipNode(t, a, newHost(t, a), m)
	closed := make(chan struct{})
	nh.h.Network().Notify(&network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if c == old[0] {
			close(closed)
		}
	}})
	start := time.Now()
	connect(t, a2.h, nh.h)
	select {
	case <-closed:
		t.Logf("old connection closed %v after the peer reconnected", time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("the dead connection was not closed within 15 s (QUIC's idle timeout is 30 s)")
	}
	// Gossip between them works over the new connection: a2 hears that h
	// is on the topics.
	waitTopicPeers(t, a2.g, 1)
}
