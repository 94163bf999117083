package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/store"
)

// Defaults of the Service options.
const (
	// DefaultQuotaBlobs and DefaultQuotaBytes are what one owner may keep on
	// a holder (config.Store's defaults): an owner has one blob per vault it
	// is in, a few at a time, each under 100 KiB.
	DefaultQuotaBlobs = 64
	DefaultQuotaBytes = 64 << 20

	// DefaultFetchBurst and DefaultFetchInterval rate-limit fetches per peer
	// (owners that are not active nodes also share one bucket, see
	// DefaultStrangerFetchBurst; strangers are refused before either): a
	// recovering node asks each holder once per vault, so a burst of 8 then
	// one every 10 s serves it, while a peer hammering a holder makes it read
	// at most 6 owners' blob sets a minute.
	DefaultFetchBurst    = 8
	DefaultFetchInterval = 10 * time.Second

	// maxRateLimitedPeers bounds the rate limiter's memory: peers idle for
	// longer than a full refill are dropped once this many are tracked.
	maxRateLimitedPeers = 4096

	// refusalLogInterval is the least time between two log lines at Info
	// about one peer's refused or failed streams; the ones in between go to
	// Debug and are counted in the next line. A peer can have its streams
	// refused thousands of times a second, and logs must not be a way to
	// fill the operator's disk; the metrics count every refusal.
	refusalLogInterval = 10 * time.Second

	// DefaultLookupBurst and DefaultLookupInterval rate-limit, per active
	// peer, the chain lookups its push headers cause (a custody the
	// holder's view does not have yet): an owner pushes r copies per share
	// version, each to a different holder, so a holder sees at most a
	// handful of new custodies from one owner per churn; a burst of 8 then
	// one a second serves that with room, while a peer naming made-up
	// custodies makes this holder ask the chain once a second at most.
	DefaultLookupBurst    = 8
	DefaultLookupInterval = time.Second

	// lookupTimeout bounds one chain lookup while a push waits: the header
	// deadline's order (an ABCI query answers in milliseconds).
	lookupTimeout = HeaderTimeout
)

// ActiveSet tells whether a node is active: all Gossip needs of the chain.
// It must be safe for concurrent use.
type ActiveSet interface {
	// IsActive reports whether the node with this 33-byte compressed public
	// key is an active node.
	IsActive(pubKey []byte) bool
}

// Custody is what the chain says of one custody: what a holder checks a
// pushed copy against before it reads it (docs/protocol.md, "Push").
type Custody struct {
	ID custody.CustodyID
	// Holder is the address of the node the chain assigned the custody to;
	// Owner the address of the commitment's owner; Source, for a repair's
	// custody, the address of the node the chain named to send the copy
	// ("" otherwise).
	Holder, Owner, Source string
	// Vault is the commitment's vault key.
	Vault string
	// Size, Root and Copies are the commitment's: every copy's size, the
	// commitment root, and r.
	Size   uint64
	Root   [custody.HashSize]byte
	Copies int
	// CopyIndex is the copy the custody holds.
	CopyIndex int
	// Failed: the custody's status is failed. Live: its commitment is
	// neither superseded nor retired.
	Failed, Live bool
}

// Custodies is a holder's view of the chain's custodies. The daemon keeps
// the custodies assigned to it from its chain polls and asks the chain for
// others; it must be safe for concurrent use.
type Custodies interface {
	// Cached returns custody id if the view has it, without asking the
	// chain.
	Cached(id custody.CustodyID) (Custody, bool)
	// Lookup asks the chain for custody id. A custody not in chain state
	// is an error wrapping ErrUnknownCustody; any other error means the
	// chain could not be read. The Service bounds how often each peer makes
	// it ask (lookup rate, see WithLookupRate).
	Lookup(ctx context.Context, id custody.CustodyID) (Custody, error)
}

// Membership is what a holder needs of the chain: who is active, and the
// custodies. The daemon implements it from its latest view of chain state;
// it must be safe for concurrent use.
type Membership interface {
	ActiveSet
	Custodies
}

// Store is what a Service needs of the holder's copy store; *store.Store
// implements it.
type Store interface {
	PutWithMeta(e store.Entry, blob []byte, meta ...store.MetaWrite) (written store.Entry, added bool, err error)
	Get(id custody.CustodyID) (store.Entry, []byte, error)
	Holds(owner []byte, id custody.CustodyID) bool
	Entries(owner []byte) ([]store.Entry, error)
	Usage(owner []byte) (blobs int, bytes int64, err error)
	Stats() (blobs int, bytes int64, err error)
}

