package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/p2p"
)

// Restore drills (docs/design.md, "Restore drills"). Once per drill
// interval (the chain's drill_interval, in blocks) an owner that is online
// and active picks one of its live commitments (the one drilled least
// recently) and one of that commitment's counted custodies at random,
// fetches the copy from its holder over p2p.FetchProtocol, checks it
// against the committed root, opens it with its mnemonic, compares the
// plaintext with its live share file, and posts Drill{custody, result,
// millis}. Any result but ok fails the custody on chain (and the chain
// repairs it).
const (
	// drillFetchAttempts is how many times a drill asks the holder before
	// it reports the holder unreachable: a holder that restarts, or is
	// briefly busy with other fetches, is not failed for one missed
	// answer, while one that never answers is within a minute.
	drillFetchAttempts = 3

	// drillRetryPolls is the wait between two fetch attempts of one drill,
	// in chain poll intervals (10 s at the default 5 s poll): the cadence
	// at which the node retries everything else, so a holder restarting
	// or reconnecting gets the same slack as with pushes, and the drill
	// ends well within any drill interval worth having.
	drillRetryPolls = 2

	// drillFetchTimeout bounds one fetch attempt: p2p.Fetch's own deadline
	// per stream (p2p.FetchTimeout) plus its busy retries' backoff.
	drillFetchTimeout = p2p.FetchTimeout + 10*time.Second

	// drillIdleBlocks is how long an owner with nothing to drill yet (no
	// commitment, or none with an attested custody) waits before it looks
	// again, at most (an eighth of the drill interval when that is
	// shorter): half a minute of 1 s blocks, so an owner with nothing to
	// drill costs the chain a query per half minute, not per poll.
	drillIdleBlocks = 30

	// maxDrillMillis caps the time a Drill reports (the field is 32 bits).
	maxDrillMillis = 1<<32 - 1

	// drillHeightKey is the meta key of the block of this node's last
	// Drill the chain accepted: with the chain's records it keeps a
	// restarted owner from drilling before the chain accepts it.
	drillHeightKey = "drill/last_height"
)

// drillState is the owner's drill bookkeeping.
type drillState struct {
	// last is the block of the last Drill the chain accepted (or refused
	// as too early); the next is due drill_interval blocks later.
	last atomic.Int64
	// notBefore is the first block at which the drill loop looks again
	// after finding nothing to drill.
	notBefore atomic.Int64
	// results counts drills by outcome: attest.DrillResult names, and
	// "refused" for a Drill the chain refused, "unconfirmed" for one whose
	// outcome the chain did not confirm in time.
	results *prometheus.CounterVec
}

func (n *Node) initDrills() {
	n.drill.results = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ksb", Name: "owner_drills_total",
		Help: "Restore drills of this node's copies, by result (ok, unreachable, bad_copy, no_decrypt, mismatch; refused or unconfirmed: the Drill transaction was refused or not confirmed).",
	}, []string{"result"})
	n.reg.MustRegister(n.drill.results)
	if b, err := n.st.GetMeta(drillHeightKey); err == nil {
		if h, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			n.drill.last.Store(h)
		}
	}
}

// runDrills runs one drill whenever one is due, checking every chain poll
// interval.
func (n *Node) runDrills(ctx context.Context) error {
	if !n.waitView(ctx) {
		return nil
	}
	t := time.NewTicker(n.cfg.Chain.PollInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := n.drillOnce(ctx); err != nil && ctx.Err() == nil {
			n.m.chainErrors.Inc()
			n.log.Warn("restore drill", "err", err)
		}
	}
}

// drillTarget is one custody to drill, with what the drill checks it
// against.
type drillTarget struct {
	id     custody.CustodyID
	c      attest.Commitment
	cu     attest.Custody
	rec    shareRecord
	plain  []byte // the live share file's bytes
	holder string
}

