package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/p2p"
)

// runOwner backs up every share file the watcher reports, and every poll
// interval makes sure each share still has its replication of live holders
// (a holder that churned out, or a push that failed, is replaced).
func (n *Node) runOwner(ctx context.Context) error {
	dir := config.Path(n.home, n.cfg.Backup.KeysharesDir)
	files := make(chan candidate)
	w := newWatcher(dir, n.log.With("component", "watcher"))
	werr := make(chan error, 1)
	go func() { werr <- w.run(ctx, files) }()

	if !n.waitView(ctx) {
		return nil
	}
	t := time.NewTicker(n.cfg.Chain.PollInterval.Duration)
	defer t.Stop()
	// retry holds files whose backup failed for a reason that may pass (an
	// unreadable file, a store error); they are tried again every tick.
	retry := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-werr:
			if err != nil {
				return fmt.Errorf("watching %s: %w", dir, err)
			}
			return nil
		case c := <-files:
			delete(retry, c.Path)
			if !n.backupFile(ctx, c.Path) {
				retry[c.Path] = true
			}
		case <-t.C:
			for p := range retry {
				if n.backupFile(ctx, p) {
					delete(retry, p)
				}
			}
			n.reconcileAll(ctx)
		}
	}
}

// backupFile recognises, seals (once per content) and pushes one share file.
// A file that is not a keyshare is reported and left alone. It returns false
// when the backup failed for a reason that may pass (read or store errors),
// so the caller tries again.
func (n *Node) backupFile(ctx context.Context, path string) bool {
	log := n.log.With("file", filepath.Base(path))
	data, info, err := keyshare.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true // removed since it was seen
	case errors.Is(err, keyshare.ErrNotKeyshare):
		n.m.files.WithLabelValues("not_keyshare").Inc()
		log.Warn("not a keyshare; left alone", "err", err)
		return true
	case err != nil:
		n.m.files.WithLabelValues("unreadable").Inc()
		log.Warn("cannot read file; will retry", "err", err)
		return false
	}
	plain := sha256.Sum256(data)
	vault := info.VaultPubKey
	log = log.With("vault", vault)

	n.ownMu.Lock()
	var old shareRecord
	found, err := getJSON(n.st, ownPrefix+vault, &old)
	if err != nil {
		n.ownMu.Unlock()
		log.Error("reading share record", "err", err)
		return false
	}
	if found && old.PlainSHA256 == hex.EncodeToString(plain[:]) {
		n.ownMu.Unlock()
		n.m.files.WithLabelValues("unchanged").Inc()
		log.Debug("share already sealed; checking holders")
		n.ensureHolders(ctx, vault, nil)
		return true
	}
	if found && old.File != path {
		if fi, err := os.Stat(old.File); err == nil && fi.ModTime().After(mtime(path)) {
			// Two files of one vault (a stale copy beside the live share):
			// the newer file is the share; never replace it with an older one.
			n.ownMu.Unlock()
			n.m.files.WithLabelValues("older_duplicate").Inc()
			log.Warn("an older file of a vault already backed up from a newer file; left alone", "newer", old.File)
			return true
		}
	}
	start := time.Now()
	blob, err := envelope.Seal(data, n.id.Mnemonic(), &envelope.SealOptions{
		WorkFactor:         n.cfg.Backup.WorkFactor,
		AllowLowWorkFactor: n.cfg.Backup.AllowLowWorkFactor,
	})
	if err != nil {
		n.ownMu.Unlock()
		n.m.files.WithLabelValues("seal_failed").Inc()
		log.Error("sealing share failed; nothing was pushed", "err", err)
		return !errors.Is(err, envelope.ErrSanityCheck) // a chance match may not repeat
	}
	digest := sha256.Sum256(blob)
	rec := shareRecord{
		Vault:       vault,
		File:        path,
		Kind:        string(info.Kind),
		Algorithm:   string(info.Algorithm),
		PlainSHA256: hex.EncodeToString(plain[:]),
		Digest:      hex.EncodeToString(digest[:]),
		Size:        int64(len(blob)),
		SealedAt:    time.Now().UTC(),
		Holders:     map[string]receiptRecord{},
	}
	// A new version of a share goes to the holders of the old one first:
	// they replace the old blob and release its attestation, so no obsolete
	// share keeps counting as a backup.
	for pub := range old.Holders {
		rec.Previous = append(rec.Previous, pub)
	}
	sort.Strings(rec.Previous)
	// The blob first: a record never points at a blob that is not there.
	if err := n.st.PutMeta(ownBlobPrefix+vault, blob); err != nil {
		n.ownMu.Unlock()
		log.Error("storing sealed blob", "err", err)
		return false
	}
	if err := putJSON(n.st, ownPrefix+vault, rec); err != nil {
		n.ownMu.Unlock()
		log.Error("storing share record", "err", err)
		return false
	}
	n.ownMu.Unlock()
	n.m.files.WithLabelValues("sealed").Inc()
	log.Info("share sealed", "kind", info.Kind, "algorithm", info.Algorithm, "size", len(blob),
		"digest", rec.Digest, "seal_ms", time.Since(start).Milliseconds())
	n.ensureHolders(ctx, vault, nil)
	return true
}

