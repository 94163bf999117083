package recovery

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
)

// nobody is the membership of a recovering node: it has no view of the
// chain, so it counts no one as active (it only relays, and ignores
// heartbeats).
type nobody struct{}

func (nobody) IsActive([]byte) bool { return false }

// runGossip is the gossip path: connect to the bootstrap peers, publish a
// recovery request, verify every blob holders return, keep the newest per
// vault, stop as the package documentation says, and write what was kept.
func runGossip(ctx context.Context, c *config, rep *Report) error {
	rep.Path = PathGossip
	hrp := c.HRP
	if hrp == "" {
		hrp = identity.DefaultHRP
	}
	owner, err := identity.AddressFromPubKey(c.id.PubKey(), hrp)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	rep.Owner = owner
	h, err := p2p.NewHost(p2p.HostConfig{Identity: c.id, Listen: c.Listen})
	if err != nil {
		return fmt.Errorf("starting libp2p host: %w", err)
	}
	defer h.Close()
	g, err := p2p.NewGossip(h, c.id, nobody{}, p2p.WithGossipLogger(c.log), p2p.WithRepublishInterval(republishInterval), p2p.WithClock(c.Now))
	if err != nil {
		return fmt.Errorf("starting gossip: %w", err)
	}
	defer g.Close()

	dialErr := p2p.ConnectPeers(ctx, h, c.bootstrap)
	var connected []peer.ID
	for _, p := range c.bootstrap {
		if h.Network().Connectedness(p.ID) == network.Connected {
			connected = append(connected, p.ID)
		}
	}
	if len(connected) == 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrNoPeers, dialErr)
	}
	if dialErr != nil {
		c.log.Warn("some bootstrap peers unreachable", "err", dialErr)
		c.progress.printf("gossip: %d of %d bootstrap peer(s) unreachable: %v", len(c.bootstrap)-len(connected), len(c.bootstrap), dialErr)
	}
	c.progress.printf("gossip: connected to %d bootstrap peer(s); asking for the blobs of %s", len(connected), owner)
	waitTopic(ctx, c, g, connected)
	if c.legacyGossip {
		// Before the offers: one gossipsub heartbeat for a mesh to form.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(legacyMeshWait):
		}
	}

	start := time.Now()
	col := newCollector(c, ctx, hrp, start)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- g.Recover(rctx, p2p.ReturnHandler{Offer: col.onOffer, Blob: col.onBlob, Done: col.onDone})
	}()
	overall := time.NewTimer(c.GossipTimeout)
	defer overall.Stop()
	// Until the first blob the wait is GossipFirstWait, so a mnemonic no
	// holder knows (a wrong one) ends then, not at GossipTimeout.
	quiet := time.NewTimer(c.GossipFirstWait)
	defer quiet.Stop()
	grace := time.NewTimer(time.Hour)
	grace.Stop()
	defer grace.Stop()
	tick := time.NewTicker(waitProgressInterval)
	defer tick.Stop()
	if c.legacyGossip {
		c.progress.printf("gossip: request published; waiting for holders (stopping if no blob comes in %v, then %v after the last new one; %v at most)",
			c.GossipFirstWait, c.GossipQuiet, c.GossipTimeout)
	} else {
		c.progress.printf("gossip: request published; waiting for holders (stopping %v after the last holder answered once every vault heard of has a verified copy; if no blob comes in %v; %v after the last new one otherwise; %v at most)",
			c.GossipGrace, c.GossipFirstWait, c.GossipQuiet, c.GossipTimeout)
	}
	var (
		recErr   error
		returned bool
		last     = start // when the last new blob was kept
		blobs    int
	)
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case recErr = <-done:
			returned = true
			break wait
		case <-overall.C:
			c.progress.printf("gossip: stopping after %v", c.GossipTimeout)
			break wait
		case ev := <-col.changed:
			if ev.kept > 0 {
				blobs += ev.kept
				last = time.Now()
				quiet.Reset(c.GossipQuiet)
			}
			if c.legacyGossip {
				continue
			}
			st := col.state()
			if !st.settled() {
				grace.Stop()
				continue
			}
			// Every vault heard of has a verified copy and nothing is in
			// flight: wait GossipGrace after the request and after the last
			// offer, for holders later than the others.
			at := st.lastOffer
			if at.Before(start) {
				at = start
			}
			if wait := time.Until(at.Add(c.GossipGrace)); wait > 0 {
				grace.Reset(wait)
				continue
			}
			c.progress.printf("gossip: every vault heard of (%d) has a verified copy; no holder answered in the last %v; stopping", st.vaults, c.GossipGrace)
			break wait
		case <-grace.C:
			// Re-checked through changed: the state may have moved on.
			col.poke()
		case <-tick.C:
			if blobs == 0 {
				c.progress.printf("gossip: waiting for holders: no blob yet after %v (stopping at %v)",
					time.Since(start).Round(time.Second), c.GossipFirstWait)
			} else {
				c.progress.printf("gossip: waiting for holders: %d new blob(s) so far, the last %v ago (stopping at %v)",
					blobs, time.Since(last).Round(time.Second), c.GossipQuiet)
			}
		case <-quiet.C:
			if blobs == 0 {
				c.progress.printf("gossip: no blob in %v; stopping", c.GossipFirstWait)
			} else {
				c.progress.printf("gossip: no new blob for %v; stopping", c.GossipQuiet)
			}
			break wait
		}
	}
	cancel()
	if !returned {
		recErr = <-done
	}
	best, skips, offers := col.close()
	rep.Skipped = skips
	rep.Clock = holderClock(offers)
	c.reportClock(rep.Clock)
	defer func() {
		for _, k := range best {
			clear(k.pt)
		}
	}()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case recErr != nil:
		return fmt.Errorf("gossip recovery: %w", recErr)
	case len(best) == 0:
		return fmt.Errorf("%w: no holder returned a blob of %s that opens with this mnemonic in %v (is it this node's mnemonic? are the bootstrap peers its holders' network?)",
			ErrNoBackups, owner, time.Since(start).Round(time.Second))
	}
	for _, k := range best {
		res := VaultResult{
			Vault: k.vault, Holder: k.holder, Peer: k.peer, Digest: hex.EncodeToString(k.digest[:]), Commitment: k.commitment,
			Received: k.received, Bytes: len(k.pt), Duration: k.after,
		}
		res.File, res.Unchanged, res.Err = c.write(k.vault, k.pt)
		c.reportWrite(&res)
		rep.Vaults = append(rep.Vaults, res)
	}
	return finish(rep)
}

