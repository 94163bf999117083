package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p/internal/pb"
	"github.com/ksb-project/ksb/store"
)

// Gossip topics, message caps and time windows (docs/protocol.md).
const (
	// HeartbeatTopic carries each node's signed heartbeat.
	HeartbeatTopic = "/ksb/heartbeat/1"
	// RecoveryTopic carries signed recovery requests.
	RecoveryTopic = "/ksb/recovery/1"

	// maxHeartbeatSize caps a heartbeat: a key, five varints and a 64-byte
	// signature take under 200 bytes.
	maxHeartbeatSize = 512
	// maxRecoveryRequestSize caps a recovery request: a key, a nonce, a
	// time, up to maxRecoveryAddrs addresses and a signature.
	maxRecoveryRequestSize = 4096
	// maxRecoveryAddrs caps the addresses in a recovery request: a node
	// listens on a few (TCP and QUIC, IPv4 and IPv6).
	maxRecoveryAddrs = 16
	// maxAddrSize caps one binary multiaddr (an IPv6 QUIC address is 30
	// bytes; DNS names make it longer).
	maxAddrSize = 256
	// nonceSize is the length of a recovery request nonce: 128 random bits
	// never repeat by chance.
	nonceSize = 16

	// DefaultHeartbeatMinInterval is the default least time between two
	// heartbeats of one node that are accepted; faster ones are ignored. It
	// is well under config's default interval (30 s) so a node is never
	// muted by clock jitter.
	DefaultHeartbeatMinInterval = 5 * time.Second
	// MaxClockSkew is how far a heartbeat's time may be from the receiver's
	// clock, either way; one outside it is ignored. Gossip delivers in well
	// under a second, so the rest is room for the two clocks' offsets.
	MaxClockSkew = 2 * time.Minute
	// ClockTolerance is the offset from the network's time (the chain's
	// block times, the peers' heartbeats) a node's clock may have: two nodes
	// within it, on either side, are within MaxClockSkew of each other and
	// hear each other's heartbeats. A node beyond it says so (the daemon in
	// its log, on /healthz and in `ksb status`; `ksb recover` with a
	// warning). Recovery requests do not depend on it.
	ClockTolerance = MaxClockSkew / 2
	// HeartbeatMaxAge is how long, on this node's clock, a received
	// heartbeat is kept once the table of heard nodes is full.
	HeartbeatMaxAge = 2 * time.Minute

	// Recovery requests carry no validity window: the recovering machine's
	// clock is often wrong (a fresh VM, a restored snapshot). Replays are
	// bounded instead by what follows, all on the holder's own clock, and by
	// the owner, which has a holder send blobs only in answer to a request
	// of its running recovery (docs/protocol.md, "Replays and
	// amplification").

	// recoveryNonceMemory is how long a holder remembers the nonce of a
	// recovery request it accepted: a replay within it is ignored, and not
	// relayed. An hour is thirty times what a recovery takes at most (`ksb
	// recover` stops after 2 min), and makes replays useless for keeping a
	// holder from hearing an owner: they would have to take every one of the
	// owner's 2 s slots (recoveryMinInterval) with a request the holder has
	// not seen for an hour, 1,800 recorded requests of that owner an hour,
	// some 45 of its recoveries.
	recoveryNonceMemory = time.Hour
	// maxRecoveryNonces caps the nonces remembered (16 bytes and an expiry
	// each, about 8 MiB); the oldest is forgotten first. The rate limits
	// below accept far fewer in recoveryNonceMemory on any real network.
	maxRecoveryNonces = 1 << 17
	// recoveryMinInterval is the least time between two accepted (and so
	// relayed) requests of one owner: under `ksb recover`'s republish
	// interval (3 s), so every republished request travels, while one owner
	// cannot make the topic carry more than one request of it every 2 s.
	recoveryMinInterval = 2 * time.Second
	// RecoveryRepublishInterval is how often Recover republishes its request
	// (with a new nonce), for holders that joined late or missed it.
	RecoveryRepublishInterval = 15 * time.Second
	// unknownOwnerBurst and unknownOwnerInterval rate-limit, per node,
	// requests of owners that are neither active nor hold anything here: anyone
	// can make keys, so these share one budget and cannot crowd out known
	// owners.
	unknownOwnerBurst    = 8
	unknownOwnerInterval = 5 * time.Second
	// returnRepeatInterval is the least time between two sends of one
	// owner's blobs by this holder: the bound on how often anyone, the owner
	// included, can make a holder send the same blobs. An owner's recovery
	// has each holder send once (it declines later offers), so only a
	// recovery run again within it waits, at most this long, for a holder.
	// It is the per-peer fetch rate once the burst is spent (1 per 10 s), so
	// the return path gives an owner no more than fetching would.
	returnRepeatInterval = 10 * time.Second
	// returnOfferTimeout bounds opening a return stream and its offer
	// exchange: a dial and a protocol negotiation, then one round trip. A
	// connection that gives no answer in that time is dead (the owner's
	// machine died with it open, and a QUIC connection lingers until its
	// idle timeout): it is closed and the return tried once more, over a
	// fresh dial.
	returnOfferTimeout = HeaderTimeout
	// returnAttempts is how many connections one return tries.
	returnAttempts = 2
	// maxReturnReplySize caps the owner's reply to an offer (a bool).
	maxReturnReplySize = 16
	// maxConcurrentReturns bounds the return streams a holder runs at once.
	// A request that finds them all busy waits its turn in the return queue
	// (first come, first served; see maxQueuedReturns): dropping it instead
	// would let owners that keep asking and never read their returns (each
	// holds a slot up to the fetch deadline) hold every slot for ever.
	maxConcurrentReturns = 4
	// maxQueuedReturns bounds the owners waiting for a return slot. An owner
	// is queued (or served) at most once at a time, and only an owner this
	// holder keeps blobs for is queued at all, so the queue holds at most
	// one entry per such owner: active nodes and former vault members, a
	// few hundred at most. A request beyond it is dropped (the owner
	// republishes).
	maxQueuedReturns = 256
	// returnCloseWait is how long a holder waits, after the end frame of a
	// return, for the owner to close the stream: an owner that has read
	// everything closes at once, and one that does not gives the return slot
	// back within seconds instead of holding it for the rest of FetchTimeout.
	returnCloseWait = HeaderTimeout
	// returnAddrTTL is how long a recovery request's addresses stay in the
	// peerstore: long enough for the return stream.
	returnAddrTTL = 2 * FetchTimeout
	// staleProbeTimeout bounds the ping that checks an older connection of
	// a peer that connects again: one round trip on any link. A connection
	// that does not answer is closed (see Gossip.connected).
	staleProbeTimeout = 2 * time.Second
	// maxConcurrentProbes bounds those pings; a reconnection beyond it is
	// not checked (its old connections still die at the transport's idle
	// timeout).
	maxConcurrentProbes = 8
	// maxTrackedNodes bounds the heartbeat, clock-offset and rate tables;
	// they hold active nodes only, about a hundred.
	maxTrackedNodes = 4096

	heartbeatDomain = "ksb/heartbeat/v1\n"
	recoveryDomain  = "ksb/recovery/v1\n"
)

