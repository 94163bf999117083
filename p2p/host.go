package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/ksb-project/ksb/identity"
)

const (
	// DefaultConnLow and DefaultConnHigh are the connection manager's
	// watermarks when HostConfig leaves them zero. A THORChain network has
	// about 100 active nodes and ksb wants a connection to each of them (pushes,
	// gossip mesh), so trimming starts well above that.
	DefaultConnLow  = 64
	DefaultConnHigh = 192

	// connGracePeriod is how long a new connection is safe from trimming: long
	// enough for a push or fetch that opened it to finish (PushTimeout).
	connGracePeriod = time.Minute

	// hostMemory is the memory, in bytes, the resource manager lets the whole
	// libp2p stack reserve (system scope), and what the default per-scope
	// limits are scaled to. 256 MiB holds every inbound ksb stream at its cap
	// at once (activePushStreams+activeFetchStreams+strangerFetchStreams+
	// returnStreams+activeRepairStreams blobs of MaxBlobSize: 76 MiB) with room for this node's
	// own pushes, muxer windows and gossip, while leaving a node machine's
	// memory to thornode and bifrost.
	hostMemory = 256 << 20

	// fdsPerConn is the file descriptors the resource manager allows per
	// permitted connection (a TCP socket each; QUIC shares one UDP socket)
	// and fdSlack the extra for listeners.
	fdsPerConn = 1
	fdSlack    = 64

	// ProtectTag is the connection-manager tag that keeps connections to
	// known peers (ConnectPeers) from being trimmed.
	ProtectTag = "ksb-known"

	// dialTimeout bounds one ConnectPeers dial, so an unreachable peer does
	// not hold up the others for the kernel's TCP timeout.
	dialTimeout = 15 * time.Second
)

// Per-service stream and memory limits given to the resource manager. They
// are the outer bound behind the handlers' own allowances per class of peer
// (peerclass.go), which are the precise ones: a stream stays in its service
// scope from the handler's SetService until both sides have closed it, a
// little after the handler is done, so the stream counts are twice the
// handlers' allowances; memory is only reserved inside a handler, so the
// memory limits are the allowances times the largest reservation one stream
// makes (a blob of MaxBlobSize plus its frames).
const (
	// pushInStreams, pushInStreamsPerPeer: inbound pushes, twice the
	// active nodes' allowance (activePushStreams, MaxPushStreamsPerPeer).
	pushInStreams        = 2 * activePushStreams
	pushInStreamsPerPeer = 2 * MaxPushStreamsPerPeer
	// pushOutStreams: this node's own pushes in flight, to all holders
	// (Service.Push keeps MaxPushStreamsPerPeer per holder); an owner pushes
	// each share to r holders, a few shares at once.
	pushOutStreams = activePushStreams
	// fetchInStreams, fetchInStreamsPerPeer: inbound fetches, twice the
	// allowances of active nodes and of non-active owners together.
	fetchInStreams        = 2 * (activeFetchStreams + strangerFetchStreams)
	fetchInStreamsPerPeer = 2 * MaxFetchStreamsPerPeer
	// fetchOutStreams: a recovering node fetches every vault's blob from all
	// of its holders at once; an owner is in a handful of vaults.
	fetchOutStreams = 32
	// returnStreams inbound return streams while recovering: one per holder
	// of this node's shares, with room to spare.
	returnStreams        = 16
	returnStreamsPerPeer = 2
	// repairInStreams, repairInStreamsPerPeer: inbound repairs, twice the
	// active nodes' allowance (activeRepairStreams, MaxRepairStreamsPerPeer);
	// repairOutStreams: this node's own repairs as a source, to all
	// replacements (Service.Repair keeps MaxRepairStreamsPerPeer each).
	repairInStreams        = 2 * activeRepairStreams
	repairInStreamsPerPeer = 2 * MaxRepairStreamsPerPeer
	repairOutStreams       = activeRepairStreams
	// streamMemorySlack covers frames next to a blob reservation.
	streamMemorySlack = 64 << 10
	// streamMemory is the most one ksb stream reserves at once.
	streamMemory = MaxBlobSize + streamMemorySlack
)

// HostConfig configures NewHost.
type HostConfig struct {
	// Identity is the node identity; its key is the host's peer key.
	Identity *identity.Identity
	// Listen is the multiaddrs to listen on, e.g. "/ip4/0.0.0.0/tcp/6540"
	// and "/ip4/0.0.0.0/udp/6540/quic-v1". Empty listens nowhere (a client
	// only host, as `ksb recover` starts).
	Listen []string
	// ConnLow and ConnHigh are the connection manager's watermarks; zero
	// means DefaultConnLow and DefaultConnHigh.
	ConnLow, ConnHigh int
}