// Option configures a Service.
type Option func(*Service) error

// WithLogger sets the logger (default: slog.Default()). Blob bytes are never
// logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrBadConfig)
		}
		s.log = l
		return nil
	}
}

// WithQuota sets how many blobs and bytes one owner may keep on this holder
// (default DefaultQuotaBlobs, DefaultQuotaBytes).
func WithQuota(blobs int, bytes int64) Option {
	return func(s *Service) error {
		if blobs < 1 || bytes < 1 {
			return fmt.Errorf("%w: quota of %d blobs, %d bytes", ErrBadConfig, blobs, bytes)
		}
		s.quotaBlobs, s.quotaBytes = blobs, bytes
		return nil
	}
}

// WithMaxBlobSize lowers the largest blob this holder accepts (default and
// maximum MaxBlobSize).
func WithMaxBlobSize(n int) Option {
	return func(s *Service) error {
		if n < 1 || n > MaxBlobSize {
			return fmt.Errorf("%w: blob cap %d, want 1 to %d", ErrBadConfig, n, MaxBlobSize)
		}
		s.maxBlob = n
		return nil
	}
}

// WithTimeouts sets the body deadlines of inbound push and fetch streams,
// counted from the end of the header, and the fetch deadline is also that of
// a whole return stream (default PushTimeout and FetchTimeout).
func WithTimeouts(push, fetch time.Duration) Option {
	return func(s *Service) error {
		if push <= 0 || fetch <= 0 {
			return fmt.Errorf("%w: timeouts %v, %v", ErrBadConfig, push, fetch)
		}
		s.pushTimeout, s.fetchTimeout = push, fetch
		return nil
	}
}

// WithFetchRate sets the per-peer fetch rate limit: burst requests at once,
// then one per interval (default DefaultFetchBurst, DefaultFetchInterval).
func WithFetchRate(burst int, interval time.Duration) Option {
	return func(s *Service) error {
		if burst < 1 || interval <= 0 {
			return fmt.Errorf("%w: fetch rate burst %d, interval %v", ErrBadConfig, burst, interval)
		}
		s.fetchLimit = newRateLimiter(burst, interval, maxRateLimitedPeers)
		return nil
	}
}

// WithHeaderTimeout sets the deadline for the first frame of an inbound push
// or fetch stream (default HeaderTimeout).
func WithHeaderTimeout(d time.Duration) Option {
	return func(s *Service) error {
		if d <= 0 {
			return fmt.Errorf("%w: header timeout %v", ErrBadConfig, d)
		}
		s.headerTimeout = d
		return nil
	}
}

// WithStrangerFetchRate sets the rate limit all owners that are not active
// nodes share on this holder: burst fetches at once, then one per interval
// (default DefaultStrangerFetchBurst, DefaultStrangerFetchInterval).
func WithStrangerFetchRate(burst int, interval time.Duration) Option {
	return func(s *Service) error {
		if burst < 1 || interval <= 0 {
			return fmt.Errorf("%w: stranger fetch rate burst %d, interval %v", ErrBadConfig, burst, interval)
		}
		s.strangerFetchLimit = newRateLimiter(burst, interval, 1)
		return nil
	}
}

// WithLookupRate sets the per-peer rate limit of chain lookups caused by
// push headers naming custodies the holder's view does not have: burst at
// once, then one per interval (default DefaultLookupBurst,
// DefaultLookupInterval). A header over it is refused with CodeRateLimited.
func WithLookupRate(burst int, interval time.Duration) Option {
	return func(s *Service) error {
		if burst < 1 || interval <= 0 {
			return fmt.Errorf("%w: lookup rate burst %d, interval %v", ErrBadConfig, burst, interval)
		}
		s.lookupLimit = newRateLimiter(burst, interval, maxRateLimitedPeers)
		return nil
	}
}

// WithHRP sets the bech32 prefix of node addresses (default
// identity.DefaultHRP): the chain names holders and owners by address, and
// the holder compares them with the addresses of peers' keys.
func WithHRP(hrp string) Option {
	return func(s *Service) error {
		if err := identity.ValidateHRP(hrp); err != nil {
			return fmt.Errorf("%w: %v", ErrBadConfig, err)
		}
		s.hrp = hrp
		return nil
	}
}