// Gossipsub peer scoring (docs/protocol.md, "Peer scoring"). A peer's score
// at this node is the sum of: per topic, scoreInvalidWeight times the square
// of its decaying count of messages this node's validator rejected
// (gossipsub P4); scoreActiveBonus if it is an active node (P5); a penalty
// for many peers on one IP address (P6); and gossipsub's own penalty for
// protocol misbehaviour such as grafting during a backoff (P7). Validators
// reject only what is wrong whoever relays it, and ignore what depends on
// time or on this node's view of the chain, so honest peers are never
// penalised for a view that differs from ours.
const (
	// scoreInvalidWeight is the weight of the squared count of rejected
	// messages: 1 reject costs 10, 3 cost 90, 7 cost 490. A churn can make
	// an honest relay forward a message this node's view rejects no more
	// than once or twice.
	scoreInvalidWeight = -10
	// scoreInvalidDecay is how long a reject counts: after it the count has
	// decayed to nothing, so a peer that stops misbehaving is forgiven.
	scoreInvalidDecay = 10 * time.Minute
	// scoreActiveBonus is the application score of an active node: enough
	// that gossipsub keeps active nodes over strangers in its mesh and when
	// it prunes (a flood of fresh identities cannot push them out), not
	// enough to hide a misbehaving active node from the thresholds (7
	// rejects still graylist one).
	scoreActiveBonus = 20
	// scoreIPColocationThreshold and scoreIPColocationWeight penalise more
	// than 10 peers sharing one IP address by 10 times the square of the
	// excess: validators run one node per machine, while making identities
	// on one address is free. Loopback is exempt (devnets and tests run every
	// node on 127.0.0.1).
	scoreIPColocationThreshold = 10
	scoreIPColocationWeight    = -10
	// scoreBehaviourWeight, scoreBehaviourThreshold: gossipsub's penalty for
	// protocol misbehaviour (grafting during a backoff, broken IWANT
	// promises), squared above a tolerance of 6 events.
	scoreBehaviourWeight    = -10
	scoreBehaviourThreshold = 6
	// scoreInspectInterval is how often PeerScores is refreshed.
	scoreInspectInterval = time.Second

	// GossipThreshold: below it a peer gets no gossip (IHAVE/IWANT) from
	// this node; 4 rejects (160) put a stranger there.
	GossipThreshold = -100
	// PublishThreshold: below it this node does not flood-publish its own
	// messages to the peer.
	PublishThreshold = -200
	// GraylistThreshold: below it every RPC of the peer is dropped
	// unread: 7 rejects (490) put a stranger or an active node there.
	GraylistThreshold = -400
	// acceptPXThreshold: peer exchange is accepted only from active nodes
	// (gossipsub's PX is off by default; this keeps it so for strangers).
	acceptPXThreshold = scoreActiveBonus
	// opportunisticGraftThreshold: when the median mesh score falls below
	// it, gossipsub grafts better-scoring peers (active nodes) into the mesh.
	opportunisticGraftThreshold = scoreActiveBonus / 4
)

// scoreParams returns the peer-score parameters of the ksb topics, with
// active nodes (members) getting scoreActiveBonus.
func scoreParams(members ActiveSet) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	topic := func() *pubsub.TopicScoreParams {
		return &pubsub.TopicScoreParams{
			// Only P4 (rejected messages) is scored per topic: both topics
			// carry a few messages a minute, too few for delivery-rate
			// scores (P2, P3) to tell an honest peer from a silent one.
			SkipAtomicValidation:           true,
			TopicWeight:                    1,
			InvalidMessageDeliveriesWeight: scoreInvalidWeight,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(scoreInvalidDecay),
			// Unused (weight 0), but gossipsub divides by it.
			TimeInMeshQuantum: time.Second,
		}
	}
	loopback := []*net.IPNet{
		{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)},
		{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
	}
	params := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{
			HeartbeatTopic: topic(),
			RecoveryTopic:  topic(),
		},
		AppSpecificScore: func(p peer.ID) float64 {
			if key, err := identity.PubKeyFromPeerID(p); err == nil && members.IsActive(key) {
				return scoreActiveBonus
			}
			return 0
		},
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    scoreIPColocationWeight,
		IPColocationFactorThreshold: scoreIPColocationThreshold,
		IPColocationFactorWhitelist: loopback,
		BehaviourPenaltyWeight:      scoreBehaviourWeight,
		BehaviourPenaltyThreshold:   scoreBehaviourThreshold,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(scoreInvalidDecay),
		DecayInterval:               pubsub.DefaultDecayInterval,
		DecayToZero:                 pubsub.DefaultDecayToZero,
		// A peer that disconnects keeps its score this long, so
		// reconnecting does not wipe its rejects.
		RetainScore: scoreInvalidDecay,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             GossipThreshold,
		PublishThreshold:            PublishThreshold,
		GraylistThreshold:           GraylistThreshold,
		AcceptPXThreshold:           acceptPXThreshold,
		OpportunisticGraftThreshold: opportunisticGraftThreshold,
	}
	return params, thresholds
}