func mtime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// reconcileAll runs ensureHolders for every share this node owns, with the
// chain's attestations of this node's blobs (when the chain answers).
func (n *Node) reconcileAll(ctx context.Context) {
	recs, keys, err := scanJSON[shareRecord](n.st, ownPrefix)
	if err != nil {
		n.log.Error("listing share records", "err", err)
		return
	}
	if len(keys) == 0 {
		return
	}
	var attested map[string]bool
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	as, err := n.chain.AttestationsByOwner(cctx, n.addr)
	cancel()
	if err == nil {
		attested = map[string]bool{}
		for _, a := range as {
			attested[a.Holder+"/"+a.Vault+"/"+a.Digest] = true
		}
	}
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		n.ensureHolders(ctx, recs[k].Vault, attested)
	}
}

// ensureHolders pushes the sealed blob of vault until it has Replication live
// holders. A holder is live while it is an active node and, once
// attestGrace has passed since its receipt, the chain shows its attestation
// of this digest (attested, keyed holder/vault/digest; nil when the chain
// could not be read, then receipts are trusted). A holder that is active but
// not live is pushed the blob again first: if it still has it, the duplicate
// push re-queues its attestation; if it lost it, it stores it again. Then the
// holders of the share's previous version are tried, then new holders are
// drawn; a holder that fails is replaced by another draw, at most
// maxPushAttempts pushes per call; what is still missing is tried at the next
// reconcile.
func (n *Node) ensureHolders(ctx context.Context, vault string, attested map[string]bool) {
	n.ownMu.Lock()
	defer n.ownMu.Unlock()
	log := n.log.With("vault", vault)
	var rec shareRecord
	if found, err := getJSON(n.st, ownPrefix+vault, &rec); err != nil || !found {
		if err != nil {
			log.Error("reading share record", "err", err)
		}
		return
	}
	view := n.member.current()
	if _, active := view.nodes[n.id.PubKeyHex()]; !active {
		log.Debug("this node is not active; no holder will accept its shares")
		return
	}
	if v, ok := view.vaults[vault]; !ok || v.Retired {
		// The chain refuses attestations of a vault it does not know (yet:
		// the churn that creates it may come after keygen), and a retired
		// vault's share needs no more holders. The share is sealed; it is
		// pushed once the vault is on chain.
		log.Debug("vault not live on chain; not pushing", "known", ok)
		return
	}
	exclude := map[string]bool{n.id.PubKeyHex(): true}
	var stale []string
	live := 0
	for pub, rc := range rec.Holders {
		exclude[pub] = true
		node, active := view.nodes[pub]
		if !active {
			continue
		}
		switch {
		case attested == nil || time.Since(rc.PushedAt) < attestGrace || attested[node.Address+"/"+vault+"/"+rec.Digest]:
			live++
		case time.Since(rc.Time) < holderGiveUp:
			// Acknowledged but not attested: push again, which re-queues
			// its attestation (or restores a lost blob).
			stale = append(stale, pub)
		default:
			// Acknowledged long ago and still not attested: it does not
			// count, and another holder is drawn in its place.
			log.Warn("holder never attested this share; replacing it", "holder", node.Address)
			delete(rec.Holders, pub)
		}
	}
	need := n.cfg.Backup.Replication - live
	if need <= 0 {
		return
	}
	blob, err := n.st.GetMeta(ownBlobPrefix + vault)
	if err != nil {
		log.Error("reading sealed blob", "err", err)
		return
	}
	sort.Strings(stale)
	var previous []string
	for _, pub := range rec.Previous {
		if _, active := view.nodes[pub]; active && !exclude[pub] {
			previous = append(previous, pub)
		}
	}
	attempts, deferred := 0, 0
	for need > 0 && attempts < maxPushAttempts && deferred < maxDeferredHolders && ctx.Err() == nil {
		var cands []string
		switch {
		case len(stale) > 0:
			cands, stale = stale[:1], stale[1:]
		case len(previous) > 0:
			cands, previous = previous[:1], previous[1:]
		default:
			cands = n.selectHolders(view, vault, exclude, need)
		}
		if len(cands) == 0 {
			n.m.underReplicated.Inc()
			log.Warn("not enough holders available; will retry", "live", live, "replication", n.cfg.Backup.Replication)
			return
		}
		for _, pub := range cands {
			exclude[pub] = true
			switch n.pushTo(ctx, view, &rec, pub, blob) {
			case pushed:
				attempts++
				need--
				live++
			case pushFailed:
				attempts++
			case pushDeferred:
				// Busy, or its view of the chain is behind ours: not the
				// holder's fault, so it costs no attempt; it is tried
				// again at the next reconcile.
				deferred++
			}
			if need == 0 || attempts == maxPushAttempts || deferred == maxDeferredHolders {
				break
			}
		}
	}
}

