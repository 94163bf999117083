package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/store"
)

// maxBatchEntries caps one Attest or Release transaction. A holder receives a
// few blobs per churn; the cap only matters after a long chain outage, and
// keeps each transaction under the app's entry limit.
const maxBatchEntries = attest.MaxEntries

// heldReconcileEvery is how many chain polls pass between two comparisons of
// the store with this holder's attestations on chain (one minute at the
// default 5 s poll): the safety net for anything a crash or a refused
// transaction left out of the queues.
const heldReconcileEvery = 12

// onAccepted queues the attestation of a blob the holder service
// acknowledges. It runs after the blob is durable and before the receipt is
// sent, also for a duplicate push, and is idempotent (the queue key is the
// entry). If it fails the push is refused, so an acknowledged blob always has
// its attestation queued.
func (n *Node) onAccepted(e store.Entry) error {
	p := n.pendingOf(e)
	n.pendingMu.Lock()
	err := putJSON(n.st, p.key(attestPrefix), p)
	n.pendingMu.Unlock()
	if err != nil {
		return err
	}
	select {
	case n.kick <- struct{}{}:
	default:
	}
	return nil
}

// onReplaced queues the release of a blob replaced by a newer one of the same
// owner and vault, and drops its queued attestation if it has one. The
// release is queued even then: that attestation may be in flight. A release
// of something never attested is refused by the chain as not found, and
// dropped (see flush).
func (n *Node) onReplaced(old store.Entry) {
	n.queueRelease(n.pendingOf(old))
}

func (n *Node) queueRelease(p pendingEntry) {
	n.pendingMu.Lock()
	n.st.DeleteMeta(p.key(attestPrefix))
	err := putJSON(n.st, p.key(releasePrefix), p)
	n.pendingMu.Unlock()
	if err != nil {
		// The holder-side reconcile finds the attestation without a blob
		// and queues the release again.
		n.log.Error("queueing release", "err", err)
	}
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
		// The pending gauges are counted here, once per batch, not on the
		// push path: counting scans both queues.
		n.refreshPendingGauges()
		if !n.member.IsActive(n.id.PubKey()) {
			// The chain refuses every transaction of a node that is not
			// active; the queue waits until it is again.
			continue
		}
		for _, prefix := range []string{attestPrefix, releasePrefix} {
			if err := n.flush(ctx, prefix); err != nil {
				n.m.chainErrors.Inc()
				n.log.Warn("sending queued entries; will retry", "queue", prefix, "err", err)
			}
		}
		n.refreshPendingGauges()
	}
}

// flush sends up to maxBatchEntries queued entries under prefix in one
// transaction and removes them from the queue once committed. When the chain
// refuses the batch for good (an entry it can never accept: a vault it does
// not know, a release of something not attested), the entries are sent one
// by one and those refused for good are dropped with a log line, so one bad
// entry never blocks the queue.
func (n *Node) flush(ctx context.Context, prefix string) error {
	keys, entries, err := n.queued(prefix)
	if err != nil || len(keys) == 0 {
		return err
	}
	err = n.send(ctx, prefix, entries)
	if err == nil {
		n.dequeue(prefix, keys, len(entries))
		return nil
	}
	if !permanent(err) || len(entries) == 1 {
		if permanent(err) {
			n.drop(prefix, keys[0], entries[0], err)
			return nil
		}
		return err
	}
	for i := range entries {
		if err := n.send(ctx, prefix, entries[i:i+1]); err != nil {
			if !permanent(err) {
				return err
			}
			n.drop(prefix, keys[i], entries[i], err)
			continue
		}
		n.dequeue(prefix, keys[i:i+1], 1)
	}
	return nil
}

// queued reads up to maxBatchEntries entries queued under prefix. A record
// that no longer decodes is dropped: it was written by this program, and it
// must not block the queue forever.
func (n *Node) queued(prefix string) (keys []string, entries []attest.Entry, err error) {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	err = n.st.ScanMeta(prefix, func(k string, b []byte) error {
		if len(keys) == maxBatchEntries {
			return nil
		}
		e, derr := decodePending(b)
		if derr != nil {
			n.log.Error("dropping malformed queued entry", "key", k, "err", derr)
			n.st.DeleteMeta(k)
			return nil
		}
		keys = append(keys, k)
		entries = append(entries, e)
		return nil
	})
	return keys, entries, err
}