// waitTopic waits until every peer in want is on the recovery topic, or
// topicOthersWait after the first one is, or topicJoinWait if none is, and
// says which are not.
func waitTopic(ctx context.Context, c *config, g *p2p.Gossip, want []peer.ID) {
	deadline := time.NewTimer(topicJoinWait)
	defer deadline.Stop()
	tick := time.NewTicker(topicPollInterval)
	defer tick.Stop()
	var others <-chan time.Time
	for {
		_, on := g.TopicPeers()
		var missing []peer.ID
		for _, p := range want {
			if !slices.Contains(on, p) {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			return
		}
		if others == nil && len(missing) < len(want) {
			t := time.NewTimer(topicOthersWait)
			defer t.Stop()
			others = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
		case <-others:
		case <-tick.C:
			continue
		}
		c.progress.printf("gossip: %d of %d bootstrap peer(s) not on the recovery topic yet (%v); publishing", len(missing), len(want), missing)
		return
	}
}

// kept is the newest valid blob of one vault so far.
type kept struct {
	vault      string
	holder     string
	peer       peer.ID
	commitment uint64 // the chain's id of the version, as the holder names it
	digest     [32]byte
	received   time.Time
	pt         []byte
	after      time.Duration // since the search started
}

// change is what the collector tells runGossip: kept new blobs (0 when only
// offers, stream ends or verifications moved the state).
type change struct{ kept int }

// collector verifies the blobs returned over gossip and keeps the newest
// per vault, and tracks what is still in flight: holders that offered and
// are sending, blobs being opened.
type collector struct {
	c       *config
	ctx     context.Context
	hrp     string
	start   time.Time
	changed chan change

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	failed   map[[32]byte]error         // digests that do not open as a keyshare
	vaultOf  map[[32]byte]string        // digests that do, and of which vault
	opening  map[[32]byte][]p2p.Fetched // digests being opened, and copies waiting for the verdict
	// versions being opened (one copy at a time per version: the r copies
	// of a commitment are different ciphertexts of one plaintext), and the
	// other copies of each, waiting: they are opened, one at a time, only
	// if the copy being opened fails.
	versionOpening map[versionKey]bool
	versionWait    map[versionKey][]p2p.Fetched
	best           map[string]*kept
	heard          map[string]bool // vaults some holder sent a copy of
	sending        map[peer.ID]int // holders whose accepted stream has not ended
	lastOffer      time.Time
	offers         []p2p.Offer
	skips          []Skip
}

func newCollector(c *config, ctx context.Context, hrp string, start time.Time) *collector {
	return &collector{
		c: c, ctx: ctx, hrp: hrp, start: start,
		changed:        make(chan change, 1),
		failed:         make(map[[32]byte]error),
		vaultOf:        make(map[[32]byte]string),
		opening:        make(map[[32]byte][]p2p.Fetched),
		versionOpening: make(map[versionKey]bool),
		versionWait:    make(map[versionKey][]p2p.Fetched),
		best:           make(map[string]*kept),
		heard:          make(map[string]bool),
		sending:        make(map[peer.ID]int),
	}
}

// signal tells runGossip that the state changed; k.mu is held. Changes
// merge while runGossip has not taken them.
func (k *collector) signal(kept int) {
	select {
	case ev := <-k.changed:
		kept += ev.kept
	default:
	}
	k.changed <- change{kept: kept}
}

// poke makes runGossip look at the state again.
func (k *collector) poke() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.signal(0)
}