// WithRegisterer registers the Service's Prometheus metrics on r (default:
// not registered).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(s *Service) error {
		if r == nil {
			return fmt.Errorf("%w: nil registerer", ErrBadConfig)
		}
		s.reg = r
		return nil
	}
}

// OnAccepted sets a function called with each entry the holder acknowledges,
// after it is durable and before the receipt is sent: the daemon queues its
// attestation there. It is called for a duplicate push too, so that an
// attestation lost between storing the copy and queueing it (a crash) is
// queued again when the owner retries; it must therefore be idempotent. If it
// returns an error, the push is refused with CodeInternal and no receipt is
// sent (the copy stays stored; the owner's retry calls it again). It must not
// block for long; it is called on the stream's goroutine.
func OnAccepted(f func(store.Entry) error) Option {
	return func(s *Service) error { s.onAccepted = f; return nil }
}

// Acceptance is what a daemon writes with a copy its holder accepts
// (AcceptRecords): Records go into the copy's own store transaction
// (store.PutWithMeta), durable with the copy in one sync or not at all; Done,
// if not nil, is called once that write has ended, with whether it
// committed.
type Acceptance struct {
	Records []store.MetaWrite
	Done    func(committed bool)
}

// AcceptRecords sets a function called with each copy the holder is about
// to store, after every check and before the write, under the owner's lock;
// the records it returns are written with the copy (the daemon queues the
// copy's attestation there, without a sync of its own). It is called for a
// duplicate push too (the records are written, the copy is not), so the
// records must be idempotent. It must not block; it is called on the
// stream's goroutine.
func AcceptRecords(f func(store.Entry) Acceptance) Option {
	return func(s *Service) error { s.acceptRecords = f; return nil }
}

// Service runs the ksb stream protocols on a host: the holder side of push,
// repair and fetch, the owner side of push and the source side of repair
// with metrics, and returning blobs to an
// owner that asks for them over gossip (see Gossip).
type Service struct {
	h       host.Host
	id      *identity.Identity
	st      Store
	members Membership

	log                       *slog.Logger
	quotaBlobs                int
	quotaBytes                int64
	maxBlob                   int
	hrp                       string
	self                      string // this holder's address
	headerTimeout             time.Duration
	pushTimeout, fetchTimeout time.Duration
	fetchLimit                *rateLimiter // per peer
	strangerFetchLimit        *rateLimiter // one bucket for all non-active owners
	lookupLimit               *rateLimiter // chain lookups per peer
	reg                       prometheus.Registerer
	onAccepted                func(store.Entry) error
	acceptRecords             func(store.Entry) Acceptance
	m                         *metrics
	owners                    keyedMutex

	// Inbound stream allowances per class of peer (peerclass.go), and the
	// owner side's bound on its own pushes to one holder.
	pushActive     *streamBudget
	repairActive   *streamBudget
	fetchActive    *streamBudget
	fetchStrangers *streamBudget
	pushOut        *peerSemaphore
	repairOut      *peerSemaphore
	inPush         *copyIn
	inRepair       *copyIn
	// stalled holds the peers refused BUSY for StallPenalty because a
	// stream of theirs ran into its deadline.
	stalled *penaltyBox
	// paused tells a deadline this process overslept from a peer's stall.
	paused *pauseWatch
	// quiet keeps one peer's refusals and failures from filling the log.
	quiet *logLimiter

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup

	// copiesIn counts the inbound copies in flight (CopiesInFlight);
	// copiesIdle receives a value when it drops to zero.
	copiesIn   atomic.Int64
	copiesIdle chan struct{}
}