// NewHost starts a libp2p host for the node: its identity key; TCP with Noise
// as the only security protocol (no TLS), and QUIC (which has its own TLS 1.3
// handshake, authenticating the same peer key); no relay, no NAT port
// mapping; a
// connection manager with the configured watermarks; and a resource manager
// with explicit limits (see Limits).
func NewHost(cfg HostConfig) (host.Host, error) {
	if cfg.Identity == nil {
		return nil, fmt.Errorf("%w: no identity", ErrBadConfig)
	}
	low, high := cfg.ConnLow, cfg.ConnHigh
	if low == 0 {
		low = DefaultConnLow
	}
	if high == 0 {
		high = DefaultConnHigh
	}
	if low < 0 || high < low {
		return nil, fmt.Errorf("%w: connection watermarks low %d, high %d", ErrBadConfig, low, high)
	}
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(connGracePeriod))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(Limits(high)))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity.P2PKey()),
		libp2p.Security(noise.ID, noise.New),
		// No SO_REUSEPORT on TCP: with it a second process (another ksb
		// node, anything that sets it) binds the same port and the kernel
		// splits the inbound connections between them. ksb dials from
		// ephemeral ports; it needs no port reuse for NAT traversal (no hole
		// punching). QUIC keeps go-libp2p's default: its reuse binds a UDP
		// port once per process (a second process gets EADDRINUSE, which
		// checkListening reports), and quicreuse without it leaks the
		// socket when the host closes (go-libp2p v0.51).
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("ksb"),
	}
	if len(cfg.Listen) == 0 {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(cfg.Listen...))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		// No address bound: name those that cannot be.
		var taken []string
		for _, s := range cfg.Listen {
			if a, perr := multiaddr.NewMultiaddr(s); perr == nil {
				if why := bindProblem(a); why != "" {
					taken = append(taken, s+why)
				}
			}
		}
		if len(taken) > 0 {
			return nil, fmt.Errorf("%w: %s; refusing to start (free the port or change p2p.listen)", ErrListen, strings.Join(taken, ", "))
		}
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	if err := checkListening(cfg.Listen, h.Network().ListenAddresses()); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// checkListening returns an ErrListen naming every configured address that
// is not among the host's listeners: libp2p starts a host when at least one
// of its addresses binds, which would leave a node running without a
// transport it was told to offer (a TCP port taken by another process, and
// the node reachable over QUIC only). A configured port 0 matches any port.
func checkListening(configured []string, listening []multiaddr.Multiaddr) error {
	var missing []string
	for _, s := range configured {
		want, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: listen address %q: %v", ErrBadConfig, s, err)
		}
		found := false
		for _, got := range listening {
			if listenMatches(want, got) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, s+bindProblem(want))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s; refusing to start without it (free the port or change p2p.listen)", ErrListen, strings.Join(missing, ", "))
	}
	return nil
}

// listenMatches reports whether the listener got serves the configured
// address want: the same protocols and values, a port 0 in want matching
// any port.
func listenMatches(want, got multiaddr.Multiaddr) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Code() != g.Code() {
			return false
		}
		if (w.Code() == multiaddr.P_TCP || w.Code() == multiaddr.P_UDP) && w.Value() == "0" {
			continue
		}
		if w.Value() != g.Value() {
			return false
		}
	}
	return true
}

// bindProblem says why the address cannot be bound, by trying to bind it
// plainly (the swarm does not return its error when another address bound):
// " (listen tcp 127.0.0.1:6540: bind: address already in use)", or "" when
// it binds now (or is not TCP or UDP).
func bindProblem(a multiaddr.Multiaddr) string {
	network, hostport, err := manet.DialArgs(a)
	if err != nil {
		return ""
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		l, err := net.Listen(network, hostport)
		if err != nil {
			return " (" + err.Error() + ")"
		}
		l.Close()
		return ""
	case "udp", "udp4", "udp6":
		c, err := net.ListenPacket(network, hostport)
		if err != nil {
			return " (" + err.Error() + ")"
		}
		c.Close()
	}
	return ""
}