// drillOnce drills one custody if a drill is due and there is a custody to
// drill. It returns an error only for what keeps it from drilling (the
// chain unreachable); a drill's outcome is posted and logged.
func (n *Node) drillOnce(ctx context.Context) error {
	p := n.params.Load()
	if p == nil || p.DrillInterval <= 0 {
		return nil
	}
	view := n.member.current()
	if _, active := view.nodes[n.id.PubKeyHex()]; !active {
		return nil // the chain refuses every transaction of a node that is not active
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	height, err := n.chain.Height(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("reading the chain height: %w", err)
	}
	if last := n.drill.last.Load(); last != 0 && height < last+p.DrillInterval || height < n.drill.notBefore.Load() {
		return nil
	}
	cctx, cancel = context.WithTimeout(ctx, chainCallTimeout)
	mine, err := n.chain.CommitmentsByOwner(cctx, n.addr)
	cancel()
	if err != nil {
		return fmt.Errorf("reading this node's commitments: %w", err)
	}
	// The chain's records know of drills a lost store does not.
	for _, c := range mine {
		if c.LastDrillHeight > n.drill.last.Load() {
			n.drill.last.Store(c.LastDrillHeight)
		}
	}
	if last := n.drill.last.Load(); last != 0 && height < last+p.DrillInterval {
		return nil
	}
	tg, ok := n.pickDrill(view, mine, height, p.DrillInterval)
	if !ok {
		// Look again when the youngest live commitment is old enough, or
		// drillIdleBlocks (an eighth of the interval if that is shorter)
		// from now, whichever is sooner.
		next := height + min(drillIdleBlocks, max(1, p.DrillInterval/8))
		for _, c := range mine {
			if due := c.CommitHeight + p.DrillInterval; c.Live && due > height && due < next {
				next = due
			}
		}
		n.drill.notBefore.Store(next)
		return nil
	}
	return n.drillCustody(ctx, tg)
}

// pickDrill chooses what to drill: among this node's live commitments at
// least one drill interval old whose share file still holds the committed
// version, the one drilled least recently; among its counted custodies
// (attested, not failed, holder active and not this node), one at random.
// A commitment younger than one interval is left alone: its copies were
// just checked against the root by their holders, and its custodies may
// not be attested yet.
func (n *Node) pickDrill(view *chainView, mine []attest.Commitment, height, interval int64) (drillTarget, bool) {
	n.ownMu.Lock()
	recs, keys, err := scanJSON[shareRecord](n.st, ownPrefix)
	n.ownMu.Unlock()
	if err != nil {
		n.log.Error("listing share records", "err", err)
		return drillTarget{}, false
	}
	byCommitment := make(map[uint64]shareRecord, len(keys))
	for _, k := range keys {
		if r := recs[k]; r.Version.Commitment != 0 {
			byCommitment[r.Version.Commitment] = r
		}
	}
	var best *drillTarget
	for _, c := range rand.Perm(len(mine)) {
		c := mine[c]
		r, ok := byCommitment[c.ID]
		if !ok || !c.Live || c.CommitHeight+interval > height {
			continue
		}
		if best != nil && c.LastDrillHeight >= best.c.LastDrillHeight {
			continue
		}
		var counted []attest.Custody
		for _, cu := range c.Custodies {
			if _, active := view.addrInfoOf(cu.Holder); active && cu.Attested && cu.Holder != n.addr &&
				cu.Status != custody.StatusFailed.String() {
				counted = append(counted, cu)
			}
		}
		if len(counted) == 0 {
			continue
		}
		// The live share file must still be the committed version: a file
		// rewritten since is a new version on its way, not the holder's
		// fault.
		plain, _, err := keyshare.ReadFile(r.File)
		if err != nil {
			n.log.Debug("share file unreadable; not drilling its commitment", "vault", r.Vault, "err", err)
			continue
		}
		if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != r.PlainSHA256 {
			n.log.Debug("share file changed since its commitment; not drilling it", "vault", r.Vault, "commitment", c.ID)
			continue
		}
		cu := counted[rand.IntN(len(counted))]
		best = &drillTarget{
			id: custody.CustodyID{Commitment: c.ID, Slot: cu.Slot}, c: c, cu: cu, rec: r, plain: plain, holder: cu.Holder,
		}
	}
	if best == nil {
		return drillTarget{}, false
	}
	return *best, true
}

// drillCustody restores tg's copy and posts the result.
func (n *Node) drillCustody(ctx context.Context, tg drillTarget) error {
	log := n.log.With("vault", tg.rec.Vault, "custody", idString(tg.id), "holder", tg.holder)
	start := time.Now()
	result, why := n.restore(ctx, tg, log)
	if result == 0 {
		return nil // nothing to report (the custody stopped counting, ctx ended)
	}
	ms := time.Since(start).Milliseconds()
	millis := uint32(min(ms, maxDrillMillis))
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	res, err := n.sender.Drill(cctx, tg.id, result, millis)
	cancel()
	if err != nil {
		// Refused (rate-limited: another process of this identity, or a
		// store that lost the height) or outcome unknown (the chain did not
		// confirm in time: it may have committed it): either way wait a
		// whole interval from now, so the next Drill is never one the chain
		// refuses for being early.
		cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
		if h, herr := n.chain.Height(cctx); herr == nil && h > n.drill.last.Load() {
			n.drill.last.Store(h)
		}
		cancel()
		label := "unconfirmed"
		var te *attest.TxError
		if errors.As(err, &te) {
			label = "refused"
		}
		n.drill.results.WithLabelValues(label).Inc()
		return fmt.Errorf("posting the drill of custody %s (%s): %w", idString(tg.id), result, err)
	}
	n.drill.last.Store(res.Height)
	if err := n.st.PutMeta(drillHeightKey, []byte(strconv.FormatInt(res.Height, 10))); err != nil {
		log.Warn("storing the drill height", "err", err)
	}
	n.drill.results.WithLabelValues(result.String()).Inc()
	if result == attest.DrillOK {
		log.Info("restore drill ok", "height", res.Height, "ms", millis)
	} else {
		log.Warn("restore drill FAILED; the chain fails this custody and repairs it", "result", result.String(),
			"reason", why, "height", res.Height, "ms", millis)
	}
	return nil
}

// restore fetches tg's copy from its holder and checks it: against the
// committed root (bad_copy), by opening it with the mnemonic (no_decrypt),
// and against the live share file (mismatch). A holder that does not serve
// it within drillFetchAttempts is unreachable. It returns 0 when there is
// nothing to report: ctx ended, or the custody stopped counting while the
// drill waited (the holder released it, the chain failed it).
func (n *Node) restore(ctx context.Context, tg drillTarget, log *slog.Logger) (attest.DrillResult, error) {
	root, err := parseHash(tg.c.Root)
	if err != nil {
		return 0, err
	}
	var lastErr error
	for attempt := 0; attempt < drillFetchAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(drillRetryPolls * n.cfg.Chain.PollInterval.Duration)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			case <-t.C:
			}
			if !n.stillCounted(ctx, tg) {
				return 0, nil
			}
		}
		blob, cp, err := n.fetchCopy(ctx, tg)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			lastErr = err
			log.Debug("drill fetch failed", "attempt", attempt+1, "err", err)
			continue
		}
		// The chain's copy index, never the holder's header: a holder
		// serving another copy of the commitment has not kept its own.
		if err := custody.VerifyCopy(root, tg.c.Size, int(tg.c.Copies), int(tg.cu.CopyIndex), cp, blob); err != nil {
			return attest.DrillBadCopy, err
		}
		plain, err := envelope.Open(blob, n.id.Mnemonic(), nil)
		if err != nil {
			return attest.DrillNoDecrypt, err
		}
		if !bytes.Equal(plain, tg.plain) {
			return attest.DrillMismatch, errors.New("the restored share differs from the live share file")
		}
		return attest.DrillOK, nil
	}
	if !n.stillCounted(ctx, tg) {
		return 0, nil
	}
	if !n.connectedToOthers(tg.holder) {
		// Connected to no other node either: the fault may be this node's
		// network, not the holder; failing the holder would punish it.
		log.Debug("drill: holder unreachable, but so is every other node; not reporting", "err", lastErr)
		return 0, nil
	}
	return attest.DrillUnreachable, lastErr
}

