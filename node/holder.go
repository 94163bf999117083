package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// maxFlushTxs bounds the transactions one flush of a queue sends. A batch the
// chain refuses for good is split in halves until the entry at fault is
// alone; one such entry in a full batch of 1024 costs 1 + 2·log2(1024) = 21
// transactions, and what the budget does not reach stays queued for the next
// batch interval. Without a bound, a batch of entries all refused one by one
// would cost a transaction (and a block) each.
const maxFlushTxs = 24

// errNotAttested is why a release of something this holder does not attest
// on chain is dropped before it is sent.
var errNotAttested = errors.New("not attested by this holder on chain: the chain would refuse its release as not found")

// errFlushBudget ends a flush that used its maxFlushTxs transactions; the
// rest of the queue waits for the next batch interval.
var errFlushBudget = errors.New("transaction budget of this batch used up")

// onAccepted queues the attestation of a blob the holder service
// acknowledges. It runs after the blob is durable and before the receipt is
// sent, also for a duplicate push, and is idempotent (the queue key is the
// entry). If it fails the push is refused, so an acknowledged blob always has
// its attestation queued.
func (n *Node) onAccepted(e store.Entry) error {
	p := n.pendingOf(e)
	n.pendingMu.Lock()
	_, err := n.enqueue(attestPrefix, p)
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
// of something never attested is dropped before it is sent (see
// filterReleases).
func (n *Node) onReplaced(old store.Entry) {
	n.queueRelease(n.pendingOf(old))
}

// queueRelease queues the release of p and drops its queued attestation. It
// reports whether the release is new to the queue.
func (n *Node) queueRelease(p pendingEntry) bool {
	added, _ := n.queueReleases([]pendingEntry{p})
	return added == 1
}

// queueReleases queues the releases of ps and drops their queued
// attestations, a batch of store writes at a time (one sync each). It
// returns how many releases were new to the queue and how many were queued
// already.
func (n *Node) queueReleases(ps []pendingEntry) (added, already int) {
	for len(ps) > 0 {
		chunk := ps[:min(len(ps), maxBatchEntries)]
		ps = ps[len(chunk):]
		a, q, err := n.queueReleaseChunk(chunk)
		added, already = added+a, already+q
		if err != nil {
			// The holder-side reconcile finds the attestations without a
			// blob and queues the releases again.
			n.log.Error("queueing releases", "count", len(chunk), "err", err)
			return added, already
		}
	}
	return added, already
}

func (n *Node) queueReleaseChunk(ps []pendingEntry) (added, already int, err error) {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	q := n.queues()
	var (
		writes     []store.MetaWrite
		unattested []string
		released   []string
		seen       = make(map[string]bool, len(ps))
	)
	for _, p := range ps {
		rk := p.key(releasePrefix)
		if q.has(releasePrefix, rk) || seen[rk] {
			already++
			continue
		}
		seen[rk] = true
		if ak := p.key(attestPrefix); q.has(attestPrefix, ak) {
			writes = append(writes, store.MetaWrite{Key: ak, Delete: true})
			unattested = append(unattested, ak)
		}
		b, err := json.Marshal(p)
		if err != nil {
			return 0, already, fmt.Errorf("encoding %s: %w", rk, err)
		}
		writes = append(writes, store.MetaWrite{Key: rk, Value: b})
		released = append(released, rk)
	}
	if err := n.st.WriteMeta(writes); err != nil {
		n.qidx.loaded = false // part may be written: count again
		return 0, already, err
	}
	n.setQueued(attestPrefix, unattested, false)
	n.setQueued(releasePrefix, released, true)
	return len(released), already, nil
}

// The two queues live in the store's meta records under attestPrefix and
// releasePrefix, so they survive restarts. queueIndex mirrors their keys in
// memory, under pendingMu: read from the store once, on first use, then
// changed with every write to the queues (enqueue, queueReleaseChunk,
// removeQueued), so that "is it queued?" and the pending gauges cost no
// store read and no scan. After a failed store write it is read again.

// queueIndex is the set of queued keys of each queue.
type queueIndex struct {
	loaded bool
	keys   map[string]map[string]struct{} // by prefix
}

func (q *queueIndex) has(prefix, key string) bool {
	_, ok := q.keys[prefix][key]
	return ok
}

// queues returns the index, reading it from the store if needed. pendingMu
// is held.
func (n *Node) queues() *queueIndex {
	q := &n.qidx
	if q.loaded {
		return q
	}
	q.keys = map[string]map[string]struct{}{}
	for _, prefix := range []string{attestPrefix, releasePrefix} {
		keys := map[string]struct{}{}
		if err := n.st.ScanMeta(prefix, func(k string, _ []byte) error { keys[k] = struct{}{}; return nil }); err != nil {
			n.log.Warn("reading a queue", "queue", prefix, "err", err)
		}
		q.keys[prefix] = keys
		n.m.pending.WithLabelValues(kindOf(prefix)).Set(float64(len(keys)))
	}
	q.loaded = true
	return q
}

// setQueued records keys as queued (or not) under prefix after the store
// write, and moves the gauge. pendingMu is held.
func (n *Node) setQueued(prefix string, keys []string, queued bool) {
	set := n.queues().keys[prefix]
	for _, k := range keys {
		if queued {
			set[k] = struct{}{}
		} else {
			delete(set, k)
		}
	}
	n.m.pending.WithLabelValues(kindOf(prefix)).Set(float64(len(set)))
}

// enqueue writes p to the queue under prefix unless it is there already,
// and reports whether it is new. pendingMu is held.
func (n *Node) enqueue(prefix string, p pendingEntry) (added bool, err error) {
	key := p.key(prefix)
	if n.queues().has(prefix, key) {
		return false, nil
	}
	if err := putJSON(n.st, key, p); err != nil {
		return false, err
	}
	n.setQueued(prefix, []string{key}, true)
	return true, nil
}

// removeQueued removes keys from the queue under prefix in one batch of
// store writes. Every key is deleted from the store, also one the index
// does not know, so a record the index missed cannot stay queued for ever.
// pendingMu is held.
func (n *Node) removeQueued(prefix string, keys []string) {
	if len(keys) == 0 {
		return
	}
	writes := make([]store.MetaWrite, len(keys))
	for i, k := range keys {
		writes[i] = store.MetaWrite{Key: k, Delete: true}
	}
	if err := n.st.WriteMeta(writes); err != nil {
		// Still queued: sent (and refused, or found committed) again.
		n.log.Warn("removing queued entries", "queue", prefix, "count", len(keys), "err", err)
		n.qidx.loaded = false
		return
	}
	n.setQueued(prefix, keys, false)
}

// runBatcher sends the queued attestations (then releases) in one
// transaction each every batch interval, or sooner after a new blob. What
// fails stays queued, in the store, and is sent again: across chain outages
// and restarts. What can never be accepted is dropped (see flush).
func (n *Node) runBatcher(ctx context.Context) error {
	n.pendingMu.Lock()
	n.queues()
	n.pendingMu.Unlock()
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
		if !n.member.IsActive(n.id.PubKey()) {
			// The chain refuses every transaction of a node that is not
			// active; the queue waits until it is again.
			continue
		}
		n.flushAll(ctx)
	}
}

