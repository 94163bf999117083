package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
)

// The instance protocol tells a node whether another live process holds its
// identity (the same mnemonic started twice). Every node answers it with
// the random nonce its process drew at start; a node probes its own peer ID
// at the addresses the chain lists for it, from a throwaway host with a
// fresh key (a host cannot dial its own ID). Noise (or QUIC's TLS)
// authenticates the answering host as the holder of the identity's key: an
// answer with another nonce is another instance; an answer with its own
// nonce is itself; no answer is nobody (docs/protocol.md, "Instance").
const (
	// InstanceProtocol answers with the responding process's instance
	// nonce: InstanceNonceSize bytes, then the stream is closed. No request.
	InstanceProtocol protocol.ID = "/ksb/instance/1.0.0"
	// InstanceServiceName is its resource-manager service (see Limits).
	InstanceServiceName = "ksb.instance"
	// InstanceNonceSize is the nonce's size: 128 random bits, so two
	// processes never draw the same.
	InstanceNonceSize = 16
	// InstanceProbeTimeout bounds one probe (dials to every listed address,
	// the handshake, the nonce). The addresses are the node's own, usually
	// on the same machine, but a loaded machine answers itself slowly (5 s
	// was seen to expire under -race at load 35), and an unanswered probe
	// only delays releases by a minute; the probe runs at most once a
	// minute, in the chain follower, so 10 s delays one poll at worst.
	InstanceProbeTimeout = 10 * time.Second
	// instanceStreamTimeout bounds the responder's write: 16 bytes.
	instanceStreamTimeout = 5 * time.Second
	// instanceStreams, instanceStreamsPerPeer: inbound probes at once; a
	// node probes itself once a minute, so these only bound strangers.
	instanceStreams        = 16
	instanceStreamsPerPeer = 2
)

// InstanceNonce identifies one process of a node.
type InstanceNonce [InstanceNonceSize]byte

// NewInstanceNonce draws a random nonce.
func NewInstanceNonce() (InstanceNonce, error) {
	var n InstanceNonce
	_, err := rand.Read(n[:])
	return n, err
}

// ErrNoInstance is returned by ProbeInstance when no host holding the peer
// ID answered at the addresses given.
var ErrNoInstance = errors.New("no instance answered")

// ServeInstance answers InstanceProtocol on h with nonce.
func ServeInstance(h host.Host, nonce InstanceNonce) {
	h.SetStreamHandler(InstanceProtocol, func(s network.Stream) {
		if err := s.Scope().SetService(InstanceServiceName); err != nil {
			s.Reset()
			return
		}
		if err := s.SetDeadline(time.Now().Add(instanceStreamTimeout)); err != nil {
			s.Reset()
			return
		}
		if _, err := s.Write(nonce[:]); err != nil {
			s.Reset()
			return
		}
		s.Close()
	})
}

// Instance is what a probe reached.
type Instance struct {
	// Nonce is the instance nonce the host answered with. Zero with
	// NoProtocol.
	Nonce InstanceNonce
	// NoProtocol is set when a host holding the key answered the handshake
	// but not InstanceProtocol (a ksb version without it): another process
	// in any case, since this one serves it.
	NoProtocol bool
	// Addr is the address the connection was made on.
	Addr multiaddr.Multiaddr
}

// ProbeInstance connects to id at addrs from a throwaway host with a fresh
// random key and reads the instance nonce of the process holding id's key
// there. It returns ErrNoInstance when no host with id answered (nothing
// listens, or another peer ID does), and other errors for a host that
// answered but failed the protocol.
func ProbeInstance(ctx context.Context, id peer.ID, addrs []multiaddr.Multiaddr) (Instance, error) {
	if len(addrs) == 0 {
		return Instance{}, ErrNoInstance
	}
	ctx, cancel := context.WithTimeout(ctx, InstanceProbeTimeout)
	defer cancel()
	h, err := libp2p.New(
		libp2p.NoListenAddrs,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("ksb-instance-probe"),
	)
	if err != nil {
		return Instance{}, fmt.Errorf("probe host: %w", err)
	}
	defer h.Close()
	if err := h.Connect(ctx, peer.AddrInfo{ID: id, Addrs: addrs}); err != nil {
		return Instance{}, fmt.Errorf("%w: %v", ErrNoInstance, err)
	}
	var in Instance
	if conns := h.Network().ConnsToPeer(id); len(conns) > 0 {
		in.Addr = conns[0].RemoteMultiaddr()
	}
	s, err := h.NewStream(ctx, id, InstanceProtocol)
	if err != nil {
		var nse msmux.ErrNotSupported[protocol.ID]
		if errors.As(err, &nse) {
			in.NoProtocol = true
			return in, nil
		}
		return in, fmt.Errorf("opening %s: %w", InstanceProtocol, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	if _, err := io.ReadFull(s, in.Nonce[:]); err != nil {
		s.Reset()
		return in, fmt.Errorf("reading the instance nonce: %w", err)
	}
	return in, nil
}