// Limits returns the resource-manager limits NewHost uses for a connection
// high watermark of connHigh: go-libp2p's default limits scaled to hostMemory,
// system connections raised to twice connHigh (so the connection manager trims
// long before the resource manager refuses), file descriptors to match, and
// explicit limits for the ksb services (push, fetch, return, repair) sized from the
// handlers' stream allowances per class of peer and MaxBlobSize.
func Limits(connHigh int) rcmgr.ConcreteLimitConfig {
	cfg := rcmgr.DefaultLimits
	svc := func(name string, in, out, inPerPeer, outPerPeer int, mem, memPerPeer int64) {
		cfg.AddServiceLimit(name,
			rcmgr.BaseLimit{StreamsInbound: in, StreamsOutbound: out, Streams: in + out, Memory: mem},
			rcmgr.BaseLimitIncrease{})
		cfg.AddServicePeerLimit(name,
			rcmgr.BaseLimit{StreamsInbound: inPerPeer, StreamsOutbound: outPerPeer, Streams: inPerPeer + outPerPeer, Memory: memPerPeer},
			rcmgr.BaseLimitIncrease{})
	}
	svc(PushServiceName, pushInStreams, pushOutStreams, pushInStreamsPerPeer, pushInStreamsPerPeer,
		int64(activePushStreams+pushOutStreams)*streamMemory, 2*MaxPushStreamsPerPeer*streamMemory)
	svc(FetchServiceName, fetchInStreams, fetchOutStreams, fetchInStreamsPerPeer, fetchOutStreams,
		int64(activeFetchStreams+strangerFetchStreams+fetchOutStreams)*streamMemory, int64(fetchOutStreams)*streamMemory)
	svc(ReturnServiceName, returnStreams, returnStreams, returnStreamsPerPeer, returnStreamsPerPeer,
		2*returnStreams*streamMemory, 2*returnStreamsPerPeer*streamMemory)
	svc(RepairServiceName, repairInStreams, repairOutStreams, repairInStreamsPerPeer, repairInStreamsPerPeer,
		int64(activeRepairStreams+repairOutStreams)*streamMemory, 2*MaxRepairStreamsPerPeer*streamMemory)
	svc(InstanceServiceName, instanceStreams, instanceStreams, instanceStreamsPerPeer, instanceStreamsPerPeer,
		instanceStreams*streamMemorySlack, instanceStreamsPerPeer*streamMemorySlack)
	conns := 2 * connHigh
	fds := conns*fdsPerConn + fdSlack
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:         rcmgr.LimitVal(conns),
			ConnsInbound:  rcmgr.LimitVal(conns),
			ConnsOutbound: rcmgr.LimitVal(conns),
			FD:            rcmgr.LimitVal(fds),
			Memory:        rcmgr.LimitVal64(hostMemory),
		},
	}
	return partial.Build(cfg.Scale(hostMemory, fds))
}

// ConnectPeers makes sure a flood of other peers cannot push the given peers
// (the active nodes, and configured bootstrap peers) out: it protects them in
// the host's connection manager (tag ProtectTag), so they are never trimmed,
// and adds each of their IP addresses, bound to their peer ID, to the
// resource manager's allowlist, so a connection of theirs is accepted even
// when the system's connection limits are reached (by go-libp2p's separate
// allowlisted scopes). It then adds their addresses to the peerstore and
// dials those not yet connected, concurrently. The host itself is skipped. It
// returns the dial errors joined; peers that connected stay connected either
// way. Calling it again with the same peers adds nothing twice.
func ConnectPeers(ctx context.Context, h host.Host, peers []peer.AddrInfo) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	allow := rcmgr.GetAllowlist(h.Network().ResourceManager())
	for _, p := range peers {
		if p.ID == h.ID() || p.ID == "" {
			continue
		}
		h.ConnManager().Protect(p.ID, ProtectTag)
		if allow != nil {
			allowPeer(allow, p)
		}
		h.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
		wg.Add(1)
		go func(p peer.AddrInfo) {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			if err := h.Connect(dctx, p); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("connecting to %s: %w", p.ID, err))
				mu.Unlock()
			}
		}(p)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// allowPeer adds every IP address of p, bound to p's peer ID, to the
// resource manager's allowlist (once: an entry already there is removed
// first). Addresses without an IP (DNS names) cannot be allowlisted.
func allowPeer(allow *rcmgr.Allowlist, p peer.AddrInfo) {
	seen := map[string]bool{}
	for _, a := range p.Addrs {
		first, _ := multiaddr.SplitFirst(a)
		if first == nil {
			continue
		}
		if c := first.Protocol().Code; c != multiaddr.P_IP4 && c != multiaddr.P_IP6 {
			continue
		}
		s := fmt.Sprintf("/%s/%s/p2p/%s", first.Protocol().Name, first.Value(), p.ID)
		if seen[s] {
			continue
		}
		seen[s] = true
		m, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			continue
		}
		_ = allow.Remove(m)
		_ = allow.Add(m)
	}
}