// gossipState is what the stop rule looks at.
type gossipState struct {
	vaults, verified int // vaults heard of, and with a verified copy
	busy             bool
	lastOffer        time.Time
}

// settled: every vault heard of has a verified copy, at least one, and no
// holder is still sending and no blob is being opened.
func (s gossipState) settled() bool { return s.verified > 0 && s.verified == s.vaults && !s.busy }

func (k *collector) state() gossipState {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := gossipState{vaults: len(k.heard), lastOffer: k.lastOffer, busy: len(k.sending) > 0 || len(k.opening) > 0}
	for v := range k.heard {
		if k.best[v] != nil {
			st.verified++
		}
	}
	return st
}

// onOffer is Gossip.Recover's offer callback: a holder is about to send.
func (k *collector) onOffer(o p2p.Offer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	k.sending[o.Holder]++
	k.lastOffer = time.Now()
	k.offers = append(k.offers, o)
	k.c.progress.printf("gossip: %s offers %d blob(s)", k.holderName(o.Holder), o.Count)
	k.signal(0)
}

// onDone is Gossip.Recover's end-of-stream callback.
func (k *collector) onDone(p peer.ID, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sending[p]--; k.sending[p] <= 0 {
		delete(k.sending, p)
	}
	if err != nil && !k.closed {
		k.c.log.Warn("holder's return failed", "peer", p, "err", err)
		k.c.progress.printf("gossip: return from %s failed: %v", k.holderName(p), err)
	}
	k.signal(0)
}

func (k *collector) holderName(p peer.ID) string {
	if pub, err := identity.PubKeyFromPeerID(p); err == nil {
		if a, err := identity.AddressFromPubKey(pub, k.hrp); err == nil {
			return a
		}
	}
	return p.String()
}

