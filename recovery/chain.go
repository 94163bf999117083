package recovery

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
)

// holderRef is one holder of one blob, as the chain describes it.
type holderRef struct {
	addr   string
	peer   peer.ID
	addrs  []ma.Multiaddr
	height int64 // block of its latest attestation of the blob
}

// candidate is one attested blob of a vault, with its holders.
type candidate struct {
	digest  [32]byte
	hex     string
	height  int64 // newest attestation of this digest
	holders []holderRef
}

// vaultPlan is what the chain says about one vault of this node: its
// attested blobs, newest first.
type vaultPlan struct {
	vault string
	cands []*candidate
}

// runChain is the chain path: read this node's attestations and the active
// nodes, then recover every attested vault from its holders.
func runChain(ctx context.Context, c *config, rep *Report) error {
	rep.Path = PathChain
	client := c.client
	query := func(f func(context.Context) error) error {
		qctx, cancel := context.WithTimeout(ctx, c.ChainTimeout)
		defer cancel()
		err := f(qctx)
		var qe *attest.QueryError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &qe):
			// The chain answered and refused: falling back would hide it.
			return fmt.Errorf("reading the chain: %w", err)
		}
		return &chainUnreachable{err: err}
	}
	hrp := c.HRP
	if hrp == "" {
		err := query(func(ctx context.Context) error {
			p, err := client.Params(ctx)
			hrp = p.HRP
			return err
		})
		if err != nil {
			return err
		}
	}
	owner, err := identity.AddressFromPubKey(c.id.PubKey(), hrp)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	rep.Owner = owner
	var (
		atts  []attest.Attestation
		nodes []attest.Node
	)
	if err := query(func(ctx context.Context) (err error) { atts, err = client.AttestationsByOwner(ctx, owner); return }); err != nil {
		return err
	}
	if err := query(func(ctx context.Context) (err error) { nodes, err = client.Nodes(ctx); return }); err != nil {
		return err
	}
	if len(atts) == 0 {
		return fmt.Errorf("%w: the chain at %s has no attestation for %s (is the mnemonic, or the prefix %q, right?)", ErrNoBackups, c.RPC, owner, hrp)
	}
	plans := plan(atts, nodes, c.log)
	c.progress.printf("chain %s: %d vault(s) attested for %s", c.RPC, len(plans), owner)

	h, err := p2p.NewHost(p2p.HostConfig{Identity: c.id})
	if err != nil {
		return fmt.Errorf("starting libp2p host: %w", err)
	}
	defer func() {
		h.Close()
		c.fetches.Wait()
	}()

	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	skip := func(s Skip) {
		c.log.Warn("holder skipped", "vault", s.Vault, "holder", s.Holder, "peer", s.Peer, "digest", s.Digest, "err", s.Err)
		c.progress.printf("vault %s: holder %s skipped: %v", s.Vault, s.Holder, s.Err)
		mu.Lock()
		rep.Skipped = append(rep.Skipped, s)
		mu.Unlock()
	}
	start := time.Now()
	results := make([]VaultResult, len(plans))
	for i, vp := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.recoverVault(ctx, h, vp, start, skip)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.Vaults = results
	slices.SortFunc(rep.Skipped, func(a, b Skip) int {
		return cmp.Or(strings.Compare(a.Vault, b.Vault), strings.Compare(a.Digest, b.Digest), strings.Compare(a.Holder, b.Holder))
	})
	return finish(rep)
}

// plan groups attestations by vault and digest, with each holder's peer ID
// and addresses from the active nodes. Digests are ordered newest first (by
// the height of their latest attestation), then by more holders, then by
// digest; holders of a digest by their latest attestation, newest first.
func plan(atts []attest.Attestation, nodes []attest.Node, log *slog.Logger) []vaultPlan {
	byAddr := make(map[string]attest.Node, len(nodes))
	for _, n := range nodes {
		byAddr[n.Address] = n
	}
	vaults := map[string]map[[32]byte]*candidate{}
	for _, a := range atts {
		raw, err := hex.DecodeString(a.Digest)
		if err != nil || len(raw) != 32 {
			log.Warn("attestation with a malformed digest ignored", "vault", a.Vault, "holder", a.Holder)
			continue
		}
		d := [32]byte(raw)
		if vaults[a.Vault] == nil {
			vaults[a.Vault] = map[[32]byte]*candidate{}
		}
		cd := vaults[a.Vault][d]
		if cd == nil {
			cd = &candidate{digest: d, hex: hex.EncodeToString(raw)}
			vaults[a.Vault][d] = cd
		}
		cd.height = max(cd.height, a.Height)
		hr := holderRef{addr: a.Holder, height: a.Height}
		if n, ok := byAddr[a.Holder]; ok {
			hr.peer, _ = peer.Decode(n.PeerID)
			for _, s := range n.Multiaddrs {
				if m, err := ma.NewMultiaddr(s); err == nil {
					hr.addrs = append(hr.addrs, m)
				}
			}
		}
		cd.holders = append(cd.holders, hr)
	}
	out := make([]vaultPlan, 0, len(vaults))
	for v, cds := range vaults {
		vp := vaultPlan{vault: v}
		for _, cd := range cds {
			slices.SortFunc(cd.holders, func(a, b holderRef) int {
				return cmp.Or(cmp.Compare(b.height, a.height), strings.Compare(a.addr, b.addr))
			})
			vp.cands = append(vp.cands, cd)
		}
		slices.SortFunc(vp.cands, func(a, b *candidate) int {
			return cmp.Or(cmp.Compare(b.height, a.height), cmp.Compare(len(b.holders), len(a.holders)), strings.Compare(a.hex, b.hex))
		})
		out = append(out, vp)
	}
	slices.SortFunc(out, func(a, b vaultPlan) int { return strings.Compare(a.vault, b.vault) })
	return out
}

