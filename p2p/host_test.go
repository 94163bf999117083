package p2p_test

import (
	"context"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/p2p"
)

func TestNewHostConfig(t *testing.T) {
	id := newIdentity(t)
	for name, cfg := range map[string]p2p.HostConfig{
		"no identity":     {Listen: testListen},
		"high below low":  {Identity: id, ConnLow: 10, ConnHigh: 5},
		"negative low":    {Identity: id, ConnLow: -1, ConnHigh: 5},
		"bad listen addr": {Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/notaport"}},
	} {
		if h, err := p2p.NewHost(cfg); err == nil {
			h.Close()
			t.Errorf("%s: no error", name)
		} else if name != "bad listen addr" && !errors.Is(err, p2p.ErrBadConfig) {
			t.Errorf("%s: err = %v, want ErrBadConfig", name, err)
		}
	}
}

// TestTransports checks that hosts talk over TCP with Noise and over QUIC,
// and that the peer ID is the node identity's.
func TestTransports(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	ha, hb := newHost(t, a), newHost(t, b)
	if ha.ID() != a.PeerID() {
		t.Fatalf("host ID %s, identity peer ID %s", ha.ID(), a.PeerID())
	}
	for _, c := range []struct{ transport, want, security string }{
		{"/tcp/", "tcp", "/noise"},
		{"/quic-v1", "quic-v1", ""}, // QUIC secures itself (TLS 1.3 with the same key)
	} {
		for _, conn := range ha.Network().ConnsToPeer(hb.ID()) {
			conn.Close()
		}
		connectOver(t, ha, hb, c.transport)
		conns := ha.Network().ConnsToPeer(hb.ID())
		if len(conns) != 1 {
			t.Fatalf("%s: %d connections", c.transport, len(conns))
		}
		st := conns[0].ConnState()
		if st.Transport != c.want || string(st.Security) != c.security {
			t.Fatalf("%s: transport %q, security %q", c.transport, st.Transport, st.Security)
		}
	}
}

func TestConnectPeersProtects(t *testing.T) {
	a, b, c := newIdentity(t), newIdentity(t), newIdentity(t)
	ha, hb := newHost(t, a), newHost(t, b)
	unreachable := peer.AddrInfo{ID: c.PeerID()} // no address
	err := p2p.ConnectPeers(context.Background(), ha, []peer.AddrInfo{
		{ID: hb.ID(), Addrs: hb.Addrs()}, {ID: ha.ID()}, unreachable,
	})
	if err == nil {
		t.Fatal("dialing a peer without address did not fail")
	}
	if len(ha.Network().ConnsToPeer(hb.ID())) == 0 {
		t.Fatal("reachable peer not connected")
	}
	if !ha.ConnManager().IsProtected(hb.ID(), p2p.ProtectTag) {
		t.Fatal("known peer not protected")
	}
}

func TestLimits(t *testing.T) {
	l := p2p.Limits(192).ToPartialLimitConfig()
	for _, svc := range []string{p2p.PushServiceName, p2p.FetchServiceName, p2p.ReturnServiceName} {
		s, ok := l.Service[svc]
		if !ok {
			t.Fatalf("no limit for service %s", svc)
		}
		if int64(s.Memory) < p2p.MaxBlobSize {
			t.Fatalf("service %s memory %v is below one blob", svc, s.Memory)
		}
	}
	if l.System.Conns != 384 {
		t.Fatalf("system conns %v, want 2 × 192", l.System.Conns)
	}
}
