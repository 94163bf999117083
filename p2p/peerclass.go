package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer classes and their allowances (docs/protocol.md, "Peer classes").
//
// A holder decides who the remote peer of an inbound stream is from its
// Noise-authenticated peer ID alone, before it reads a byte or reserves any
// memory, and serves it from the allowance of its class:
//
//   - an active node (on chain) may push, send repairs and fetch, within
//     per-peer and per-class stream allowances (repair's are in repair.go);
//   - an owner that is not an active node but whose blobs this holder keeps
//     (a node recovering its shares, a stranger to the chain) may fetch, from
//     one small allowance all such owners share, whose rate does not grow
//     with the number of identities;
//   - anyone else (a stranger) is refused at once: NOT_ACTIVE for a push,
//     NOT_FOUND for a fetch. Making new identities buys nothing.
const (
	// MaxPushStreamsPerPeer is how many push streams one owner may have in
	// flight on one holder at once. Holders refuse more with BUSY; Service.Push
	// never opens more (owners and holders share this constant). An owner
	// pushes one share per vault it is a member of, a handful after a churn,
	// and four pushes in flight keep even a slow link busy.
	MaxPushStreamsPerPeer = 4
	// MaxFetchStreamsPerPeer is how many fetch streams one peer may have in
	// flight on one holder: a recovering node fetches each vault's blob from
	// several holders at once, not several from one.
	MaxFetchStreamsPerPeer = 2

	// activePushStreams is how many push streams all active nodes together
	// may have in flight on one holder: a churn makes every vault member push
	// one share to r holders within seconds, so a holder sees bursts of about
	// r pushes; 32 absorbs ten times that.
	activePushStreams = 32
	// activeFetchStreams is how many fetch streams all active nodes together
	// may have in flight: fetches only happen during recoveries, which are
	// rare.
	activeFetchStreams = 16
	// strangerFetchStreams is how many fetch streams all owners that are not
	// active nodes together may have in flight: recoveries of nodes that
	// left the active set are rarer still, and each fetch carries one
	// owner's few blobs.
	strangerFetchStreams = 4

	// DefaultStrangerFetchBurst and DefaultStrangerFetchInterval rate-limit
	// the fetches of all owners that are not active nodes together (one
	// token bucket, not one per peer): a recovering node asks each holder once
	// per vault, so a burst of 16 then one every 5 s serves a couple of
	// recoveries at once, while a set of identities that once held shares
	// here makes the holder read stored blobs at most 12 times a minute, however
	// many identities it has.
	DefaultStrangerFetchBurst    = 16
	DefaultStrangerFetchInterval = 5 * time.Second

	// HeaderTimeout is the deadline for the first frame of an inbound push
	// or fetch stream (the push header, the fetch request), separate from the
	// body deadline (PushTimeout, FetchTimeout) that follows: a header is
	// under 512 bytes, one round trip on any link, so 5 s is generous for a
	// slow peer, while a peer that opens a stream and sends nothing gives
	// its slot back within seconds, not after the whole stream deadline.
	HeaderTimeout = 5 * time.Second

	// StallPenalty is how long a holder refuses, with BUSY, the pushes and
	// fetches of a peer one of whose streams ran into its deadline (the
	// header, body or answer deadline): an honest owner sends its header
	// and blob at once and reads its answer, so a stream that times out is a
	// broken link or a peer holding a slot on purpose — by trickling its
	// body, say, which the deadline alone does not stop, as the peer opens
	// the next stream at once. Two minutes is four body deadlines: a peer
	// that stalls on purpose gets its slots a fifth of the time at most,
	// and an honest owner on a bad link tries again at a later reconcile.
	StallPenalty = 2 * time.Minute
)

// peerClass is who a remote peer is to this node.
type peerClass uint8

const (
	// classStranger: not an active node, and nothing of its is held here.
	classStranger peerClass = iota
	// classOwner: not an active node, but this holder keeps blobs of its
	// key (a node recovering its shares after it left the active set).
	classOwner
	// classActive: an active node on chain.
	classActive
)

func (c peerClass) String() string {
	switch c {
	case classActive:
		return "active"
	case classOwner:
		return "owner"
	}
	return "stranger"
}

// streamBudget counts the streams one class of peers has in flight: at most
// total for the class, and at most perPeer for one peer of it. It never
// blocks: a stream beyond it is refused with BUSY.
type streamBudget struct {
	total, perPeer int

	mu    sync.Mutex
	n     int
	peers map[peer.ID]int
}

