package node

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/store"
)

// maxBatchEntries caps one Attest or Release transaction. A holder receives a
// few blobs per churn; the cap only matters after a long chain outage, and
// keeps each transaction well under the app's size limit.
const maxBatchEntries = attest.MaxEntries

// onAccepted queues the attestation of a blob the holder service stored. It
// runs after the blob is durable and before the receipt is sent, so an
// acknowledged blob always has its attestation queued.
func (n *Node) onAccepted(e store.Entry) {
	p := pendingFromEntry(e)
	n.pendingMu.Lock()
	err := putJSON(n.st, p.key(attestPrefix), p)
	n.pendingMu.Unlock()
	if err != nil {
		n.log.Error("queueing attestation", "err", err)
		return
	}
	n.m.pending.WithLabelValues("attest").Inc()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// onReplaced queues the release of a blob replaced by a newer one of the same
// owner and vault. If its attestation never reached the chain, there is
// nothing to release: the queued attestation is dropped instead.
func (n *Node) onReplaced(old store.Entry) {
	p := pendingFromEntry(old)
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	if _, err := n.st.GetMeta(p.key(attestPrefix)); err == nil {
		n.st.DeleteMeta(p.key(attestPrefix))
		n.m.pending.WithLabelValues("attest").Dec()
		return
	}
	if err := putJSON(n.st, p.key(releasePrefix), p); err != nil {
		n.log.Error("queueing release", "err", err)
		return
	}
	n.m.pending.WithLabelValues("release").Inc()
}

// runBatcher sends the queued attestations (then releases) in one
// transaction each every batch interval, or sooner after a new blob. What
// fails stays queued, in the store, and is sent again: across chain outages
// and restarts.
func (n *Node) runBatcher(ctx context.Context) error {
	n.refreshPendingGauges()
	t := time.NewTicker(n.cfg.Chain.BatchInterval.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.kick:
			// Let the other pushes of the same burst join this batch.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(n.cfg.Chain.BatchInterval.Duration / 4):
			}
		}
		if err := n.flush(ctx, attestPrefix); err != nil {
			n.m.chainErrors.Inc()
			n.log.Warn("sending attestations; will retry", "err", err)
			continue
		}
		if err := n.flush(ctx, releasePrefix); err != nil {
			n.m.chainErrors.Inc()
			n.log.Warn("sending releases; will retry", "err", err)
		}
	}
}

// flush sends one transaction with up to maxBatchEntries queued entries under
// prefix and removes them from the queue once it is committed.
func (n *Node) flush(ctx context.Context, prefix string) error {
	n.pendingMu.Lock()
	queued, keys, err := scanJSON[pendingEntry](n.st, prefix)
	n.pendingMu.Unlock()
	if err != nil || len(keys) == 0 {
		return err
	}
	if len(keys) > maxBatchEntries {
		keys = keys[:maxBatchEntries]
	}
	var msg attest.Msg
	var entries []attest.Entry
	var releases []attest.EntryKey
	for _, k := range keys {
		e, err := toChainEntry(queued[k], n.cfg.HRP)
		if err != nil {
			// A record we wrote ourselves that no longer decodes: drop it
			// rather than block the queue forever.
			n.log.Error("dropping malformed queued entry", "key", k, "err", err)
			n.st.DeleteMeta(k)
			continue
		}
		entries = append(entries, e)
		releases = append(releases, e.Key())
	}
	if len(entries) == 0 {
		return nil
	}
	kind := "attest"
	if prefix == attestPrefix {
		msg = &attest.Attest{Entries: entries}
	} else {
		kind = "release"
		msg = &attest.Release{Entries: releases}
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	_, err = n.sender.Send(cctx, msg)
	if err != nil && !(kind == "release" && errors.Is(err, attest.ErrNotFound)) {
		return err
	}
	n.pendingMu.Lock()
	for _, k := range keys {
		n.st.DeleteMeta(k)
	}
	n.pendingMu.Unlock()
	n.m.committed.WithLabelValues(kind).Add(float64(len(entries)))
	n.refreshPendingGauges()
	n.log.Info("transaction committed", "kind", kind, "entries", len(entries))
	return nil
}

func (n *Node) refreshPendingGauges() {
	for prefix, kind := range map[string]string{attestPrefix: "attest", releasePrefix: "release"} {
		c := 0
		n.st.ScanMeta(prefix, func(string, []byte) error { c++; return nil })
		n.m.pending.WithLabelValues(kind).Set(float64(c))
	}
}

func toChainEntry(p pendingEntry, hrp string) (attest.Entry, error) {
	owner, err := hex.DecodeString(p.Owner)
	if err != nil {
		return attest.Entry{}, err
	}
	addr, err := identity.AddressFromPubKey(owner, hrp)
	if err != nil {
		return attest.Entry{}, err
	}
	d, err := hex.DecodeString(p.Digest)
	if err != nil || len(d) != attest.DigestSize {
		return attest.Entry{}, errors.New("bad digest")
	}
	e := attest.Entry{Owner: addr, Vault: p.Vault, Size: uint64(p.Size)}
	copy(e.Digest[:], d)
	return e, nil
}

// sweepRetired drops the blobs of vaults retired on chain once they have been
// retired for the configured grace period, and queues their release.
func (n *Node) sweepRetired(v *chainView) {
	now := time.Now()
	for pub, vt := range v.vaults {
		if !vt.Retired {
			continue
		}
		key := retiredPrefix + pub
		var first time.Time
		found, err := getJSON(n.st, key, &first)
		if err != nil {
			continue
		}
		if !found {
			putJSON(n.st, key, now.UTC())
			continue
		}
		if now.Sub(first) < n.cfg.Store.RetiredGrace.Duration {
			continue
		}
		entries, err := n.st.Entries(nil)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Vault != pub {
				continue
			}
			if err := n.st.Delete(e.Owner, e.Vault); err != nil && !errors.Is(err, store.ErrNotFound) {
				n.log.Error("dropping blob of retired vault", "vault", pub, "err", err)
				continue
			}
			n.onReplaced(e) // queue its release (or drop its pending attestation)
			n.log.Info("dropped blob of retired vault", "vault", pub, "owner", strings.ToLower(hex.EncodeToString(e.Owner)))
		}
	}
}
