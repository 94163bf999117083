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