// NewService registers the push and fetch handlers on h for the node id,
// storing accepted copies in st and accepting them only from peers m says
// are active, for custodies m says the chain assigned to this node.
func NewService(h host.Host, id *identity.Identity, st Store, m Membership, opts ...Option) (*Service, error) {
	if h == nil || id == nil || st == nil || m == nil {
		return nil, fmt.Errorf("%w: host, identity, store and membership are required", ErrBadConfig)
	}
	if h.ID() != id.PeerID() {
		return nil, fmt.Errorf("%w: host %s does not run identity %s", ErrBadConfig, h.ID(), id.PeerID())
	}
	s := &Service{
		h: h, id: id, st: st, members: m,
		log:                slog.Default(),
		quotaBlobs:         DefaultQuotaBlobs,
		quotaBytes:         DefaultQuotaBytes,
		maxBlob:            MaxBlobSize,
		hrp:                identity.DefaultHRP,
		headerTimeout:      HeaderTimeout,
		pushTimeout:        PushTimeout,
		fetchTimeout:       FetchTimeout,
		fetchLimit:         newRateLimiter(DefaultFetchBurst, DefaultFetchInterval, maxRateLimitedPeers),
		strangerFetchLimit: newRateLimiter(DefaultStrangerFetchBurst, DefaultStrangerFetchInterval, 1),
		lookupLimit:        newRateLimiter(DefaultLookupBurst, DefaultLookupInterval, maxRateLimitedPeers),
		pushActive:         newStreamBudget(activePushStreams, MaxPushStreamsPerPeer),
		fetchActive:        newStreamBudget(activeFetchStreams, MaxFetchStreamsPerPeer),
		fetchStrangers:     newStreamBudget(strangerFetchStreams, MaxFetchStreamsPerPeer),
		pushOut:            newPeerSemaphore(MaxPushStreamsPerPeer),
		repairActive:       newStreamBudget(activeRepairStreams, MaxRepairStreamsPerPeer),
		repairOut:          newPeerSemaphore(MaxRepairStreamsPerPeer),
		stalled:            newPenaltyBox(StallPenalty, maxRateLimitedPeers),
		quiet:              newLogLimiter(refusalLogInterval, maxRateLimitedPeers),
		copiesIdle:         make(chan struct{}, 1),
	}
	s.inPush, s.inRepair = s.pushIn(), s.repairIn()
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.self = id.Address(s.hrp)
	s.paused = newPauseWatch()
	s.m = newMetrics()
	if s.reg != nil {
		if err := s.m.register(s.reg); err != nil {
			s.paused.close()
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	h.SetStreamHandler(PushProtocol, s.track(s.handlePush))
	h.SetStreamHandler(FetchProtocol, s.track(s.handleFetch))
	h.SetStreamHandler(RepairProtocol, s.track(s.handleRepair))
	return s, nil
}

// Close removes the handlers and waits for streams being served to finish,
// so that the store can be closed after it. It does not close the host.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(PushProtocol)
	s.h.RemoveStreamHandler(FetchProtocol)
	s.h.RemoveStreamHandler(RepairProtocol)
	s.inflight.Wait()
	s.paused.close()
	return nil
}

// begin registers one unit of in-flight work, or reports that the service
// is closed.
func (s *Service) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}

func (s *Service) track(handle func(network.Stream)) network.StreamHandler {
	return func(st network.Stream) {
		if !s.begin() {
			st.Reset()
			return
		}
		defer s.inflight.Done()
		handle(st)
	}
}

// CopiesInFlight returns how many inbound pushes and repairs are being
// served now: from active nodes within their allowance, with the copy not
// yet stored and acknowledged to OnAccepted, nor refused. A holder that
// batches its attestations uses it to tell a burst of pushes still coming
// in from one that is over. Safe for concurrent use.
func (s *Service) CopiesInFlight() int { return int(s.copiesIn.Load()) }

// CopiesIdle returns a channel that receives a value each time
// CopiesInFlight drops to zero. One value is buffered and later ones are
// dropped while it is unread, so a receiver checks CopiesInFlight again.
func (s *Service) CopiesIdle() <-chan struct{} { return s.copiesIdle }

// copyStarted counts one inbound copy in flight and returns the function
// that ends it; calling that again does nothing.
func (s *Service) copyStarted() func() {
	s.copiesIn.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			if s.copiesIn.Add(-1) == 0 {
				select {
				case s.copiesIdle <- struct{}{}:
				default:
				}
			}
		})
	}
}

// HeartbeatStats are the figures a node announces in its heartbeat.
type HeartbeatStats struct {
	Blobs      int   // copies held for others
	Bytes      int64 // their total size
	QuotaBlobs int   // copies one owner may keep here
	QuotaBytes int64 // bytes one owner may keep here
}

// Stats returns this holder's heartbeat figures, from the store.
func (s *Service) Stats() (HeartbeatStats, error) {
	blobs, bytes, err := s.st.Stats()
	if err != nil {
		return HeartbeatStats{}, fmt.Errorf("store stats: %w", err)
	}
	return HeartbeatStats{Blobs: blobs, Bytes: bytes, QuotaBlobs: s.quotaBlobs, QuotaBytes: s.quotaBytes}, nil
}

