package recovery

import (
	"bytes"
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
// vault, stop after a quiet period or the timeout, and write what was kept.
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
	waitTopic(ctx, g, connected)
	// p2p's gossipsub sends this node's own messages only to its mesh
	// peers, and grafts peers into the mesh on its heartbeat: wait for one.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(meshWait):
	}

	start := time.Now()
	col := &collector{
		c: c, ctx: ctx, hrp: hrp, start: start,
		changed: make(chan struct{}, 1),
		failed:  make(map[[32]byte]error),
		vaultOf: make(map[[32]byte]string),
		best:    make(map[string]*kept),
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Recover(rctx, col.onBlob) }()
	overall := time.NewTimer(c.GossipTimeout)
	defer overall.Stop()
	// Until the first blob the wait is GossipFirstWait, so a mnemonic no
	// holder knows (a wrong one) ends then, not at GossipTimeout.
	quiet := time.NewTimer(c.GossipFirstWait)
	tick := time.NewTicker(waitProgressInterval)
	defer tick.Stop()
	c.progress.printf("gossip: request published; waiting for holders (stopping if no blob comes in %v, then %v after the last new one; %v at most)",
		c.GossipFirstWait, c.GossipQuiet, c.GossipTimeout)
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
		case <-col.changed:
			blobs++
			last = time.Now()
			quiet.Reset(c.GossipQuiet)
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
	quiet.Stop()
	cancel()
	if !returned {
		recErr = <-done
	}
	best, skips := col.close()
	rep.Skipped = skips
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
			Vault: k.vault, Holder: k.holder, Peer: k.peer, Digest: hex.EncodeToString(k.digest[:]),
			Received: k.received, Bytes: len(k.pt), Duration: k.after,
		}
		res.File, res.Unchanged, res.Err = c.write(k.vault, k.pt)
		c.reportWrite(&res)
		rep.Vaults = append(rep.Vaults, res)
	}
	return finish(rep)
}

// waitTopic waits, at most topicJoinWait, until every peer in want is on
// the recovery topic.
func waitTopic(ctx context.Context, g *p2p.Gossip, want []peer.ID) {
	deadline := time.NewTimer(topicJoinWait)
	defer deadline.Stop()
	tick := time.NewTicker(topicPollInterval)
	defer tick.Stop()
	for {
		_, on := g.TopicPeers()
		if !slices.ContainsFunc(want, func(p peer.ID) bool { return !slices.Contains(on, p) }) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// kept is the newest valid blob of one vault so far.
type kept struct {
	vault    string
	holder   string
	peer     peer.ID
	digest   [32]byte
	received time.Time
	pt       []byte
	after    time.Duration // since the search started
}

// collector verifies the blobs returned over gossip and keeps the newest
// per vault.
type collector struct {
	c       *config
	ctx     context.Context
	hrp     string
	start   time.Time
	changed chan struct{} // a vault's kept blob changed

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	failed   map[[32]byte]error  // digests that do not open as a keyshare
	vaultOf  map[[32]byte]string // digests that do, and of which vault
	best     map[string]*kept
	skips    []Skip
}

// onBlob is Gossip.Recover's callback (called one at a time). A digest is
// opened once to learn whether it is a keyshare and of which vault; later
// copies are judged from that. A blob that would not replace the kept one of
// its vault (older, by the holder's receive time) is not opened at all.
func (k *collector) onBlob(f p2p.Fetched) {
	holder := f.Holder.String()
	if pub, err := identity.PubKeyFromPeerID(f.Holder); err == nil {
		if a, err := identity.AddressFromPubKey(pub, k.hrp); err == nil {
			holder = a
		}
	}
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
	if done := k.judge(f, holder, s); done {
		k.mu.Unlock()
		return
	}
	k.inflight.Add(1)
	k.mu.Unlock()
	defer k.inflight.Done()

	pt, vault, err := k.verify(f)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		if k.ctx.Err() == nil {
			k.failed[f.Digest] = err
			s.Err = err
			k.skip(s)
		}
		return
	}
	k.vaultOf[f.Digest] = vault
	if k.judge(f, holder, s) {
		clear(pt)
		return
	}
	if cur := k.best[f.Vault]; cur != nil {
		clear(cur.pt)
	}
	k.best[f.Vault] = &kept{
		vault: f.Vault, holder: holder, peer: f.Holder, digest: f.Digest, received: f.Received,
		pt: pt, after: time.Since(k.start),
	}
	k.c.progress.printf("vault %s: valid blob from %s (received %s)", f.Vault, holder, f.Received.UTC().Format(time.RFC3339))
	select {
	case k.changed <- struct{}{}:
	default:
	}
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
	case !newer(f.Received, f.Digest, cur.received, cur.digest):
		k.c.progress.printf("vault %s: older blob from %s (received %s) ignored", f.Vault, holder, f.Received.UTC().Format(time.RFC3339))
		return true
	}
	return false
}

// verify opens a returned blob as a keyshare: it returns the plaintext
// and the share's vault key.
func (k *collector) verify(f p2p.Fetched) ([]byte, string, error) {
	return k.c.openShare(k.ctx, f.Blob)
}

// skip records a skipped blob; k.mu is held.
func (k *collector) skip(s Skip) {
	k.c.log.Warn("holder skipped", "vault", s.Vault, "holder", s.Holder, "peer", s.Peer, "digest", s.Digest, "err", s.Err)
	k.c.progress.printf("vault %s: blob from %s skipped: %v", s.Vault, s.Holder, s.Err)
	k.skips = append(k.skips, s)
}

// close stops accepting blobs, waits for a verification in progress, and
// returns the kept blobs (in vault order) and the skips.
func (k *collector) close() ([]*kept, []Skip) {
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
	return out, k.skips
}

// newer reports whether a blob received at t with digest d replaces the one
// kept (received at curT, digest curD): a later holder-reported receive
// time wins; an exact tie goes to the smaller digest, so the choice does not
// depend on the order blobs arrive in.
func newer(t time.Time, d [32]byte, curT time.Time, curD [32]byte) bool {
	if !t.Equal(curT) {
		return t.After(curT)
	}
	return bytes.Compare(d[:], curD[:]) < 0
}