func (n *Node) send(ctx context.Context, prefix string, entries []attest.Entry) error {
	var msg attest.Msg = &attest.Attest{Entries: entries}
	if prefix == releasePrefix {
		ks := make([]attest.EntryKey, len(entries))
		for i, e := range entries {
			ks[i] = e.Key()
		}
		msg = &attest.Release{Entries: ks}
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	_, err := n.sender.Send(cctx, msg)
	return err
}

func (n *Node) dequeue(prefix string, keys []string, count int) {
	n.pendingMu.Lock()
	for _, k := range keys {
		n.st.DeleteMeta(k)
	}
	n.pendingMu.Unlock()
	kind := kindOf(prefix)
	n.m.committed.WithLabelValues(kind).Add(float64(count))
	n.log.Info("transaction committed", "kind", kind, "entries", count)
}

func (n *Node) drop(prefix, key string, e attest.Entry, err error) {
	n.pendingMu.Lock()
	n.st.DeleteMeta(key)
	n.pendingMu.Unlock()
	n.m.dropped.WithLabelValues(kindOf(prefix)).Inc()
	n.log.Warn("chain refuses a queued entry for good; dropped", "kind", kindOf(prefix),
		"owner", e.Owner, "vault", e.Vault, "digest", hex.EncodeToString(e.Digest[:]), "err", err)
}

// permanent reports whether the chain refused a transaction for a reason a
// retry cannot fix (as opposed to an outage, a stale sequence, or this node
// not being active yet).
func permanent(err error) bool {
	var te *attest.TxError
	if !errors.As(err, &te) {
		return false
	}
	switch te.Code {
	case attest.CodeNotFound, attest.CodeInvalid, attest.CodeMalformed, attest.CodeTooLarge, attest.CodeExists:
		return true
	}
	return false
}

func kindOf(prefix string) string {
	if prefix == releasePrefix {
		return "release"
	}
	return "attest"
}

func (n *Node) refreshPendingGauges() {
	for _, prefix := range []string{attestPrefix, releasePrefix} {
		c := 0
		n.st.ScanMeta(prefix, func(string, []byte) error { c++; return nil })
		n.m.pending.WithLabelValues(kindOf(prefix)).Set(float64(c))
	}
}

func decodePending(b []byte) (attest.Entry, error) {
	var p pendingEntry
	if err := json.Unmarshal(b, &p); err != nil {
		return attest.Entry{}, err
	}
	return p.chainEntry()
}

// reconcileHeld compares the blobs this holder keeps with its attestations on
// chain and queues what is missing: an attestation for a blob held but not
// attested (a crash between storing and queueing, an entry dropped while the
// chain did not know its vault yet), a release for an attestation of a blob no
// longer held (a lost or wiped store). Queueing is idempotent, so entries
// already queued or in flight are harmless.
func (n *Node) reconcileHeld(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	onChain, err := n.chain.AttestationsByHolder(cctx, n.addr)
	if err != nil {
		return err
	}
	attested := map[string]bool{}
	for _, a := range onChain {
		attested[a.Owner+"/"+a.Vault+"/"+a.Digest] = true
	}
	entries, err := n.st.Entries(nil)
	if err != nil {
		return err
	}
	view := n.member.current()
	held := map[string]bool{}
	for _, e := range entries {
		p := n.pendingOf(e)
		k := p.Owner + "/" + p.Vault + "/" + p.Digest
		held[k] = true
		if attested[k] || !view.attestable(p.Owner, e.Vault) {
			// The chain refuses attestations of vaults it does not know or
			// retired, and of owners that are neither active nor members:
			// queueing them again would only be refused again.
			continue
		}
		if err := n.queueIfStillHeld(e); err != nil {
			return err
		}
	}
	for _, a := range onChain {
		if held[a.Owner+"/"+a.Vault+"/"+a.Digest] {
			continue
		}
		n.log.Warn("attested blob is not in the store; releasing it", "owner", a.Owner, "vault", a.Vault, "digest", a.Digest)
		n.queueRelease(pendingEntry{Owner: a.Owner, Vault: a.Vault, Digest: a.Digest, Size: int64(a.Size)})
	}
	return nil
}

// queueIfStillHeld queues the attestation of e unless, meanwhile, a push
// replaced it: the store is read again under pendingMu, which onReplaced
// takes after the store changed, so a replaced digest is never re-queued.
func (n *Node) queueIfStillHeld(e store.Entry) error {
	n.pendingMu.Lock()
	cur, _, err := n.st.Get(e.Owner, e.Vault)
	if err != nil || cur.Digest != e.Digest {
		n.pendingMu.Unlock()
		return nil // gone or replaced
	}
	p := n.pendingOf(e)
	err = putJSON(n.st, p.key(attestPrefix), p)
	n.pendingMu.Unlock()
	return err
}

// sweepRetired drops the blobs of vaults retired on chain once they have been
// retired for the configured grace period. The release is queued before the
// blob is deleted, so a crash in between leaves a queued release, never an
// attestation of a blob that is gone.
func (n *Node) sweepRetired(v *chainView) {
	now := time.Now()
	var entries []store.Entry
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
			if err := putJSON(n.st, key, now.UTC()); err != nil {
				n.log.Error("recording retired vault", "vault", pub, "err", err)
			}
			continue
		}
		if now.Sub(first) < n.cfg.Store.RetiredGrace.Duration {
			continue
		}
		if entries == nil {
			if entries, err = n.st.Entries(nil); err != nil {
				n.log.Error("listing held blobs", "err", err)
				return
			}
		}
		for _, e := range entries {
			if e.Vault != pub {
				continue
			}
			n.queueRelease(n.pendingOf(e))
			if err := n.st.Delete(e.Owner, e.Vault); err != nil && !errors.Is(err, store.ErrNotFound) {
				n.log.Error("dropping blob of retired vault", "vault", pub, "err", err)
				continue
			}
			n.log.Info("dropped blob of retired vault", "vault", pub, "owner", hex.EncodeToString(e.Owner))
		}
	}
}