// Heartbeat is a node's last accepted heartbeat.
type Heartbeat struct {
	Peer  peer.ID
	Node  []byte // 33-byte compressed public key
	Stats HeartbeatStats
	// Time is the sender's timestamp; Received is when this node accepted it.
	Time, Received time.Time
}

// GossipOption configures a Gossip.
type GossipOption func(*Gossip) error

// WithGossipLogger sets the logger (default slog.Default()).
func WithGossipLogger(l *slog.Logger) GossipOption {
	return func(g *Gossip) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrBadConfig)
		}
		g.log = l
		return nil
	}
}

// WithGossipRegisterer registers the gossip metrics on r.
func WithGossipRegisterer(r prometheus.Registerer) GossipOption {
	return func(g *Gossip) error {
		if r == nil {
			return fmt.Errorf("%w: nil registerer", ErrBadConfig)
		}
		g.reg = r
		return nil
	}
}

// WithHeartbeatMinInterval sets the least time between two accepted
// heartbeats of one node (default DefaultHeartbeatMinInterval).
func WithHeartbeatMinInterval(d time.Duration) GossipOption {
	return func(g *Gossip) error {
		if d < 0 {
			return fmt.Errorf("%w: negative heartbeat interval", ErrBadConfig)
		}
		g.hbMinInterval = d
		return nil
	}
}

// WithRepublishInterval sets how often Recover republishes its request
// (default RecoveryRepublishInterval).
func WithRepublishInterval(d time.Duration) GossipOption {
	return func(g *Gossip) error {
		if d <= 0 {
			return fmt.Errorf("%w: republish interval %v", ErrBadConfig, d)
		}
		g.republish = d
		return nil
	}
}

// WithClock sets the wall clock the gossip reads: the time it writes into
// heartbeats and recovery requests and the time it judges received ones by
// (default time.Now). Tests give a node a wrong clock with it. Stream
// deadlines use the system clock, whatever this says.
func WithClock(now func() time.Time) GossipOption {
	return func(g *Gossip) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrBadConfig)
		}
		g.now = now
		return nil
	}
}

// ServeRecovery makes the node answer recovery requests: for an owner svc
// holds blobs of, it opens a ReturnProtocol stream to that owner's peer ID
// and sends them.
func ServeRecovery(svc *Service) GossipOption {
	return func(g *Gossip) error {
		if svc == nil {
			return fmt.Errorf("%w: nil service", ErrBadConfig)
		}
		g.svc = svc
		return nil
	}
}

// OnVerdict sets a function called with the outcome of validating every
// gossip message (topic, author, result and a short reason), for logs and
// tests. It is called on pubsub's validation goroutines and must not block.
func OnVerdict(f func(topic string, author peer.ID, result pubsub.ValidationResult, reason string)) GossipOption {
	return func(g *Gossip) error { g.onVerdict = f; return nil }
}

// Gossip runs the heartbeat and recovery topics over gossipsub.
type Gossip struct {
	h       host.Host
	id      *identity.Identity
	members ActiveSet
	ps      *pubsub.PubSub
	hb, rec *pubsub.Topic

	log           *slog.Logger
	reg           prometheus.Registerer
	svc           *Service
	hbMinInterval time.Duration
	republish     time.Duration
	onVerdict     func(string, peer.ID, pubsub.ValidationResult, string)
	verdicts      *prometheus.CounterVec
	unknown       *rateLimiter
	now           func() time.Time

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	notifiee *network.NotifyBundle
	probes   chan struct{}

	scoresMu sync.Mutex
	scores   map[peer.ID]float64

	// The return queue (see answer), under mu: owners waiting for a return
	// slot in the order their requests were accepted, the latest request of
	// each, and how many returns run.
	retQueue  []string
	retQueued map[string]*pb.RecoveryRequest
	retActive int

	mu         sync.Mutex
	heard      map[peer.ID]Heartbeat
	offsets    map[peer.ID]offsetSample       // active node → its last signed heartbeat's time against ours
	lastRecReq map[string]time.Time           // owner → last accepted request
	nonces     *nonceMemory                   // nonces of accepted requests
	returning  map[string]*pb.RecoveryRequest // owner → a return to it is in flight: the request to answer after it, if any
	lastSent   map[string]time.Time           // owner → when its blobs were last sent
	session    *recoverySession
	probing    map[peer.ID]bool // peers whose older connections are being checked
}

// offsetSample is one node's clock against this node's: this node's clock
// minus the time in its heartbeat, when it was received.
type offsetSample struct {
	offset time.Duration
	at     time.Time
}