// metrics are the Service's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec // protocol, direction, result
	refusals *prometheus.CounterVec // protocol, direction, reason
	bytes    *prometheus.CounterVec // protocol, direction
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Subsystem: "p2p", Name: "requests_total",
			Help: "Push, fetch and return streams by protocol, direction (in = served, out = made) and result (accepted, duplicate, refused, failed).",
		}, []string{"protocol", "direction", "result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Subsystem: "p2p", Name: "refusals_total",
			Help: "Refusals by protocol, direction (in = sent by this node, out = received) and reason (error code).",
		}, []string{"protocol", "direction", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ksb", Subsystem: "p2p", Name: "blob_bytes_total",
			Help: "Blob bytes moved by successful streams, by protocol and direction.",
		}, []string{"protocol", "direction"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.refusals, m.bytes} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// observe records the outcome of one stream.
func (m *metrics) observe(proto, dir string, err error, result string, n int) {
	var ref *RefusedError
	switch {
	case errors.As(err, &ref):
		m.requests.WithLabelValues(proto, dir, "refused").Inc()
		m.refusals.WithLabelValues(proto, dir, ref.Code.String()).Inc()
	case err != nil:
		m.requests.WithLabelValues(proto, dir, "failed").Inc()
	default:
		m.requests.WithLabelValues(proto, dir, result).Inc()
		m.bytes.WithLabelValues(proto, dir).Add(float64(n))
	}
}

// keyedMutex serialises work per key (an owner), so that a quota check and
// the store write it guards cannot interleave with another push of the same
// owner.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyedLock)
	}
	l := k.locks[key]
	if l == nil {
		l = new(keyedLock)
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// rateLimiter is a per-peer token bucket.
type rateLimiter struct {
	burst    int
	interval time.Duration
	max      int
	now      func() time.Time

	mu      sync.Mutex
	buckets map[peer.ID]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(burst int, interval time.Duration, max int) *rateLimiter {
	return &rateLimiter{burst: burst, interval: interval, max: max, now: time.Now, buckets: make(map[peer.ID]*bucket)}
}

// allow takes a token for p, or reports that p has none left.
func (r *rateLimiter) allow(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	b := r.buckets[p]
	if b == nil {
		if len(r.buckets) >= r.max {
			r.prune(now)
		}
		b = &bucket{tokens: float64(r.burst), last: now}
		r.buckets[p] = b
	}
	b.tokens += float64(now.Sub(b.last)) / float64(r.interval)
	if b.tokens > float64(r.burst) {
		b.tokens = float64(r.burst)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune drops buckets that have refilled completely (they are equivalent to
// a new one); if none has, it drops them all rather than grow without bound.
func (r *rateLimiter) prune(now time.Time) {
	full := time.Duration(r.burst) * r.interval
	for p, b := range r.buckets {
		if now.Sub(b.last) >= full {
			delete(r.buckets, p)
		}
	}
	if len(r.buckets) >= r.max {
		clear(r.buckets)
	}
}

// logLimiter lets through one log line per peer per interval; it counts the
// ones it holds back. It tracks at most max peers: when full, peers whose
// interval is over are dropped, and if none is, everything is let through
// at Debug until one is.
type logLimiter struct {
	interval time.Duration
	max      int
	now      func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*logState
}

type logState struct {
	last       time.Time
	suppressed int
}

func newLogLimiter(interval time.Duration, max int) *logLimiter {
	return &logLimiter{interval: interval, max: max, now: time.Now, peers: make(map[peer.ID]*logState)}
}

// level returns the level to log p's next line at — want, or Debug when p
// had a line at want or above less than the interval ago — and how many of
// p's lines were held back since its last one at want.
func (l *logLimiter) level(p peer.ID, want slog.Level) (slog.Level, int) {
	if want < slog.LevelInfo {
		return want, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st := l.peers[p]
	if st == nil {
		if len(l.peers) >= l.max {
			for q, s := range l.peers {
				if now.Sub(s.last) >= l.interval {
					delete(l.peers, q)
				}
			}
			if len(l.peers) >= l.max {
				return slog.LevelDebug, 0
			}
		}
		st = &logState{}
		l.peers[p] = st
	} else if now.Sub(st.last) < l.interval {
		st.suppressed++
		return slog.LevelDebug, 0
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return want, n
}
