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
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
)

// holderRef is one holder of one copy, as the chain describes it.
type holderRef struct {
	addr    string
	peer    peer.ID
	addrs   []ma.Multiaddr
	custody custody.CustodyID
	// copyIndex is the copy the chain says this custody holds: the fetched
	// copy must verify as that copy of the commitment.
	copyIndex int
	status    string
	lastProof int64
}

// candidate is one commitment of a vault (a share version), with the
// holders of its copies.
type candidate struct {
	id      uint64
	root    [custody.HashSize]byte
	hex     string // the root, hex
	size    uint64
	copies  int
	live    bool
	height  int64 // block of the Commit
	holders []holderRef
}

// vaultPlan is what the chain says about one vault of this node: its
// committed versions, newest live first.
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
	if c.Verified != nil {
		return runVerified(ctx, c, rep)
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
		commits []attest.Commitment
		nodes   []attest.Node
	)
	if err := query(func(ctx context.Context) (err error) { commits, err = client.CommitmentsByOwner(ctx, owner); return }); err != nil {
		return err
	}
	if err := query(func(ctx context.Context) (err error) { nodes, err = client.Nodes(ctx); return }); err != nil {
		return err
	}
	return c.recoverPlans(ctx, rep, commits, nodes, owner, hrp)
}

// runVerified is the chain path on verified state: the owner's newest
// commitment of each vault and its holders' node records, each read
// proven; any failure ends the recovery (no fallback).
func runVerified(ctx context.Context, c *config, rep *Report) error {
	get, h, err := c.Verified(ctx)
	if err != nil {
		return fmt.Errorf("reading verified chain state: %w", err)
	}
	rep.ProvenHeight = h
	hrp := c.HRP
	if hrp == "" {
		p, err := attest.ReadParams(get)
		if err != nil {
			return fmt.Errorf("reading verified chain state: %w", err)
		}
		hrp = p.HRP
	}
	owner, err := identity.AddressFromPubKey(c.id.PubKey(), hrp)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	rep.Owner = owner
	commits, err := attest.ReadOwnerCommitments(get, owner)
	if err != nil {
		return fmt.Errorf("reading verified chain state: %w", err)
	}
	var holders []string
	seen := map[string]bool{}
	for _, cm := range commits {
		for _, cu := range cm.Custodies {
			if !seen[cu.Holder] {
				seen[cu.Holder] = true
				holders = append(holders, cu.Holder)
			}
		}
	}
	nodes, err := attest.ReadNodes(get, holders)
	if err != nil {
		return fmt.Errorf("reading verified chain state: %w", err)
	}
	c.progress.printf("chain %s: state proven at height %d", c.RPC, h)
	return c.recoverPlans(ctx, rep, commits, nodes, owner, hrp)
}

