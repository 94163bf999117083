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
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
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
	// HeartbeatMaxAge is how old a heartbeat may be when it arrives: gossip
	// delivers in well under a second, so anything older is a replay or a
	// badly wrong clock.
	HeartbeatMaxAge = 2 * time.Minute
	// MaxClockSkew is how far in the future a message's time may be, for
	// nodes whose clocks are a little ahead.
	MaxClockSkew = 30 * time.Second
	// RecoveryWindow is how old a recovery request may be. Its nonce is
	// remembered for RecoveryWindow+MaxClockSkew, so a request can never be
	// accepted twice: by then its time is out of the window.
	RecoveryWindow = 2 * time.Minute
	// recoveryMinInterval is the least time between two accepted requests of
	// one owner; RecoveryRepublishInterval is above it.
	recoveryMinInterval = 10 * time.Second
	// RecoveryRepublishInterval is how often Recover republishes its
	// request (with a new nonce), for holders that joined late or missed it.
	RecoveryRepublishInterval = 15 * time.Second
	// unknownOwnerBurst and unknownOwnerInterval rate-limit, per node,
	// requests of owners that are neither active nor hold anything here: anyone
	// can make keys, so these share one budget and cannot crowd out known
	// owners.
	unknownOwnerBurst    = 8
	unknownOwnerInterval = 5 * time.Second
	// maxConcurrentReturns bounds the return streams a holder runs at once;
	// a request beyond it is dropped (the owner republishes).
	maxConcurrentReturns = 4
	// returnAddrTTL is how long a recovery request's addresses stay in the
	// peerstore: long enough for the return stream.
	returnAddrTTL = 2 * FetchTimeout
	// maxTrackedNodes bounds the heartbeat and rate tables; they hold active
	// nodes only, about a hundred.
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
	returns       chan struct{}
	now           func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	scoresMu sync.Mutex
	scores   map[peer.ID]float64

	mu         sync.Mutex
	heard      map[peer.ID]Heartbeat
	lastRecReq map[string]time.Time // owner → last accepted request
	nonces     map[string]time.Time // nonce → expiry
	session    *recoverySession
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
		returns:       make(chan struct{}, maxConcurrentReturns),
		now:           time.Now,
		ctx:           ctx, cancel: cancel,
		heard:      make(map[peer.ID]Heartbeat),
		lastRecReq: make(map[string]time.Time),
		nonces:     make(map[string]time.Time),
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
	return g, nil
}