func newStreamBudget(total, perPeer int) *streamBudget {
	return &streamBudget{total: total, perPeer: perPeer, peers: make(map[peer.ID]int)}
}

// acquire takes a slot for p. It returns the function that gives it back
// (safe to call more than once), or false when the class or the peer is at
// its allowance.
func (b *streamBudget) acquire(p peer.ID) (release func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n >= b.total || b.peers[p] >= b.perPeer {
		return nil, false
	}
	b.n++
	b.peers[p]++
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.n--
			if b.peers[p]--; b.peers[p] == 0 {
				delete(b.peers, p)
			}
		})
	}, true
}

// peerSemaphore bounds the streams this node opens to one peer at once (the
// owner side of MaxPushStreamsPerPeer). Unlike streamBudget it waits.
type peerSemaphore struct {
	per int

	mu    sync.Mutex
	slots map[peer.ID]chan struct{}
	refs  map[peer.ID]int
}

func newPeerSemaphore(per int) *peerSemaphore {
	return &peerSemaphore{per: per, slots: make(map[peer.ID]chan struct{}), refs: make(map[peer.ID]int)}
}

// acquire waits for a slot to p or until done is closed; it returns the
// release function, or false if done closed first.
func (s *peerSemaphore) acquire(done <-chan struct{}, p peer.ID) (func(), bool) {
	s.mu.Lock()
	ch := s.slots[p]
	if ch == nil {
		ch = make(chan struct{}, s.per)
		s.slots[p] = ch
	}
	s.refs[p]++
	s.mu.Unlock()
	unref := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.refs[p]--; s.refs[p] == 0 {
			delete(s.refs, p)
			delete(s.slots, p)
		}
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch; unref() }, true
	case <-done:
		unref()
		return nil, false
	}
}

// penaltyBox remembers the peers refused until some time (StallPenalty).
// It holds active nodes and owners only (strangers are refused before they
// can stall anything), at most max of them: when full, entries whose
// penalty is over are dropped, and if none is, the new one is not added.
type penaltyBox struct {
	d   time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	until map[peer.ID]time.Time
}

func newPenaltyBox(d time.Duration, max int) *penaltyBox {
	return &penaltyBox{d: d, max: max, now: time.Now, until: make(map[peer.ID]time.Time)}
}

// add refuses p for the box's duration from now.
func (b *penaltyBox) add(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if _, ok := b.until[p]; !ok && len(b.until) >= b.max {
		for q, t := range b.until {
			if !now.Before(t) {
				delete(b.until, q)
			}
		}
		if len(b.until) >= b.max {
			return
		}
	}
	b.until[p] = now.Add(b.d)
}

// left returns how long p is still refused (0: not).
func (b *penaltyBox) left(p peer.ID) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[p]
	if !ok {
		return 0
	}
	d := t.Sub(b.now())
	if d <= 0 {
		delete(b.until, p)
		return 0
	}
	return d
}

const (
	// pauseTick is how often a Service notes that its process runs.
	pauseTick = 250 * time.Millisecond
	// pauseGap is a gap between two ticks that counts as this process having
	// been paused (SIGSTOP, a frozen VM, a machine too loaded to schedule
	// it): eight ticks missed. A deadline that ran out across such a pause
	// is this holder's doing, not the peer's, and earns no StallPenalty.
	pauseGap = 2 * time.Second
)

// pauseWatch notices when this process did not run for a while, so that a
// stream deadline that ran out meanwhile is not blamed on the peer (a holder
// resumed after a pause would otherwise refuse, for StallPenalty, every honest
// owner whose stream it left waiting — its fetches for recovery included).
type pauseWatch struct {
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	lastTick  time.Time
	lastPause time.Time // end of the last gap seen
}

func newPauseWatch() *pauseWatch {
	w := &pauseWatch{stop: make(chan struct{}), done: make(chan struct{}), lastTick: time.Now()}
	go w.run()
	return w
}

func (w *pauseWatch) run() {
	defer close(w.done)
	t := time.NewTicker(pauseTick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			now := time.Now()
			w.mu.Lock()
			if now.Sub(w.lastTick) > pauseGap {
				w.lastPause = now
			}
			w.lastTick = now
			w.mu.Unlock()
		}
	}
}

// pausedSince reports whether this process was paused at some time after t
// (or is only now resuming from a pause: the ticker has not caught up yet).
func (w *pauseWatch) pausedSince(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.lastTick) > pauseGap || w.lastPause.After(t)
}

// close stops the watch.
func (w *pauseWatch) close() {
	close(w.stop)
	<-w.done
}