// NewGossip starts gossipsub on h (messages signed by the node key and
// checked against their author, StrictSign; peer scoring with the parameters
// of scoreParams, active nodes per m getting a bonus), joins both topics with
// their validators, and subscribes to them. Close stops it.
func NewGossip(h host.Host, id *identity.Identity, m ActiveSet, opts ...GossipOption) (*Gossip, error) {
	if h == nil || id == nil || m == nil {
		return nil, fmt.Errorf("%w: host, identity and membership are required", ErrBadConfig)
	}
	if h.ID() != id.PeerID() {
		return nil, fmt.Errorf("%w: host %s does not run identity %s", ErrBadConfig, h.ID(), id.PeerID())
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gossip{
		h: h, id: id, members: m,
		log:           slog.Default(),
		hbMinInterval: DefaultHeartbeatMinInterval,
		republish:     RecoveryRepublishInterval,
		unknown:       newRateLimiter(unknownOwnerBurst, unknownOwnerInterval, 1),
		now:           time.Now,
		retQueued:     make(map[string]*pb.RecoveryRequest),
		ctx:           ctx, cancel: cancel,
		heard:      make(map[peer.ID]Heartbeat),
		offsets:    make(map[peer.ID]offsetSample),
		lastRecReq: make(map[string]time.Time),
		nonces:     newNonceMemory(maxRecoveryNonces, recoveryNonceMemory),
		returning:  make(map[string]*pb.RecoveryRequest),
		probing:    make(map[peer.ID]bool),
		probes:     make(chan struct{}, maxConcurrentProbes),
		lastSent:   make(map[string]time.Time),
	}
	g.verdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ksb", Subsystem: "p2p", Name: "gossip_messages_total",
		Help: "Gossip messages validated, by topic, result (accept, reject, ignore) and reason.",
	}, []string{"topic", "result", "reason"})
	fail := func(err error) (*Gossip, error) { cancel(); return nil, err }
	for _, o := range opts {
		if err := o(g); err != nil {
			return fail(err)
		}
	}
	if g.reg != nil {
		if err := g.reg.Register(g.verdicts); err != nil {
			return fail(fmt.Errorf("registering metrics: %w", err))
		}
	}
	params, thresholds := scoreParams(m)
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		// Our own messages go to every topic peer, not only the mesh: a
		// recovering node publishes right after it joins, before any mesh
		// has formed around it.
		pubsub.WithFloodPublish(true),
		// Rejected messages lower their relay's score; below the
		// thresholds it gets no gossip, then none of our messages, then
		// nothing it sends is read.
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(g.setScores), scoreInspectInterval),
	)
	if err != nil {
		return fail(fmt.Errorf("gossipsub: %w", err))
	}
	g.ps = ps
	if err := ps.RegisterTopicValidator(HeartbeatTopic, g.validateHeartbeat); err != nil {
		return fail(fmt.Errorf("heartbeat validator: %w", err))
	}
	if err := ps.RegisterTopicValidator(RecoveryTopic, g.validateRecovery); err != nil {
		return fail(fmt.Errorf("recovery validator: %w", err))
	}
	if g.hb, err = ps.Join(HeartbeatTopic); err != nil {
		return fail(fmt.Errorf("joining %s: %w", HeartbeatTopic, err))
	}
	if g.rec, err = ps.Join(RecoveryTopic); err != nil {
		return fail(fmt.Errorf("joining %s: %w", RecoveryTopic, err))
	}
	for _, t := range []*pubsub.Topic{g.hb, g.rec} {
		sub, err := t.Subscribe()
		if err != nil {
			return fail(fmt.Errorf("subscribing to %s: %w", t.String(), err))
		}
		g.wg.Add(1)
		go g.read(sub)
	}
	g.notifiee = &network.NotifyBundle{ConnectedF: g.connected}
	h.Network().Notify(g.notifiee)
	return g, nil
}

// Close leaves the topics and stops gossipsub and any return stream in
// flight. It does not close the host.
func (g *Gossip) Close() error {
	g.h.Network().StopNotify(g.notifiee)
	g.cancel()
	g.wg.Wait()
	return nil
}

// connected is called on every new connection. A peer that connects while
// this node still has older connections to it may have died with them open
// (killed, or its machine lost) and come back, as a recovering node does
// with its old key: a dead TCP connection is closed by the peer's kernel, but
// a dead QUIC connection lingers until the transport's idle timeout (30 s),
// and gossipsub keeps sending this node's messages to the peer over it — a
// recovering node would not hear that this node is on the recovery topic,
// and would not reach it, for that long. So the older connections are
// pinged, and those that do not answer within staleProbeTimeout are closed
// (gossipsub then opens its stream again over the new one).
func (g *Gossip) connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	var older []network.Conn
	for _, o := range g.h.Network().ConnsToPeer(p) {
		if o != c && !o.IsClosed() && o.Stat().Opened.Before(c.Stat().Opened) {
			older = append(older, o)
		}
	}
	if len(older) == 0 {
		return
	}
	g.mu.Lock()
	if g.probing[p] || g.ctx.Err() != nil {
		g.mu.Unlock()
		return
	}
	select {
	case g.probes <- struct{}{}:
	default:
		g.mu.Unlock()
		return
	}
	g.probing[p] = true
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		defer func() {
			g.mu.Lock()
			delete(g.probing, p)
			g.mu.Unlock()
			<-g.probes
		}()
		for _, o := range older {
			if err := probe(g.ctx, o); err != nil && g.ctx.Err() == nil {
				g.log.Info("closing a connection that does not answer; the peer reconnected", "peer", p, "transport", o.RemoteMultiaddr(), "err", err)
				o.Close()
			}
		}
	}()
}

