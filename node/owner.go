package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
			n.backupFile(ctx, c.Path)
		case <-t.C:
			n.reconcileAll(ctx)
		}
	}
}

// backupFile recognises, seals (once per content) and pushes one share file.
// A file that is not a keyshare is reported and left alone.
func (n *Node) backupFile(ctx context.Context, path string) {
	log := n.log.With("file", filepath.Base(path))
	data, err := readCapped(path, keyshare.MaxFileSize)
	if err != nil {
		n.m.files.WithLabelValues("unreadable").Inc()
		log.Warn("cannot read file; left alone", "err", err)
		return
	}
	info, err := keyshare.Parse(data)
	if err != nil {
		n.m.files.WithLabelValues("not_keyshare").Inc()
		log.Warn("not a keyshare; left alone", "err", err)
		return
	}
	plain := sha256.Sum256(data)
	vault := info.VaultPubKey
	log = log.With("vault", vault)

	n.ownMu.Lock()
	var rec shareRecord
	found, err := getJSON(n.st, ownPrefix+vault, &rec)
	if err != nil {
		n.ownMu.Unlock()
		log.Error("reading share record", "err", err)
		return
	}
	if found && rec.PlainSHA256 == hex.EncodeToString(plain[:]) {
		n.ownMu.Unlock()
		n.m.files.WithLabelValues("unchanged").Inc()
		log.Debug("share already sealed; checking holders")
		n.ensureHolders(ctx, vault)
		return
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
		return
	}
	digest := sha256.Sum256(blob)
	rec = shareRecord{
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
	// The blob first: a record never points at a blob that is not there.
	if err := n.st.PutMeta(ownBlobPrefix+vault, blob); err != nil {
		n.ownMu.Unlock()
		log.Error("storing sealed blob", "err", err)
		return
	}
	if err := putJSON(n.st, ownPrefix+vault, rec); err != nil {
		n.ownMu.Unlock()
		log.Error("storing share record", "err", err)
		return
	}
	n.ownMu.Unlock()
	n.m.files.WithLabelValues("sealed").Inc()
	log.Info("share sealed", "kind", info.Kind, "algorithm", info.Algorithm, "size", len(blob),
		"digest", rec.Digest, "seal_ms", time.Since(start).Milliseconds())
	n.ensureHolders(ctx, vault)
}

// reconcileAll runs ensureHolders for every share this node owns.
func (n *Node) reconcileAll(ctx context.Context) {
	recs, _, err := scanJSON[shareRecord](n.st, ownPrefix)
	if err != nil {
		n.log.Error("listing share records", "err", err)
		return
	}
	for _, r := range recs {
		if ctx.Err() != nil {
			return
		}
		n.ensureHolders(ctx, r.Vault)
	}
}

// ensureHolders pushes the sealed blob of vault to new holders until it has
// Replication live ones (holders that are still active nodes). A holder that
// fails is replaced by another draw; when no candidate is left, it tries
// again at the next reconcile.
func (n *Node) ensureHolders(ctx context.Context, vault string) {
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
	exclude := map[string]bool{n.id.PubKeyHex(): true}
	live := 0
	for pub := range rec.Holders {
		exclude[pub] = true
		if _, ok := view.nodes[pub]; ok {
			live++
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
	for need > 0 && ctx.Err() == nil {
		cands := n.selectHolders(view, vault, exclude, need)
		if len(cands) == 0 {
			n.m.underReplicated.Inc()
			log.Warn("not enough holders available; will retry", "live", live, "replication", n.cfg.Backup.Replication)
			return
		}
		for _, pub := range cands {
			exclude[pub] = true
			ai, ok := view.addrInfo(pub)
			if !ok {
				continue
			}
			n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
			rcpt, err := n.svc.Push(ctx, ai.ID, vault, blob)
			if err != nil {
				n.m.pushes.WithLabelValues(reasonOf(err)).Inc()
				log.Warn("push failed; drawing another holder", "holder", view.nodes[pub].Address, "err", err)
				continue
			}
			raw, _ := rcpt.MarshalBinary()
			rec.Holders[pub] = receiptRecord{
				PeerID:    ai.ID.String(),
				Time:      rcpt.Time.UTC(),
				Signature: hex.EncodeToString(rcpt.Signature),
				Raw:       raw,
			}
			if err := putJSON(n.st, ownPrefix+vault, rec); err != nil {
				log.Error("storing receipt", "err", err)
				return
			}
			n.m.pushes.WithLabelValues("ok").Inc()
			log.Info("share pushed", "holder", view.nodes[pub].Address, "digest", rec.Digest)
			need--
			live++
			if need == 0 {
				break
			}
		}
	}
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
	var re *p2p.RefusedError
	if errors.As(err, &re) {
		return "refused_" + re.Code.String()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "error"
}

// readCapped reads at most max bytes of path and fails if it is longer.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}