// flushAll flushes the attestation queue, then the release queue (so that a
// release follows the attestation it undoes), logging what will be retried.
func (n *Node) flushAll(ctx context.Context) {
	for _, prefix := range []string{attestPrefix, releasePrefix} {
		err := n.flush(ctx, prefix)
		switch {
		case errors.Is(err, errFlushBudget):
			n.log.Info("sending queued entries: the rest waits for the next batch", "queue", prefix, "err", err)
		case err != nil:
			n.m.chainErrors.Inc()
			n.log.Warn("sending queued entries; will retry", "queue", prefix, "err", err)
		}
	}
}

// queuedEntry is one entry read from a queue.
type queuedEntry struct {
	key string
	e   attest.Entry
}

// flush sends up to maxBatchEntries queued entries under prefix in one
// transaction and removes them from the queue once committed. No entry can
// block the queue:
//
//   - an entry the transaction builder would refuse (attest.Entry.Validate:
//     a vault key or owner the chain does not allow, the holder's own blob, a
//     size out of range) is dropped before anything is sent;
//   - a release of something this holder does not attest on chain is
//     dropped before it is sent (one query for the whole batch);
//   - when the chain refuses the batch for good anyway, the chain's state is
//     read once more and the entries it shows can never pass (an unknown or
//     retired vault, an owner neither active nor a member) are dropped; what
//     is still refused is split in halves, and halves again, until each entry
//     refused for good is alone and dropped, while the others commit.
//
// Drops are counted (ksb_holder_dropped_entries_total) and logged once per
// flush with their number. A flush sends at most maxFlushTxs transactions.
// An error means the rest stays queued for the next round.
func (n *Node) flush(ctx context.Context, prefix string) error {
	items, err := n.queued(prefix)
	if err != nil || len(items) == 0 {
		return err
	}
	f := &flushRound{n: n, prefix: prefix, budget: maxFlushTxs, sendTx: func(ctx context.Context, es []attest.Entry) error {
		return n.send(ctx, prefix, es)
	}}
	defer f.report()
	items = f.dropInvalid(items)
	if prefix == releasePrefix && len(items) > 0 {
		if items, err = f.filterReleases(ctx, items); err != nil {
			return err
		}
	}
	if len(items) == 0 {
		return nil
	}
	err = f.send(ctx, items)
	if !permanent(err) {
		return err
	}
	rest, ferr := f.filterByChain(ctx, items, err)
	if ferr != nil {
		return ferr
	}
	if len(rest) < len(items) {
		return f.bisect(ctx, rest)
	}
	return f.split(ctx, items, err)
}