// maxDeferredHolders bounds the holders of one share per reconcile that are
// passed over as busy or behind the chain (pushDeferred): each may take
// Service.Push's few seconds of backoff, and the owner's lock is held
// meanwhile.
const maxDeferredHolders = 3

// pushOutcome is how a push to one holder ended.
type pushOutcome int

const (
	// pushed: the holder acknowledged the blob and its receipt is recorded.
	pushed pushOutcome = iota
	// pushFailed: the holder failed or refused; another is drawn.
	pushFailed
	// pushDeferred: the holder stayed busy through Service.Push's retries
	// with backoff (p2p.ErrBusy: over its allowance, or its resource
	// manager's limits), or does not know the vault yet (its chain view
	// lags ours by up to a poll). Neither is the holder's fault: it is not
	// counted as a failed attempt, and the share is pushed again at the next
	// reconcile.
	pushDeferred
)

// pushTo pushes blob to the holder with pubkey pub and records its receipt.
// Service.Push keeps this node within the holder's per-peer push allowance
// (p2p.MaxPushStreamsPerPeer) and retries a busy holder with backoff.
func (n *Node) pushTo(ctx context.Context, view *chainView, rec *shareRecord, pub string, blob []byte) pushOutcome {
	log := n.log.With("vault", rec.Vault, "holder", view.nodes[pub].Address)
	ai, ok := view.addrInfo(pub)
	if !ok {
		return pushFailed
	}
	n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	rcpt, err := n.svc.Push(ctx, ai.ID, rec.Vault, blob)
	if err != nil {
		n.m.pushes.WithLabelValues(reasonOf(err)).Inc()
		if errors.Is(err, p2p.ErrBusy) || errors.Is(err, p2p.ErrUnknownVault) {
			log.Info("holder busy or behind the chain; will push again at the next reconcile", "err", err)
			return pushDeferred
		}
		log.Warn("push failed; drawing another holder", "err", err)
		return pushFailed
	}
	raw, err := rcpt.MarshalBinary()
	if err != nil {
		log.Error("encoding receipt", "err", err)
		return pushFailed
	}
	rec.Holders[pub] = receiptRecord{
		PeerID:    ai.ID.String(),
		Time:      rcpt.Time.UTC(),
		Signature: hex.EncodeToString(rcpt.Signature),
		Raw:       raw,
		PushedAt:  time.Now().UTC(),
	}
	if err := putJSON(n.st, ownPrefix+rec.Vault, *rec); err != nil {
		log.Error("storing receipt", "err", err)
		return pushFailed
	}
	n.m.pushes.WithLabelValues("ok").Inc()
	log.Info("share pushed", "digest", rec.Digest)
	return pushed
}

// selectHolders draws up to k candidate holders (pubkey hex) per the
// configured strategy, excluding those in exclude.
func (n *Node) selectHolders(view *chainView, vault string, exclude map[string]bool, k int) []string {
	pool := p2p.Pool{
		Self:   n.h.ID(),
		Recent: n.gossip.HeardWithin(recentHeartbeats * n.cfg.P2P.HeartbeatInterval.Duration),
	}
	for pid := range view.byPeer {
		pool.Active = append(pool.Active, pid)
	}
	if v, ok := view.vaults[vault]; ok {
		for _, addr := range v.Members {
			if pub, ok := view.byAddr[addr]; ok {
				if ai, ok := view.addrInfo(pub); ok {
					pool.VaultMembers = append(pool.VaultMembers, ai.ID)
				}
			}
		}
	}
	var ex []peer.ID
	for pid, pub := range view.byPeer {
		if exclude[pub] {
			ex = append(ex, pid)
		}
	}
	picked, err := p2p.SelectHolders(p2p.Strategy(n.cfg.Backup.Strategy), k, pool, ex...)
	if err != nil {
		if !errors.Is(err, p2p.ErrNoCandidates) {
			n.log.Error("drawing holders", "err", err)
		}
		return nil
	}
	out := make([]string, 0, len(picked))
	for _, pid := range picked {
		out = append(out, view.byPeer[pid])
	}
	return out
}

// reasonOf names a push failure for metrics.
func reasonOf(err error) string {
	if errors.Is(err, p2p.ErrBusy) {
		return "busy" // a BUSY refusal, or a resource manager's limit
	}
	var re *p2p.RefusedError
	if errors.As(err, &re) {
		return "refused_" + re.Code.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "error"
}