// probe pings the peer over the connection c (go-libp2p's ping protocol,
// which every host serves) within staleProbeTimeout.
func probe(ctx context.Context, c network.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, staleProbeTimeout)
	defer cancel()
	s, err := c.NewStream(ctx)
	if err != nil {
		return err
	}
	defer s.Reset()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := s.SetDeadline(deadline(ctx, staleProbeTimeout)); err != nil {
		return err
	}
	if err := msmux.SelectProtoOrFail(ping.ID, s); err != nil {
		return err
	}
	if err := s.SetProtocol(ping.ID); err != nil {
		return err
	}
	var out, in [ping.PingSize]byte
	if _, err := rand.Read(out[:]); err != nil {
		return err
	}
	if _, err := s.Write(out[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(s, in[:]); err != nil {
		return err
	}
	if in != out {
		return errors.New("ping answered wrongly")
	}
	return nil
}

// read consumes a subscription: validated messages are acted on.
func (g *Gossip) read(sub *pubsub.Subscription) {
	defer g.wg.Done()
	defer sub.Cancel()
	for {
		msg, err := sub.Next(g.ctx)
		if err != nil {
			return
		}
		switch v := msg.ValidatorData.(type) {
		case Heartbeat:
			// The validator recorded it already; a newer one it accepted
			// since is not overwritten.
			g.mu.Lock()
			if cur, ok := g.heard[v.Peer]; !ok || !v.Time.Before(cur.Time) {
				g.heard[v.Peer] = v
			}
			g.pruneHeard()
			g.mu.Unlock()
		case *pb.RecoveryRequest:
			g.answer(v)
		}
	}
}

func (g *Gossip) pruneHeard() {
	if len(g.heard) <= maxTrackedNodes {
		return
	}
	for p, hb := range g.heard {
		if g.now().Sub(hb.Received) > HeartbeatMaxAge {
			delete(g.heard, p)
		}
	}
}

func (g *Gossip) verdict(topic string, author peer.ID, res pubsub.ValidationResult, reason string) pubsub.ValidationResult {
	name := map[pubsub.ValidationResult]string{pubsub.ValidationAccept: "accept", pubsub.ValidationReject: "reject", pubsub.ValidationIgnore: "ignore"}[res]
	g.verdicts.WithLabelValues(topic, name, reason).Inc()
	if res != pubsub.ValidationAccept {
		g.log.Debug("gossip message dropped", "topic", topic, "author", author, "result", name, "reason", reason)
	}
	if g.onVerdict != nil {
		g.onVerdict(topic, author, res, reason)
	}
	return res
}

// checkTime classifies a heartbeat's timestamp against this node's clock.
func (g *Gossip) checkTime(t time.Time) string {
	now := g.now()
	switch {
	case now.Sub(t) > MaxClockSkew:
		return "stale"
	case t.Sub(now) > MaxClockSkew:
		return "future"
	}
	return ""
}

// PublishHeartbeat signs and publishes a heartbeat with these figures.
func (g *Gossip) PublishHeartbeat(ctx context.Context, st HeartbeatStats) error {
	hb := pb.Heartbeat{
		Node:         g.id.PubKey(),
		Blobs:        uint64(max(st.Blobs, 0)),
		Bytes:        uint64(max(st.Bytes, 0)),
		QuotaBlobs:   uint64(max(st.QuotaBlobs, 0)),
		QuotaBytes:   uint64(max(st.QuotaBytes, 0)),
		TimeUnixNano: g.now().UnixNano(),
	}
	hb.Signature = g.id.Sign(append([]byte(heartbeatDomain), hb.Unsigned()...))
	if err := g.hb.Publish(ctx, hb.Marshal()); err != nil {
		return fmt.Errorf("publishing heartbeat: %w", err)
	}
	return nil
}

// RunHeartbeats publishes a heartbeat with stats() now and every interval
// until ctx is done. Failures are logged, not fatal: the next beat retries.
func (g *Gossip) RunHeartbeats(ctx context.Context, interval time.Duration, stats func() (HeartbeatStats, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := stats()
		if err == nil {
			err = g.PublishHeartbeat(ctx, st)
		}
		if err != nil && ctx.Err() == nil {
			g.log.Warn("heartbeat", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// validateHeartbeat is the heartbeat topic's validator.
func (g *Gossip) validateHeartbeat(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	author := msg.GetFrom()
	v := func(res pubsub.ValidationResult, reason string) pubsub.ValidationResult {
		return g.verdict(HeartbeatTopic, author, res, reason)
	}
	if len(msg.Data) > maxHeartbeatSize {
		return v(pubsub.ValidationReject, "oversize")
	}
	var hb pb.Heartbeat
	if err := hb.Unmarshal(msg.Data); err != nil {
		return v(pubsub.ValidationReject, "malformed")
	}
	authorKey, err := identity.PubKeyFromPeerID(author)
	if err != nil || !bytes.Equal(authorKey, hb.Node) {
		return v(pubsub.ValidationReject, "author_mismatch")
	}
	// Whether the author is active depends on this node's view of the chain
	// (a churn, a recovering node that knows no one): ignored, not
	// rejected, so no relay is penalised for it; and checked before the
	// signature, so a flood of heartbeats of non-active keys costs no
	// signature verification.
	if !g.members.IsActive(hb.Node) {
		return v(pubsub.ValidationIgnore, "not_active")
	}
	if identity.Verify(hb.Node, append([]byte(heartbeatDomain), hb.Unsigned()...), hb.Signature) != nil {
		return v(pubsub.ValidationReject, "bad_signature")
	}
	if hb.Blobs > 1<<40 || hb.Bytes > 1<<62 || hb.QuotaBlobs > 1<<40 || hb.QuotaBytes > 1<<62 {
		return v(pubsub.ValidationReject, "malformed")
	}
	sent := time.Unix(0, hb.TimeUnixNano)
	now := g.now()
	// The sample counts even when the time is outside the window below: a
	// node far off must still learn how far (PeerClockOffset).
	g.recordOffset(author, now.Sub(sent), now)
	if why := g.checkTime(sent); why != "" {
		return v(pubsub.ValidationIgnore, why)
	}
	g.mu.Lock()
	last, seen := g.heard[author]
	if seen && !last.Time.IsZero() && !sent.After(last.Time) {
		// Not newer than the last accepted one of this node, on its own
		// clock: a replay (or its clock went back; it is heard again once
		// its clock passes the last accepted time, at most MaxClockSkew
		// ahead of ours).
		g.mu.Unlock()
		return v(pubsub.ValidationIgnore, "replay")
	}
	if seen && now.Sub(last.Received) < g.hbMinInterval {
		g.mu.Unlock()
		return v(pubsub.ValidationIgnore, "too_frequent")
	}
	// Record the accepted heartbeat now, its time included: the next one
	// is checked against it at once, so two heartbeats validated at once
	// cannot both pass, and a replay of an older one validated before
	// read() has taken this one off the subscription is still a replay
	// (were only the slot stored here and the time by read(), the replay
	// check would have that gap, covered only by hbMinInterval).
	accepted := Heartbeat{
		Peer: author, Node: hb.Node, Time: sent, Received: now,
		Stats: HeartbeatStats{Blobs: int(hb.Blobs), Bytes: int64(hb.Bytes), QuotaBlobs: int(hb.QuotaBlobs), QuotaBytes: int64(hb.QuotaBytes)},
	}
	g.heard[author] = accepted
	g.mu.Unlock()
	msg.ValidatorData = accepted
	return v(pubsub.ValidationAccept, "ok")
}

// setScores is gossipsub's score inspector.
func (g *Gossip) setScores(scores map[peer.ID]float64) {
	g.scoresMu.Lock()
	g.scores = scores
	g.scoresMu.Unlock()
}

// PeerScores returns this node's gossipsub score of each peer it knows, as
// of at most scoreInspectInterval ago (see GossipThreshold, PublishThreshold,
// GraylistThreshold). The map is the caller's.
func (g *Gossip) PeerScores() map[peer.ID]float64 {
	g.scoresMu.Lock()
	defer g.scoresMu.Unlock()
	out := make(map[peer.ID]float64, len(g.scores))
	for p, s := range g.scores {
		out[p] = s
	}
	return out
}

// TopicPeers returns the peers this node knows to be on the heartbeat and
// recovery topics.
func (g *Gossip) TopicPeers() (heartbeat, recovery []peer.ID) {
	return g.hb.ListPeers(), g.rec.ListPeers()
}

// LastHeartbeat returns the last heartbeat accepted from p.
func (g *Gossip) LastHeartbeat(p peer.ID) (Heartbeat, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	hb, ok := g.heard[p]
	return hb, ok && !hb.Time.IsZero()
}

// HeardWithin returns a function reporting whether a heartbeat of a peer was
// accepted in the last d: the "recent" test SelectHolders takes.
func (g *Gossip) HeardWithin(d time.Duration) func(peer.ID) bool {
	return func(p peer.ID) bool {
		hb, ok := g.LastHeartbeat(p)
		return ok && g.now().Sub(hb.Received) <= d
	}
}

// recordOffset keeps an active node's clock sample (never this node's own).
func (g *Gossip) recordOffset(p peer.ID, offset time.Duration, now time.Time) {
	if p == g.h.ID() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.offsets[p]; !ok && len(g.offsets) >= maxTrackedNodes {
		for q, s := range g.offsets {
			if now.Sub(s.at) > HeartbeatMaxAge {
				delete(g.offsets, q)
			}
		}
		if len(g.offsets) >= maxTrackedNodes {
			return
		}
	}
	g.offsets[p] = offsetSample{offset: offset, at: now}
}

// PeerClockOffset estimates this node's clock offset from its peers': the
// median, over the active nodes whose signed heartbeat arrived in the last
// `within` (on this node's clock), of this node's clock minus the time in
// the heartbeat; positive when this node is ahead. Each sample also holds
// the heartbeat's delivery time, well under a second. n is how many nodes
// the median is over (0: no estimate). Heartbeats ignored for their time
// count here, so that a node far off still learns how far.
func (g *Gossip) PeerClockOffset(within time.Duration) (offset time.Duration, n int) {
	now := g.now()
	g.mu.Lock()
	var ds []time.Duration
	for _, s := range g.offsets {
		if now.Sub(s.at) <= within {
			ds = append(ds, s.offset)
		}
	}
	g.mu.Unlock()
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	if len(ds)%2 == 1 {
		return ds[len(ds)/2], len(ds)
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2, len(ds)
}

// validateRecovery is the recovery topic's validator. A request is not
// judged by its time (the requester's clock may be far off): see the
// recovery constants for what bounds replays.
func (g *Gossip) validateRecovery(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	author := msg.GetFrom()
	v := func(res pubsub.ValidationResult, reason string) pubsub.ValidationResult {
		return g.verdict(RecoveryTopic, author, res, reason)
	}
	if len(msg.Data) > maxRecoveryRequestSize {
		return v(pubsub.ValidationReject, "oversize")
	}
	var req pb.RecoveryRequest
	if err := req.Unmarshal(msg.Data); err != nil {
		return v(pubsub.ValidationReject, "malformed")
	}
	if len(req.Nonce) != nonceSize || len(req.Addrs) > maxRecoveryAddrs {
		return v(pubsub.ValidationReject, "malformed")
	}
	for _, a := range req.Addrs {
		if len(a) > maxAddrSize {
			return v(pubsub.ValidationReject, "malformed")
		}
		if _, err := multiaddr.NewMultiaddrBytes(a); err != nil {
			return v(pubsub.ValidationReject, "malformed")
		}
	}
	authorKey, err := identity.PubKeyFromPeerID(author)
	if err != nil || !bytes.Equal(authorKey, req.Owner) {
		return v(pubsub.ValidationReject, "author_mismatch")
	}
	if identity.Verify(req.Owner, append([]byte(recoveryDomain), req.Unsigned()...), req.Signature) != nil {
		return v(pubsub.ValidationReject, "bad_signature")
	}
	if msg.ReceivedFrom == g.h.ID() {
		// This node's own request (Recover): the rate limits are for others.
		return v(pubsub.ValidationAccept, "ok")
	}
	now := g.now()
	owner := string(req.Owner)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nonces.seen(string(req.Nonce), now) {
		return v(pubsub.ValidationIgnore, "replay")
	}
	if last, ok := g.lastRecReq[owner]; ok && now.Sub(last) < recoveryMinInterval {
		return v(pubsub.ValidationIgnore, "too_frequent")
	}
	if !g.known(req.Owner) && !g.unknown.allow("") {
		return v(pubsub.ValidationIgnore, "too_frequent")
	}
	g.nonces.add(string(req.Nonce), now)
	if len(g.lastRecReq) >= maxTrackedNodes {
		for o, t := range g.lastRecReq {
			if now.Sub(t) >= recoveryMinInterval {
				delete(g.lastRecReq, o)
			}
		}
	}
	g.lastRecReq[owner] = now
	msg.ValidatorData = &req
	return v(pubsub.ValidationAccept, "ok")
}

// known reports whether owner is an active node or has blobs here.
func (g *Gossip) known(owner []byte) bool {
	if g.members.IsActive(owner) {
		return true
	}
	if g.svc == nil {
		return false
	}
	entries, err := g.svc.st.Entries(owner)
	return err == nil && len(entries) > 0
}

// answer offers the owner its blobs for an accepted request, on its own
// goroutine, if this node serves recovery and holds any: none within
// returnRepeatInterval of the last send to that owner, at most
// maxConcurrentReturns at once, and one per owner at a time. Other requests
// wait their turn in the return queue, first come, first served (a request
// of an owner already queued replaces the queued one), so owners that ask
// again and again and never read what they asked for cannot keep the slots
// from anyone else. A request that comes while a return to its owner is in
// flight waits for it (only the newest waits) and is answered if that return
// sent nothing: a replayed request whose return fails cannot make this
// holder miss the owner's own.
func (g *Gossip) answer(req *pb.RecoveryRequest) {
	if g.svc == nil || bytes.Equal(req.Owner, g.id.PubKey()) {
		return
	}
	owner := string(req.Owner)
	if entries, err := g.svc.st.Entries(req.Owner); err != nil || len(entries) == 0 {
		return // nothing held here: no slot, no queue place
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if last, sent := g.lastSent[owner]; sent && g.now().Sub(last) < returnRepeatInterval {
		g.log.Debug("recovery request not answered: blobs sent to this owner recently", "owner", fmt.Sprintf("%x", req.Owner))
		return
	}
	if _, inFlight := g.returning[owner]; inFlight {
		g.returning[owner] = req
		return
	}
	if _, queued := g.retQueued[owner]; queued {
		g.retQueued[owner] = req
		return
	}
	if len(g.retQueue) >= maxQueuedReturns {
		g.log.Warn("recovery request dropped: return queue full", "owner", fmt.Sprintf("%x", req.Owner), "queued", len(g.retQueue))
		return
	}
	g.retQueued[owner] = req
	g.retQueue = append(g.retQueue, owner)
	g.startReturns()
}

// startReturns starts queued returns while slots are free. g.mu is held.
func (g *Gossip) startReturns() {
	for g.retActive < maxConcurrentReturns && len(g.retQueue) > 0 && g.ctx.Err() == nil {
		owner := g.retQueue[0]
		g.retQueue = g.retQueue[1:]
		req := g.retQueued[owner]
		delete(g.retQueued, owner)
		g.returning[owner] = nil
		g.retActive++
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for req != nil {
				sent := g.returnFor(req)
				g.mu.Lock()
				next := g.returning[owner]
				g.returning[owner] = nil
				if sent || next == nil || g.ctx.Err() != nil {
					delete(g.returning, owner)
					next = nil
				}
				g.mu.Unlock()
				req = next
			}
			g.mu.Lock()
			g.retActive--
			g.startReturns()
			g.mu.Unlock()
		}()
	}
}

// returnFor runs one return for req and records a send.
func (g *Gossip) returnFor(req *pb.RecoveryRequest) bool {
	addrs := make([]multiaddr.Multiaddr, 0, len(req.Addrs))
	for _, a := range req.Addrs {
		if m, err := multiaddr.NewMultiaddrBytes(a); err == nil {
			addrs = append(addrs, m)
		}
	}
	sent, err := g.svc.returnTo(g.ctx, req.Owner, req.Nonce, addrs, g.now)
	if err != nil {
		g.log.Info("returning blobs", "owner", fmt.Sprintf("%x", req.Owner), "err", err)
	}
	if sent {
		g.mu.Lock()
		now := g.now()
		for o, t := range g.lastSent {
			if now.Sub(t) >= returnRepeatInterval {
				delete(g.lastSent, o)
			}
		}
		g.lastSent[string(req.Owner)] = now
		g.mu.Unlock()
	}
	return sent
}

// errOfferUnanswered is an offer the owner did not answer in time.
var errOfferUnanswered = errors.New("no answer to the offer")

// returnTo offers every blob held for owner to the owner's peer ID over
// ReturnProtocol, in answer to the request with this nonce, and sends them
// if the owner accepts; sent says it did. Noise authenticates the peer, so
// the blobs reach only the holder of the owner's key, and only while it is
// recovering and wants them. A connection that gives no answer to the offer
// is closed and the return tried once more over a fresh dial.
func (s *Service) returnTo(ctx context.Context, owner, nonce []byte, addrs []multiaddr.Multiaddr, now func() time.Time) (sent bool, err error) {
	if !s.begin() {
		return false, errors.New("service closed")
	}
	defer s.inflight.Done()
	entries, err := s.st.Entries(owner)
	if err != nil {
		return false, fmt.Errorf("reading entries: %w", err)
	}
	if len(entries) == 0 {
		return false, nil
	}
	pid, err := identity.PeerIDFromPubKey(owner)
	if err != nil {
		return false, err
	}
	s.h.Peerstore().AddAddrs(pid, addrs, returnAddrTTL)
	for attempt := 1; ; attempt++ {
		sent, n, err := s.returnOnce(ctx, pid, nonce, entries, now)
		result := "ok"
		if err == nil && !sent {
			result = "declined"
		}
		s.m.observe("return", "out", err, result, n)
		if err == nil {
			if sent {
				s.log.Info("returned blobs to their owner", "owner", pid, "bytes", n)
			}
			return sent, nil
		}
		if !errors.Is(err, errOfferUnanswered) || attempt == returnAttempts || ctx.Err() != nil {
			return false, err
		}
		s.log.Info("return: no answer to the offer; retrying over a fresh connection", "owner", pid, "err", err)
	}
}

// returnOnce opens a return stream on the newest connection to pid (dialling
// one if there is none), offers the entries and sends them if the owner
// accepts. A stream whose offer gets no answer in returnOfferTimeout is
// reset and its connection closed, and the error wraps errOfferUnanswered.
func (s *Service) returnOnce(ctx context.Context, pid peer.ID, nonce []byte, entries []store.Entry, now func() time.Time) (sent bool, n int, err error) {
	octx, cancel := context.WithTimeout(ctx, returnOfferTimeout)
	defer cancel()
	st, err := openNewest(octx, s.h, pid, ReturnProtocol)
	if err != nil {
		return false, 0, fmt.Errorf("opening return stream: %w", err)
	}
	sent, n, err = s.offerAndSend(ctx, st, nonce, entries, now)
	if err != nil {
		st.Reset()
		if errors.Is(err, errOfferUnanswered) {
			st.Conn().Close()
		}
		return false, 0, err
	}
	return sent, n, st.Close()
}

// openNewest opens a stream for proto on the newest open connection to p,
// dialling p (at its peerstore addresses) when there is none. go-libp2p's
// own choice is the connection with the most streams, which after the
// owner's machine died and came back is the dead one (a QUIC connection
// lingers until its idle timeout); a recovering owner's newest connection is
// the one it just made.
func openNewest(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID) (network.Stream, error) {
	c := newestConn(h, p)
	if c == nil {
		if err := h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
			return nil, err
		}
		if c = newestConn(h, p); c == nil {
			return nil, network.ErrNoConn
		}
	}
	st, err := c.NewStream(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.SetDeadline(deadline(ctx, returnOfferTimeout)); err != nil {
		st.Reset()
		return nil, err
	}
	if err := msmux.SelectProtoOrFail(proto, st); err != nil {
		st.Reset()
		if ctx.Err() != nil {
			// The connection did not answer the negotiation in time.
			c.Close()
			return nil, fmt.Errorf("%w: negotiating %s: %v", errOfferUnanswered, proto, err)
		}
		return nil, fmt.Errorf("negotiating %s: %w", proto, err)
	}
	if err := st.SetProtocol(proto); err != nil {
		st.Reset()
		return nil, err
	}
	return st, nil
}

// newestConn returns the most recently opened open connection to p, or nil.
func newestConn(h host.Host, p peer.ID) network.Conn {
	var best network.Conn
	for _, c := range h.Network().ConnsToPeer(p) {
		if c.IsClosed() {
			continue
		}
		if best == nil || c.Stat().Opened.After(best.Stat().Opened) {
			best = c
		}
	}
	return best
}

// offerAndSend writes the offer (the request's nonce, how many blobs, this
// holder's clock), reads the owner's reply within returnOfferTimeout, and, if
// it says send, sends the entries as a fetch answer and waits for the owner
// to close.
func (s *Service) offerAndSend(ctx context.Context, st network.Stream, nonce []byte, entries []store.Entry, now func() time.Time) (bool, int, error) {
	if err := st.Scope().SetService(ReturnServiceName); err != nil {
		return false, 0, fmt.Errorf("attaching to service: %w", err)
	}
	if err := st.SetDeadline(deadline(ctx, returnOfferTimeout)); err != nil {
		return false, 0, fmt.Errorf("setting deadline: %w", err)
	}
	offer := pb.ReturnOffer{Nonce: nonce, Count: uint32(len(entries)), TimeUnixNano: now().UnixNano()}
	if err := writeFrame(st, offer.Marshal()); err != nil {
		return false, 0, fmt.Errorf("%w: writing the offer: %v", errOfferUnanswered, err)
	}
	b, err := readFrame(st, maxReturnReplySize)
	if err != nil {
		return false, 0, fmt.Errorf("%w: %v", errOfferUnanswered, err)
	}
	var reply pb.ReturnReply
	if err := reply.Unmarshal(b); err != nil {
		return false, 0, fmt.Errorf("%w: reply: %w", ErrMalformed, err)
	}
	if !reply.Send {
		return false, 0, nil
	}
	if err := st.SetDeadline(deadline(ctx, s.fetchTimeout)); err != nil {
		return false, 0, fmt.Errorf("setting deadline: %w", err)
	}
	_, n, err := sendEntries(st, s.st, entries)
	if err != nil {
		return false, 0, err
	}
	// The owner may close as soon as it has read the end frame, so closing
	// the write side can fail harmlessly.
	_ = st.CloseWrite()
	// Wait for the owner to have read everything (it closes its side), but
	// not for long: the return slot is for sending.
	if err := st.SetReadDeadline(deadline(ctx, returnCloseWait)); err != nil {
		return false, 0, fmt.Errorf("setting deadline: %w", err)
	}
	var one [1]byte
	if _, err := st.Read(one[:]); err != nil && !errors.Is(err, io.EOF) {
		return false, 0, fmt.Errorf("waiting for the owner: %w", err)
	}
	return true, n, nil
}

// nonceMemory remembers nonces for a fixed time, at most max of them; the
// oldest is forgotten first (all live equally long, so the oldest is the
// first to expire). The caller locks.
type nonceMemory struct {
	max   int
	ttl   time.Duration
	set   map[string]struct{}
	order []nonceEntry // oldest first
}

type nonceEntry struct {
	nonce   string
	expires time.Time
}

func newNonceMemory(max int, ttl time.Duration) *nonceMemory {
	return &nonceMemory{max: max, ttl: ttl, set: make(map[string]struct{})}
}

// expire forgets the nonces whose time is up.
func (m *nonceMemory) expire(now time.Time) {
	i := 0
	for i < len(m.order) && !now.Before(m.order[i].expires) {
		delete(m.set, m.order[i].nonce)
		i++
	}
	if i > 0 {
		m.order = append(m.order[:0], m.order[i:]...)
	}
}

// seen reports whether n is remembered.
func (m *nonceMemory) seen(n string, now time.Time) bool {
	m.expire(now)
	_, ok := m.set[n]
	return ok
}

// add remembers n until now+ttl, forgetting the oldest if full.
func (m *nonceMemory) add(n string, now time.Time) {
	m.expire(now)
	if len(m.order) >= m.max {
		delete(m.set, m.order[0].nonce)
		m.order = m.order[1:]
	}
	m.set[n] = struct{}{}
	m.order = append(m.order, nonceEntry{nonce: n, expires: now.Add(m.ttl)})
}

// newNonce returns nonceSize random bytes.
func newNonce() ([]byte, error) {
	n := make([]byte, nonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, err
	}
	return n, nil
}