// Why a flush drops an entry: the keys of the counts in its log line.
const (
	// dropInvalid: the transaction builder refuses it (attest.Entry.Validate).
	dropInvalid = "invalid"
	// dropNotAttested: a release of something this holder does not attest.
	dropNotAttested = "not_attested"
	// dropUnattestable: the chain's state refuses it: vault unknown or
	// retired, owner neither an active node nor a member.
	dropUnattestable = "unattestable"
	// dropRefused: the chain refused it, alone in a transaction.
	dropRefused = "refused"
)

// flushRound is one flush of one queue: its transaction budget and what it
// dropped.
type flushRound struct {
	n      *Node
	prefix string
	budget int
	sendTx func(context.Context, []attest.Entry) error // one transaction: Node.send

	dropped map[string]int // by reason
	drops   []string       // their queue keys
	first   string         // the first drop, for the log line
	reason  error
}

// send sends items in one transaction, within the budget, and dequeues them
// once committed.
func (f *flushRound) send(ctx context.Context, items []queuedEntry) error {
	if f.budget == 0 {
		return errFlushBudget
	}
	f.budget--
	entries := make([]attest.Entry, len(items))
	for i, it := range items {
		entries[i] = it.e
	}
	if err := f.sendTx(ctx, entries); err != nil {
		return err
	}
	f.n.dequeue(f.prefix, items)
	return nil
}

// bisect sends items; if the chain refuses them for good, it splits them.
func (f *flushRound) bisect(ctx context.Context, items []queuedEntry) error {
	if len(items) == 0 {
		return nil
	}
	err := f.send(ctx, items)
	if !permanent(err) {
		return err
	}
	return f.split(ctx, items, err)
}

// split handles items the chain refused for good with err: one entry is
// dropped; more are sent again in two halves.
func (f *flushRound) split(ctx context.Context, items []queuedEntry, err error) error {
	if len(items) == 1 {
		f.drop(items[0], dropRefused, err)
		return nil
	}
	mid := len(items) / 2
	if err := f.bisect(ctx, items[:mid]); err != nil {
		return err
	}
	return f.bisect(ctx, items[mid:])
}