// onBlob is Gossip.Recover's blob callback (called one at a time). A digest
// is opened once to learn whether it is a keyshare and of which vault; the
// copies that arrive meanwhile wait for that verdict, and later copies are
// judged from it. A blob that would not replace the kept one of its vault
// (older, by the holder's receive time) is not opened at all. Opening runs
// on its own goroutine (at most maxConcurrentOpens at once), so blobs of
// different vaults open in parallel.
func (k *collector) onBlob(f p2p.Fetched) {
	holder := k.holderName(f.Holder)
	s := Skip{Vault: f.Vault, Holder: holder, Peer: f.Holder, Digest: hex.EncodeToString(f.Digest[:])}
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	// What the holder claims (the header) is checked first, and not
	// remembered: it says nothing about other copies of the digest.
	s.Err = checkDigest(f.Blob, f.Digest)
	if s.Err == nil {
		_, s.Err = FileName(f.Vault)
	}
	if s.Err != nil {
		k.skip(s)
		k.mu.Unlock()
		return
	}
	k.heard[f.Vault] = true
	start := k.consider(f, holder, s)
	k.mu.Unlock()
	if !start {
		return
	}
	if k.c.legacyGossip {
		// As before the offers: one blob opened at a time, in order.
		k.open(f, holder, s)
		return
	}
	go k.open(f, holder, s)
}

// versionKey names a share version as a holder's entry does: the vault and
// the chain's commitment id.
type versionKey struct {
	vault      string
	commitment uint64
}

// consider decides f from what is known, or queues it behind the opening
// of the same digest or of another copy of the same version, or marks it
// as being opened and reports that the caller is to open it. k.mu is held.
func (k *collector) consider(f p2p.Fetched, holder string, s Skip) bool {
	if waiting, ok := k.opening[f.Digest]; ok {
		k.opening[f.Digest] = append(waiting, f)
		return false
	}
	if done := k.judge(f, holder, s); done {
		return false
	}
	vk := versionKey{f.Vault, f.Custody.Commitment}
	if k.versionOpening[vk] {
		k.versionWait[vk] = append(k.versionWait[vk], f)
		return false
	}
	k.versionOpening[vk] = true
	k.opening[f.Digest] = nil
	k.inflight.Add(1)
	return true
}

// open opens f, and judges it and the copies of its digest that came
// meanwhile: the first of them that is a copy of its vault's newest blob is
// kept (a copy that names another vault than the share's is skipped, and a
// later one that names the right vault is kept from the same plaintext).
func (k *collector) open(f p2p.Fetched, holder string, s Skip) {
	defer k.inflight.Done()
	pt, vault, err := k.c.openShare(k.ctx, f.Blob)
	k.mu.Lock()
	defer k.mu.Unlock()
	waiting := k.opening[f.Digest]
	delete(k.opening, f.Digest)
	vk := versionKey{f.Vault, f.Custody.Commitment}
	delete(k.versionOpening, vk)
	others := k.versionWait[vk]
	delete(k.versionWait, vk)
	defer k.signal(0)
	// The other copies of the version: judged once f is (skipped as copies
	// of the kept version if f was kept), else opened one at a time.
	defer func() {
		for _, o := range others {
			if k.closed || k.ctx.Err() != nil {
				return
			}
			name := k.holderName(o.Holder)
			ws := Skip{Vault: o.Vault, Holder: name, Peer: o.Holder, Digest: hex.EncodeToString(o.Digest[:])}
			if k.consider(o, name, ws) {
				go k.open(o, name, ws)
			}
		}
	}()
	if err != nil {
		if k.ctx.Err() == nil {
			k.failed[f.Digest] = err
			s.Err = err
			k.skip(s)
		}
	} else {
		k.vaultOf[f.Digest] = vault
	}
	if k.ctx.Err() != nil {
		clear(pt)
		return
	}
	for i, c := range append([]p2p.Fetched{f}, waiting...) {
		if i == 0 && err != nil {
			continue // skipped above, once
		}
		cs := s
		if i > 0 {
			name := k.holderName(c.Holder)
			cs = Skip{Vault: c.Vault, Holder: name, Peer: c.Holder, Digest: hex.EncodeToString(c.Digest[:])}
		}
		if k.judge(c, cs.Holder, cs) || pt == nil {
			continue
		}
		// Not decided, so a copy of vault (judge skips other vaults) newer
		// than the kept one: keep it.
		if cur := k.best[c.Vault]; cur != nil {
			clear(cur.pt)
		}
		k.best[c.Vault] = &kept{
			vault: c.Vault, holder: cs.Holder, peer: c.Holder, commitment: c.Custody.Commitment, digest: c.Digest, received: c.Received,
			pt: pt, after: time.Since(k.start),
		}
		pt = nil
		k.c.progress.printf("vault %s: valid copy of commitment %d from %s (received %s)", c.Vault, c.Custody.Commitment, cs.Holder, c.Received.UTC().Format(time.RFC3339))
		k.signal(1)
	}
	clear(pt)
}