// Close leaves the topics and stops gossipsub and any return stream in
// flight. It does not close the host.
func (g *Gossip) Close() error {
	g.cancel()
	g.wg.Wait()
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
			g.mu.Lock()
			g.heard[v.Peer] = v
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

// checkTime classifies a message timestamp.
func (g *Gossip) checkTime(t time.Time, maxAge time.Duration) string {
	now := g.now()
	switch {
	case now.Sub(t) > maxAge:
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
	sent := time.Unix(0, hb.TimeUnixNano)
	if why := g.checkTime(sent, HeartbeatMaxAge); why != "" {
		return v(pubsub.ValidationIgnore, why)
	}
	if hb.Blobs > 1<<40 || hb.Bytes > 1<<62 || hb.QuotaBlobs > 1<<40 || hb.QuotaBytes > 1<<62 {
		return v(pubsub.ValidationReject, "malformed")
	}
	now := g.now()
	g.mu.Lock()
	last, seen := g.heard[author]
	if seen && now.Sub(last.Received) < g.hbMinInterval {
		g.mu.Unlock()
		return v(pubsub.ValidationIgnore, "too_frequent")
	}
	// Reserve the slot now, so two heartbeats validated at once cannot both
	// pass; read() stores the accepted one.
	g.heard[author] = Heartbeat{Peer: author, Node: hb.Node, Received: now, Time: last.Time, Stats: last.Stats}
	g.mu.Unlock()
	msg.ValidatorData = Heartbeat{
		Peer: author, Node: hb.Node, Time: sent, Received: now,
		Stats: HeartbeatStats{Blobs: int(hb.Blobs), Bytes: int64(hb.Bytes), QuotaBlobs: int(hb.QuotaBlobs), QuotaBytes: int64(hb.QuotaBytes)},
	}
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

// validateRecovery is the recovery topic's validator.
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
	if why := g.checkTime(time.Unix(0, req.TimeUnixNano), RecoveryWindow); why != "" {
		return v(pubsub.ValidationIgnore, why)
	}
	if msg.ReceivedFrom == g.h.ID() {
		// This node's own request (Recover): the rate limits are for others.
		return v(pubsub.ValidationAccept, "ok")
	}
	now := g.now()
	owner := string(req.Owner)
	g.mu.Lock()
	defer g.mu.Unlock()
	for n, exp := range g.nonces {
		if now.After(exp) {
			delete(g.nonces, n)
		}
	}
	if _, dup := g.nonces[string(req.Nonce)]; dup {
		return v(pubsub.ValidationIgnore, "replay")
	}
	if last, ok := g.lastRecReq[owner]; ok && now.Sub(last) < recoveryMinInterval {
		return v(pubsub.ValidationIgnore, "too_frequent")
	}
	if !g.known(req.Owner) && !g.unknown.allow("") {
		return v(pubsub.ValidationIgnore, "too_frequent")
	}
	g.nonces[string(req.Nonce)] = now.Add(RecoveryWindow + MaxClockSkew)
	for o, t := range g.lastRecReq {
		if now.Sub(t) >= recoveryMinInterval {
			delete(g.lastRecReq, o)
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

// answer returns the owner's blobs for an accepted request, on its own
// goroutine, if this node serves recovery and holds any.
func (g *Gossip) answer(req *pb.RecoveryRequest) {
	if g.svc == nil || bytes.Equal(req.Owner, g.id.PubKey()) {
		return
	}
	select {
	case g.returns <- struct{}{}:
	default:
		g.log.Warn("recovery request dropped: too many returns in flight", "owner", fmt.Sprintf("%x", req.Owner))
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-g.returns }()
		addrs := make([]multiaddr.Multiaddr, 0, len(req.Addrs))
		for _, a := range req.Addrs {
			if m, err := multiaddr.NewMultiaddrBytes(a); err == nil {
				addrs = append(addrs, m)
			}
		}
		if err := g.svc.returnTo(g.ctx, req.Owner, addrs); err != nil {
			g.log.Info("returning blobs", "owner", fmt.Sprintf("%x", req.Owner), "err", err)
		}
	}()
}

// returnTo sends every blob held for owner to the owner's peer ID over
// ReturnProtocol. Noise authenticates the peer, so the blobs reach only the
// holder of the owner's key.
func (s *Service) returnTo(ctx context.Context, owner []byte, addrs []multiaddr.Multiaddr) error {
	if !s.begin() {
		return errors.New("service closed")
	}
	defer s.inflight.Done()
	entries, err := s.st.Entries(owner)
	if err != nil {
		return fmt.Errorf("reading entries: %w", err)
	}
	if len(entries) == 0 {
		return nil
	}
	pid, err := identity.PeerIDFromPubKey(owner)
	if err != nil {
		return err
	}
	s.h.Peerstore().AddAddrs(pid, addrs, returnAddrTTL)
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	st, err := s.h.NewStream(ctx, pid, ReturnProtocol)
	if err != nil {
		s.m.observe("return", "out", err, "", 0)
		return fmt.Errorf("opening return stream: %w", err)
	}
	n, err := s.sendReturn(ctx, st, entries)
	s.m.observe("return", "out", err, "ok", n)
	if err != nil {
		st.Reset()
		return err
	}
	s.log.Info("returned blobs to their owner", "owner", pid, "bytes", n)
	return st.Close()
}

func (s *Service) sendReturn(ctx context.Context, st network.Stream, entries []store.Entry) (int, error) {
	if err := st.Scope().SetService(ReturnServiceName); err != nil {
		return 0, fmt.Errorf("attaching to service: %w", err)
	}
	if err := st.SetDeadline(deadline(ctx, FetchTimeout)); err != nil {
		return 0, fmt.Errorf("setting deadline: %w", err)
	}
	_, n, err := sendEntries(st, s.st, entries)
	if err != nil {
		return 0, err
	}
	// The owner may close as soon as it has read the end frame, so closing
	// the write side can fail harmlessly.
	_ = st.CloseWrite()
	// Wait for the owner to have read everything (it closes its side).
	var b [1]byte
	if _, err := st.Read(b[:]); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("waiting for the owner: %w", err)
	}
	return n, nil
}

// newNonce returns nonceSize random bytes.
func newNonce() ([]byte, error) {
	n := make([]byte, nonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, err
	}
	return n, nil
}