// dropInvalid drops the entries the transaction builder would refuse.
func (f *flushRound) dropInvalid(items []queuedEntry) []queuedEntry {
	hrp, self := f.n.cfg.HRP, f.n.addr
	keep := items[:0]
	for _, it := range items {
		var err error
		if f.prefix == releasePrefix {
			err = it.e.Key().Validate(hrp)
		} else {
			err = it.e.Validate(hrp, self)
		}
		if err != nil {
			f.drop(it, dropInvalid, err)
			continue
		}
		keep = append(keep, it)
	}
	return keep
}

// filterReleases drops the releases of what this holder does not attest on
// chain: the chain refuses them for good (a blob replaced before its
// attestation was sent, a release queued twice). A release of a blob whose
// owner and vault the chain shows attested with another digest is done
// already — an attestation replaces the holder's earlier one of the same
// owner and vault — and leaves the queue quietly. An attestation still in
// flight when this runs is released later by reconcileHeld.
func (f *flushRound) filterReleases(ctx context.Context, items []queuedEntry) ([]queuedEntry, error) {
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	onChain, err := f.n.chain.AttestationsByHolder(cctx, f.n.addr)
	if err != nil {
		return nil, fmt.Errorf("reading this holder's attestations: %w", err)
	}
	attested := make(map[string]bool, len(onChain))
	replaced := make(map[string]bool, len(onChain))
	for _, a := range onChain {
		attested[a.Owner+"/"+a.Vault+"/"+a.Digest] = true
		replaced[a.Owner+"/"+a.Vault] = true
	}
	keep := items[:0:0]
	var done []queuedEntry
	for _, it := range items {
		switch {
		case attested[it.e.Owner+"/"+it.e.Vault+"/"+hex.EncodeToString(it.e.Digest[:])]:
			keep = append(keep, it)
		case replaced[it.e.Owner+"/"+it.e.Vault]:
			done = append(done, it)
		default:
			f.drop(it, dropNotAttested, errNotAttested)
		}
	}
	if len(done) > 0 {
		keys := make([]string, len(done))
		for i, it := range done {
			keys[i] = it.key
		}
		f.n.pendingMu.Lock()
		f.n.removeQueued(f.prefix, keys)
		f.n.pendingMu.Unlock()
		f.n.log.Debug("releases of replaced blobs: the chain replaced their attestations", "count", len(done))
	}
	return keep, nil
}