// judge decides f from what is already known, and reports whether it did
// (otherwise f must be opened, or, once opened, kept). k.mu is held.
func (k *collector) judge(f p2p.Fetched, holder string, s Skip) bool {
	if err, bad := k.failed[f.Digest]; bad {
		s.Err = err
		k.skip(s)
		return true
	}
	if v, ok := k.vaultOf[f.Digest]; ok && v != f.Vault {
		s.Err = &WrongVaultError{Want: f.Vault, Got: v}
		k.skip(s)
		return true
	}
	cur := k.best[f.Vault]
	switch {
	case cur == nil:
		return false
	case cur.digest == f.Digest:
		// Another copy of the kept blob: credit the holder that reports
		// the latest receive time, as if it had come first, and say so, so
		// that the progress ends naming the holder the report names.
		if f.Received.After(cur.received) {
			cur.holder, cur.peer, cur.received = holder, f.Holder, f.Received
			k.c.progress.printf("vault %s: the same blob from %s (received %s, later): credited to it",
				f.Vault, holder, f.Received.UTC().Format(time.RFC3339))
		}
		return true
	case f.Custody.Commitment == cur.commitment:
		// Another copy of the kept version (a different ciphertext of the
		// same plaintext): nothing to open. Not credited: its bytes were
		// not verified.
		return true
	case !newer(f.Custody.Commitment, cur.commitment):
		k.c.progress.printf("vault %s: older copy (commitment %d) from %s ignored", f.Vault, f.Custody.Commitment, holder)
		return true
	}
	return false
}

// skip records a skipped blob; k.mu is held.
func (k *collector) skip(s Skip) {
	k.c.log.Warn("holder skipped", "vault", s.Vault, "holder", s.Holder, "peer", s.Peer, "digest", s.Digest, "err", s.Err)
	k.c.progress.printf("vault %s: blob from %s skipped: %v", s.Vault, s.Holder, s.Err)
	k.skips = append(k.skips, s)
}

// close stops accepting blobs, waits for the verifications in progress, and
// returns the kept blobs (in vault order), the skips and the offers.
func (k *collector) close() ([]*kept, []Skip, []p2p.Offer) {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.inflight.Wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*kept, 0, len(k.best))
	for _, v := range k.best {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *kept) int { return strings.Compare(a.vault, b.vault) })
	return out, k.skips, k.offers
}

// newer reports whether a copy of commitment cm replaces the kept copy of
// commitment curCm (copies of one commitment are one version, decided
// before): the later version wins. The chain numbers commitments in the
// order it commits them, so a higher id is a newer version whatever any
// clock says — the holders' receive times, which an earlier rule compared,
// are their clocks.
func newer(cm, curCm uint64) bool { return cm > curCm }