// recoverPlans recovers every vault of commits from its holders.
func (c *config) recoverPlans(ctx context.Context, rep *Report, commits []attest.Commitment, nodes []attest.Node, owner, hrp string) error {
	plans := plan(commits, nodes, owner, c.log)
	if len(plans) == 0 {
		return fmt.Errorf("%w: the chain at %s has no commitment of %s (is the mnemonic, or the prefix %q, right?)", ErrNoBackups, c.RPC, owner, hrp)
	}
	c.progress.printf("chain %s: %d vault(s) committed by %s", c.RPC, len(plans), owner)

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

// holderRank orders a commitment's holders: those the chain counts
// (attested, proven most recently first), then those not attested yet
// (they may hold a copy whose attestation is pending), then stale ones.
func holderRank(h holderRef) int {
	switch h.status {
	case "fresh":
		return 0
	case "pending":
		return 1
	}
	return 2
}

// plan groups commitments by vault, with each holder's peer ID and
// addresses from the active nodes. A vault's versions are ordered live
// first, then newest first (commitment ids grow); failed custodies and the
// owner itself are left out.
func plan(commits []attest.Commitment, nodes []attest.Node, owner string, log *slog.Logger) []vaultPlan {
	byAddr := make(map[string]attest.Node, len(nodes))
	for _, n := range nodes {
		byAddr[n.Address] = n
	}
	vaults := map[string][]*candidate{}
	for _, cm := range commits {
		if cm.Vault == "" {
			continue // the vault is deleted: nothing to write it as
		}
		root, err := hex.DecodeString(cm.Root)
		if err != nil || len(root) != custody.HashSize || cm.Copies == 0 || cm.Copies > custody.MaxCopies {
			log.Warn("commitment with a malformed root or copy count ignored", "vault", cm.Vault, "commitment", cm.ID)
			continue
		}
		cd := &candidate{id: cm.ID, hex: cm.Root, size: cm.Size, copies: int(cm.Copies), live: cm.Live, height: cm.CommitHeight}
		copy(cd.root[:], root)
		for _, cu := range cm.Custodies {
			if cu.Status == "failed" || cu.Holder == owner || int(cu.CopyIndex) >= cd.copies {
				continue
			}
			hr := holderRef{
				addr: cu.Holder, custody: custody.CustodyID{Commitment: cu.Commitment, Slot: cu.Slot},
				copyIndex: int(cu.CopyIndex), status: cu.Status, lastProof: cu.LastProofHeight,
			}
			if !cu.Attested {
				hr.status = "pending"
			}
			if n, ok := byAddr[cu.Holder]; ok {
				hr.peer, _ = peer.Decode(n.PeerID)
				for _, s := range n.Multiaddrs {
					if m, err := ma.NewMultiaddr(s); err == nil {
						hr.addrs = append(hr.addrs, m)
					}
				}
			}
			cd.holders = append(cd.holders, hr)
		}
		slices.SortFunc(cd.holders, func(a, b holderRef) int {
			return cmp.Or(cmp.Compare(holderRank(a), holderRank(b)), cmp.Compare(b.lastProof, a.lastProof), strings.Compare(a.addr, b.addr))
		})
		vaults[cm.Vault] = append(vaults[cm.Vault], cd)
	}
	out := make([]vaultPlan, 0, len(vaults))
	for v, cds := range vaults {
		slices.SortFunc(cds, func(a, b *candidate) int {
			if a.live != b.live {
				if a.live {
					return -1
				}
				return 1
			}
			return cmp.Compare(b.id, a.id)
		})
		out = append(out, vaultPlan{vault: v, cands: cds})
	}
	slices.SortFunc(out, func(a, b vaultPlan) int { return strings.Compare(a.vault, b.vault) })
	return out
}

// recoverVault tries the committed versions of one vault, the live one
// first, until a holder delivers a copy that verifies, and writes it. An
// older version is used only when no holder of every newer one delivered a
// valid copy.
func (c *config) recoverVault(ctx context.Context, h host.Host, vp vaultPlan, start time.Time, skip func(Skip)) VaultResult {
	res := VaultResult{Vault: vp.vault}
	// No holder is asked for a vault that cannot be written.
	if _, err := FileName(vp.vault); err != nil {
		res.Err = err
		return res
	}
	tried := 0
	for i, cd := range vp.cands {
		c.progress.printf("vault %s: asking %d holder(s) for a copy of commitment %d (root %.16s…, block %d)", vp.vault, len(cd.holders), cd.id, cd.hex, cd.height)
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
			c.log.Warn("newest committed version unavailable; using an older one", "vault", vp.vault, "commitment", cd.id, "height", cd.height)
			c.progress.printf("vault %s: no valid copy of the newest version; using commitment %d of block %d", vp.vault, cd.id, cd.height)
		}
		res.Holder, res.Peer, res.Digest, res.Height, res.Bytes = hr.addr, hr.peer, cd.hex, cd.height, len(pt)
		res.Commitment = cd.id
		res.File, res.Unchanged, res.Err = c.write(vp.vault, pt)
		clear(pt)
		res.Duration = time.Since(start)
		c.reportWrite(&res)
		return res
	}
	res.Err = fmt.Errorf("%w (%d version(s), %d holder(s) tried)", ErrNoValidBlob, len(vp.cands), tried)
	c.progress.printf("vault %s: NOT recovered: %v", vp.vault, res.Err)
	return res
}

// race fetches copies of commitment cd from its holders, fetchFanout at a
// time, and returns the plaintext of the first copy that verifies against
// cd's root (custody.VerifyCopy, as the copy index the chain names for that
// holder's custody) and opens as a keyshare of vault; the other fetches are
// then cancelled. Every copy of a commitment is the owner's encryption of
// one plaintext, so a verified copy that fails to open ends the race: the
// commitment itself is bad. Failures are reported to skip.
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
			blob, err := c.fetchOne(rctx, h, hr, vault, cd)
			results <- result{hr: hr, blob: blob, err: err}
		}()
	}
	for range cd.holders {
		r := <-results
		s := Skip{Vault: vault, Holder: r.hr.addr, Peer: r.hr.peer, Digest: cd.hex, Commitment: cd.id, Err: r.err}
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

// fetchOne fetches the copy of commitment cd that holder hr keeps, within
// HolderTimeout, and checks it against the commitment: custody.VerifyCopy
// with the root, size and r the chain records and the copy index the chain
// names for hr's custody (not the one the holder claims), and the commit
// path the holder sends.
func (c *config) fetchOne(ctx context.Context, h host.Host, hr *holderRef, vault string, cd *candidate) ([]byte, error) {
	if hr.peer == "" || len(hr.addrs) == 0 {
		return nil, fmt.Errorf("%w: %s is not an active node with a multiaddr on the chain", ErrNoAddress, hr.addr)
	}
	h.Peerstore().AddAddrs(hr.peer, hr.addrs, peerstore.TempAddrTTL)
	deadline := time.Now().Add(c.HolderTimeout)
	fctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	got, err := p2p.Fetch(fctx, h, hr.peer, vault, cd.id)
	if err != nil {
		if ctx.Err() == nil && !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w (%v): %w", ErrHolderTimeout, c.HolderTimeout, err)
		}
		return nil, err
	}
	var last error = fmt.Errorf("%w: the holder sent %d copies, none of custody %d/%d", ErrBadCopy, len(got), hr.custody.Commitment, hr.custody.Slot)
	for _, f := range got {
		if f.Custody != hr.custody {
			continue
		}
		if err := custody.VerifyCopy(cd.root, cd.size, cd.copies, hr.copyIndex, f.CommitPath, f.Blob); err != nil {
			last = fmt.Errorf("%w: %w", ErrBadCopy, err)
			continue
		}
		return f.Blob, nil
	}
	return nil, last
}