// filterByChain runs after the chain refused items for good (with refusal):
// it reads the chain's state again and drops what that state shows can
// never pass.
func (f *flushRound) filterByChain(ctx context.Context, items []queuedEntry, refusal error) ([]queuedEntry, error) {
	if f.prefix == releasePrefix {
		return f.filterReleases(ctx, items)
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	nodes, err := f.n.chain.Nodes(cctx)
	if err != nil {
		return nil, fmt.Errorf("reading the chain after a refusal (%v): %w", refusal, err)
	}
	vaults, err := f.n.chain.Vaults(cctx)
	if err != nil {
		return nil, fmt.Errorf("reading the chain after a refusal (%v): %w", refusal, err)
	}
	view := newChainView(nodes, vaults)
	keep := items[:0:0]
	for _, it := range items {
		if !view.attestable(it.e.Owner, it.e.Vault) {
			f.drop(it, dropUnattestable, refusal)
			continue
		}
		keep = append(keep, it)
	}
	return keep, nil
}

// drop notes an entry refused for good; report removes it from its queue.
func (f *flushRound) drop(it queuedEntry, reason string, err error) {
	f.drops = append(f.drops, it.key)
	if f.dropped == nil {
		f.dropped = map[string]int{}
		f.first, f.reason = it.key, err
	}
	f.dropped[reason]++
	f.n.log.Debug("dropped a queued entry refused for good", "kind", kindOf(f.prefix), "key", it.key, "reason", reason, "err", err)
}

// report removes the round's drops from the queue, in one batch, counts
// them and logs them in one line.
func (f *flushRound) report() {
	if len(f.drops) > 0 {
		f.n.pendingMu.Lock()
		f.n.removeQueued(f.prefix, f.drops)
		f.n.pendingMu.Unlock()
	}
	total := 0
	attrs := []any{"kind", kindOf(f.prefix)}
	for _, reason := range []string{dropInvalid, dropNotAttested, dropUnattestable, dropRefused} {
		if c := f.dropped[reason]; c > 0 {
			total += c
			attrs = append(attrs, reason, c)
		}
	}
	if total == 0 {
		return
	}
	f.n.m.dropped.WithLabelValues(kindOf(f.prefix)).Add(float64(total))
	attrs = append(attrs, "dropped", total, "first", f.first, "err", f.reason)
	f.n.log.Warn("dropped queued entries that can never be accepted", attrs...)
}

// queued reads up to maxBatchEntries entries queued under prefix. A record
// that no longer decodes is dropped: it was written by this program, and it
// must not block the queue forever.
func (n *Node) queued(prefix string) ([]queuedEntry, error) {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	var items []queuedEntry
	var bad []string
	err := n.st.ScanMeta(prefix, func(k string, b []byte) error {
		if len(items) == maxBatchEntries {
			return errScanFull
		}
		e, derr := decodePending(b)
		if derr != nil {
			if len(bad) == 0 {
				n.log.Error("dropping malformed queued entries", "first", k, "err", derr)
			}
			bad = append(bad, k)
			return nil
		}
		items = append(items, queuedEntry{key: k, e: e})
		return nil
	})
	if errors.Is(err, errScanFull) {
		err = nil
	}
	if len(bad) > 0 {
		n.removeQueued(prefix, bad)
		n.m.dropped.WithLabelValues(kindOf(prefix)).Add(float64(len(bad)))
	}
	return items, err
}

// errScanFull stops a queue scan once a batch is full.
var errScanFull = errors.New("batch full")

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

// dequeue removes committed entries from their queue.
func (n *Node) dequeue(prefix string, items []queuedEntry) {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	n.pendingMu.Lock()
	n.removeQueued(prefix, keys)
	n.pendingMu.Unlock()
	kind := kindOf(prefix)
	n.m.committed.WithLabelValues(kind).Add(float64(len(items)))
	n.log.Info("transaction committed", "kind", kind, "entries", len(items))
}

// permanent reports whether a transaction was refused for a reason a retry
// cannot fix — by the chain, or by SignTx's own copy of the chain's content
// checks before sending — as opposed to an outage, a stale sequence, a full
// mempool allowance, or this node not being active yet.
func permanent(err error) bool {
	if err == nil {
		return false
	}
	var te *attest.TxError
	if errors.As(err, &te) {
		switch te.Code {
		case attest.CodeNotFound, attest.CodeInvalid, attest.CodeMalformed, attest.CodeTooLarge, attest.CodeExists:
			return true
		}
		return false
	}
	var qe *attest.QueryError
	if errors.As(err, &qe) {
		return false // reading the chain failed, not the entries
	}
	return errors.Is(err, attest.ErrInvalid) || errors.Is(err, attest.ErrTooLarge) || errors.Is(err, attest.ErrMalformed)
}

func kindOf(prefix string) string {
	if prefix == releasePrefix {
		return "release"
	}
	return "attest"
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
	var lost []pendingEntry
	for _, a := range onChain {
		if !held[a.Owner+"/"+a.Vault+"/"+a.Digest] {
			lost = append(lost, pendingEntry{Owner: a.Owner, Vault: a.Vault, Digest: a.Digest, Size: int64(a.Size)})
		}
	}
	released, already := n.queueReleases(lost)
	if released > 0 {
		// One line per reconcile, and only for what is new: a backlog
		// waiting in the queue is not reported again every minute.
		n.log.Warn("attested blobs are not in the store; releases queued", "count", released, "already_queued", already)
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
	_, err = n.enqueue(attestPrefix, n.pendingOf(e))
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