// recoverVault tries the attested blobs of one vault, newest first, until
// one verifies, and writes it. An older blob is used only when no holder of
// every newer one delivered a valid blob.
func (c *config) recoverVault(ctx context.Context, h host.Host, vp vaultPlan, start time.Time, skip func(Skip)) VaultResult {
	res := VaultResult{Vault: vp.vault}
	// No holder is asked for a vault that cannot be written.
	if _, err := FileName(vp.vault); err != nil {
		res.Err = err
		return res
	}
	tried := 0
	for i, cd := range vp.cands {
		c.progress.printf("vault %s: asking %d holder(s) for blob %.16s… (block %d)", vp.vault, len(cd.holders), cd.hex, cd.height)
		tried += len(cd.holders)
		pt, hr, err := c.race(ctx, h, vp.vault, cd, skip)
		if err != nil {
			if ctx.Err() != nil {
				res.Err = ctx.Err()
				return res
			}
			continue
		}
		if i > 0 {
			c.log.Warn("newest attested blob unavailable; using an older one", "vault", vp.vault, "digest", cd.hex, "height", cd.height)
			c.progress.printf("vault %s: no valid copy of the newest attested blob; using the one attested at block %d", vp.vault, cd.height)
		}
		res.Holder, res.Peer, res.Digest, res.Height, res.Bytes = hr.addr, hr.peer, cd.hex, cd.height, len(pt)
		res.File, res.Unchanged, res.Err = c.write(vp.vault, pt)
		clear(pt)
		res.Duration = time.Since(start)
		c.reportWrite(&res)
		return res
	}
	res.Err = fmt.Errorf("%w (%d blob(s), %d holder attestation(s) tried)", ErrNoValidBlob, len(vp.cands), tried)
	c.progress.printf("vault %s: NOT recovered: %v", vp.vault, res.Err)
	return res
}

// race fetches the blob cd from its holders, fetchFanout at a time, and
// returns the plaintext of the first copy that hashes to cd's digest and
// opens as a keyshare of vault; the other fetches are then cancelled. Every
// copy with that digest is the same bytes, so one that fails to open ends
// the race: the digest itself is bad. Failures are reported to skip.
func (c *config) race(ctx context.Context, h host.Host, vault string, cd *candidate, skip func(Skip)) ([]byte, *holderRef, error) {
	rctx, cancel := context.WithCancel(ctx)
	type result struct {
		hr   *holderRef
		blob []byte
		err  error
	}
	results := make(chan result, len(cd.holders))
	sem := make(chan struct{}, fetchFanout)
	// The fetches still running when race returns end when they see the
	// cancellation, or when runChain closes the host (a silent holder's
	// stream does not watch the context); runChain waits for them.
	defer cancel()
	for i := range cd.holders {
		hr := &cd.holders[i]
		c.fetches.Add(1)
		go func() {
			defer c.fetches.Done()
			select {
			case sem <- struct{}{}:
			case <-rctx.Done():
				results <- result{hr: hr, err: rctx.Err()}
				return
			}
			defer func() { <-sem }()
			blob, err := c.fetchOne(rctx, h, hr, vault, cd.digest)
			results <- result{hr: hr, blob: blob, err: err}
		}()
	}
	for range cd.holders {
		r := <-results
		s := Skip{Vault: vault, Holder: r.hr.addr, Peer: r.hr.peer, Digest: cd.hex, Err: r.err}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if r.err != nil {
			skip(s)
			continue
		}
		pt, err := c.open(ctx, r.blob, vault)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			s.Err = err
			skip(s)
			return nil, nil, err
		}
		return pt, r.hr, nil
	}
	return nil, nil, ErrNoValidBlob
}

// fetchOne fetches blob digest of vault from one holder, within
// HolderTimeout, and checks its sha256.
func (c *config) fetchOne(ctx context.Context, h host.Host, hr *holderRef, vault string, digest [32]byte) ([]byte, error) {
	if hr.peer == "" || len(hr.addrs) == 0 {
		return nil, fmt.Errorf("%w: %s is not an active node with a multiaddr on the chain", ErrNoAddress, hr.addr)
	}
	h.Peerstore().AddAddrs(hr.peer, hr.addrs, peerstore.TempAddrTTL)
	deadline := time.Now().Add(c.HolderTimeout)
	fctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	got, err := p2p.Fetch(fctx, h, hr.peer, vault, digest[:])
	if err != nil {
		if ctx.Err() == nil && !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w (%v): %w", ErrHolderTimeout, c.HolderTimeout, err)
		}
		return nil, err
	}
	for _, f := range got {
		if f.Vault == vault && f.Digest == digest {
			if err := checkDigest(f.Blob, digest); err != nil {
				return nil, err
			}
			return f.Blob, nil
		}
	}
	return nil, fmt.Errorf("%w: the holder sent %d other blob(s)", ErrDigestMismatch, len(got))
}
