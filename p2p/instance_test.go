package p2p_test

import (
	"context"
	"errors"
	"testing"

	"github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/p2p"
)

// TestProbeInstance: a probe of a peer ID reads the nonce of the host that
// holds its key; a host with the key that does not serve the protocol is
// reported as such; an address where nothing listens, or where another
// peer ID answers, is no instance.
func TestProbeInstance(t *testing.T) {
	ctx := context.Background()
	id := newIdentity(t)
	h := newHost(t, id)
	// Not served yet: a host with the key, without the protocol.
	in, err := p2p.ProbeInstance(ctx, id.PeerID(), h.Addrs())
	if err != nil || !in.NoProtocol {
		t.Fatalf("host without the protocol: %+v, %v; want NoProtocol", in, err)
	}
	nonce, err := p2p.NewInstanceNonce()
	if err != nil {
		t.Fatal(err)
	}
	p2p.ServeInstance(h, nonce)
	in, err = p2p.ProbeInstance(ctx, id.PeerID(), h.Addrs())
	if err != nil || in.Nonce != nonce || in.NoProtocol || in.Addr == nil {
		t.Fatalf("probe: %+v, %v; want nonce %x", in, err, nonce)
	}

	// Another peer ID at the address: the handshake fails, no instance.
	other := newHost(t, newIdentity(t))
	if _, err := p2p.ProbeInstance(ctx, id.PeerID(), other.Addrs()); !errors.Is(err, p2p.ErrNoInstance) {
		t.Fatalf("another peer ID at the address: %v, want ErrNoInstance", err)
	}
	// Nothing listening.
	dead := multiaddr.StringCast("/ip4/127.0.0.1/tcp/1")
	if _, err := p2p.ProbeInstance(ctx, id.PeerID(), []multiaddr.Multiaddr{dead}); !errors.Is(err, p2p.ErrNoInstance) {
		t.Fatalf("nothing listening: %v, want ErrNoInstance", err)
	}
}