// connectedToOthers reports whether this node's host is connected to some
// active node other than holder.
func (n *Node) connectedToOthers(holder string) bool {
	view := n.member.current()
	skip, _ := view.addrInfoOf(holder)
	for _, p := range n.h.Network().Peers() {
		if p == skip.ID {
			continue
		}
		if pub, err := identity.PeerIDKey(p); err == nil && n.member.IsActive(pub) {
			return true
		}
	}
	return false
}

// fetchCopy asks tg's holder for this node's copies of tg's commitment and
// returns the one of tg's custody with its commit path.
func (n *Node) fetchCopy(ctx context.Context, tg drillTarget) ([]byte, [][]byte, error) {
	ai, ok := n.member.current().addrInfoOf(tg.holder)
	if !ok {
		return nil, nil, fmt.Errorf("holder %s is not an active node", tg.holder)
	}
	n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	fctx, cancel := context.WithTimeout(ctx, drillFetchTimeout)
	defer cancel()
	got, err := p2p.Fetch(fctx, n.h, ai.ID, tg.rec.Vault, tg.id.Commitment)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range got {
		if f.Custody == tg.id {
			return f.Blob, f.CommitPath, nil
		}
	}
	return nil, nil, fmt.Errorf("holder served %d copies, none of custody %s", len(got), idString(tg.id))
}

// stillCounted re-reads tg's custody: a drill reports nothing about a
// custody that stopped counting meanwhile (released, failed, superseded).
// When the chain cannot be read it assumes the custody still counts.
func (n *Node) stillCounted(ctx context.Context, tg drillTarget) bool {
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	hc, err := n.chain.Custody(cctx, tg.id)
	switch {
	case errors.Is(err, attest.ErrNotFound):
		return false
	case err != nil:
		return true
	}
	return hc.Live && hc.Attested && hc.Holder == tg.holder && hc.Status != custody.StatusFailed.String()
}
