package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// maxBatchEntries caps one Attest transaction. A holder receives a few
// copies per churn; the cap only matters after a long chain outage, and
// keeps each transaction under the app's entry limit.
const maxBatchEntries = attest.MaxEntries

// maxReleaseBatch caps one Release transaction: the chain counts 8 state
// writes per released custody (its failure and its replacement) against
// attest.MaxBlockWrites (4,096) per block and never proposes a transaction
// over it, so a Release of MaxEntries custodies would wait in the mempool
// for ever. 256 releases are 2,048 writes: half a block, leaving room for
// other nodes' transactions.
const maxReleaseBatch = 256

// batchSize is the most entries one transaction of the queue under prefix
// carries.
func batchSize(prefix string) int {
	if prefix == releasePrefix {
		return maxReleaseBatch
	}
	return maxBatchEntries
}

// heldReconcileEvery is how many chain polls pass between two comparisons of
// the store with this holder's custodies on chain (one minute at the
// default 5 s poll, and at the first poll after a start): the safety net
// for anything a crash or a refused transaction left out of the queues, the
// release of what a wiped store lost, and retention.
const heldReconcileEvery = 12

// maxFlushTxs bounds the transactions one flush of a queue sends. A batch the
// chain refuses for good is split in halves until the entry at fault is
// alone; one such entry in a full batch of 1024 costs 1 + 2·log2(1024) = 21
// transactions, and what the budget does not reach stays queued for the next
// batch interval. Without a bound, a batch of entries all refused one by one
// would cost a transaction (and a block) each.
const maxFlushTxs = 24

// errFlushBudget ends a flush that used its maxFlushTxs transactions; the
// rest of the queue waits for the next batch interval.
var errFlushBudget = errors.New("transaction budget of this batch used up")

// queuedCustody is a queue record: the custody to attest or release.
type queuedCustody struct {
	Commitment uint64 `json:"commitment"`
	Slot       uint64 `json:"slot"`
}

func (q queuedCustody) id() custody.CustodyID {
	return custody.CustodyID{Commitment: q.Commitment, Slot: q.Slot}
}

// acceptRecords returns the queue record of the attestation of a copy the
// holder service is about to store; the service writes it in the copy's
// own transaction (p2p.AcceptRecords), so an acknowledged copy always has
// its attestation queued, for the one sync the copy costs anyway — also
// for a duplicate push, so that an attestation dropped since is queued
// again when the owner retries (the record is keyed by the custody, and
// writing it twice is harmless). Until the write has ended the key is in
// flight: a flush does not send it (its copy may not be durable yet), and
// a removal meanwhile is remembered, so that the queue index never counts
// a record the store does not have.
func (n *Node) acceptRecords(e store.Entry) p2p.Acceptance {
	key := attestPrefix + custodyKey(e.Custody)
	b, err := json.Marshal(queuedCustody{Commitment: e.Custody.Commitment, Slot: e.Custody.Slot})
	if err != nil {
		// Two integers: cannot fail. Without a record the copy would be
		// stored unqueued, so refuse it instead with a bad record.
		return p2p.Acceptance{Records: []store.MetaWrite{{Key: ""}}}
	}
	n.pendingMu.Lock()
	if n.inflight == nil {
		n.inflight = map[string]*inflightRecord{}
	}
	f := n.inflight[key]
	if f == nil {
		f = &inflightRecord{}
		n.inflight[key] = f
	}
	f.writes++
	n.pendingMu.Unlock()
	return p2p.Acceptance{
		Records: []store.MetaWrite{{Key: key, Value: b}},
		Done: func(committed bool) {
			n.pendingMu.Lock()
			if f.writes--; f.writes == 0 {
				delete(n.inflight, key)
			}
			if committed && !f.removed {
				n.setQueued(attestPrefix, []string{key}, true)
			}
			n.pendingMu.Unlock()
		},
	}
}

// inflightRecord is a queue record being written with its copy: how many
// writes of it have not ended, and whether the record was removed from the
// queue meanwhile. pendingMu guards it.
type inflightRecord struct {
	writes  int
	removed bool
}

// forgetInflight marks key removed if a write of it is in flight.
// pendingMu is held.
func (n *Node) forgetInflight(key string) {
	if f := n.inflight[key]; f != nil {
		f.removed = true
	}
}

// onAccepted runs after a copy and its queue record (acceptRecords) are
// durable, before the receipt is sent: the copy is no longer silent
// (debug.go), and the batcher is woken.
func (n *Node) onAccepted(e store.Entry) error {
	n.forgetSilent(e.Custody)
	n.wake()
	return nil
}

// wake wakes the batcher early.
func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// queueReleases queues the releases of ids and drops their queued
// attestations, a batch of store writes at a time (one sync each). It
// returns how many releases were new to the queue and how many were queued
// already.
func (n *Node) queueReleases(ids []custody.CustodyID) (added, already int) {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxBatchEntries)]
		ids = ids[len(chunk):]
		a, q, err := n.queueReleaseChunk(chunk)
		added, already = added+a, already+q
		if err != nil {
			// The holder-side reconcile finds the lost copies again and
			// queues the releases again.
			n.log.Error("queueing releases", "count", len(chunk), "err", err)
			return added, already
		}
	}
	if added > 0 {
		n.wake()
	}
	return added, already
}

func (n *Node) queueReleaseChunk(ids []custody.CustodyID) (added, already int, err error) {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	q := n.queues()
	var (
		writes     []store.MetaWrite
		unattested []string
		released   []string
		seen       = make(map[string]bool, len(ids))
	)
	for _, id := range ids {
		rk := releasePrefix + custodyKey(id)
		if q.has(releasePrefix, rk) || seen[rk] {
			already++
			continue
		}
		seen[rk] = true
		if ak := attestPrefix + custodyKey(id); q.has(attestPrefix, ak) || n.inflight[ak] != nil {
			writes = append(writes, store.MetaWrite{Key: ak, Delete: true})
			unattested = append(unattested, ak)
			n.forgetInflight(ak)
		}
		b, err := json.Marshal(queuedCustody{Commitment: id.Commitment, Slot: id.Slot})
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

// enqueue writes custody id to the queue under prefix unless it is there
// already, and reports whether it is new. pendingMu is held.
func (n *Node) enqueue(prefix string, id custody.CustodyID) (added bool, err error) {
	key := prefix + custodyKey(id)
	if n.queues().has(prefix, key) {
		return false, nil
	}
	if err := putJSON(n.st, key, queuedCustody{Commitment: id.Commitment, Slot: id.Slot}); err != nil {
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
		n.forgetInflight(k)
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
			if !n.waitCopiesLanded(ctx, n.cfg.Chain.BatchInterval.Duration/attestHoldDivisor) {
				return nil
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

// attestHoldDivisor: after a new copy, the batcher waits for the copies
// still coming in at most batch_interval / attestHoldDivisor (0.5 s at the
// default 2 s) before it sends the Attest anyway. That was the fixed wait
// before the batch ended on the pushes themselves; as a bound it keeps a
// peer that keeps push streams open (within their deadlines) from holding
// up this holder's attestations longer than that.
const attestHoldDivisor = 4

// waitCopiesLanded waits until no copy is being received (every push in
// flight is stored and queued, or refused), at most hold; false if ctx
// ended. During a churn many owners push to a holder within moments of
// each other; their copies then share one Attest, while a lone push is
// attested as soon as it landed.
func (n *Node) waitCopiesLanded(ctx context.Context, hold time.Duration) bool {
	if n.svc == nil || n.svc.CopiesInFlight() == 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	for n.svc.CopiesInFlight() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-n.svc.CopiesIdle():
		}
	}
	return true
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
	id  custody.CustodyID
}

// flush sends up to batchSize(prefix) queued custodies under prefix in one
// transaction and removes them from the queue once committed. No entry can
// block the queue:
//
//   - an entry the transaction builder would refuse (a slot or commitment
//     id out of range) is dropped before anything is sent, and so is an
//     attestation of a copy this holder no longer has (it never attests
//     what it does not hold);
//   - a release of a custody the chain no longer shows as this holder's
//     live one (gone, or failed already) is dropped before it is sent (one
//     query for the whole batch);
//   - when the chain refuses the batch for good anyway, the chain's custodies
//     of this holder are read once more and the entries they do not list
//     (not assigned to it, or deleted) are dropped; what is still refused is
//     split in halves, and halves again, until each entry refused for good
//     is alone and dropped, while the others commit.
//
// Drops are counted (ksb_holder_dropped_entries_total) and logged once per
// flush with their number. A flush sends at most maxFlushTxs transactions.
// An error means the rest stays queued for the next round.
func (n *Node) flush(ctx context.Context, prefix string) error {
	items, err := n.queued(prefix)
	if err != nil || len(items) == 0 {
		return err
	}
	f := &flushRound{n: n, prefix: prefix, budget: maxFlushTxs, sendTx: func(ctx context.Context, ids []custody.CustodyID) error {
		return n.send(ctx, prefix, ids)
	}}
	defer f.report()
	items = f.dropInvalid(items)
	if prefix == releasePrefix && len(items) > 0 && n.otherInstance() != nil {
		return nil // held back while another instance runs (instance.go)
	}
	if prefix == releasePrefix && len(items) > 0 {
		if items, err = f.filterByChain(ctx, items, nil); err != nil {
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
	// dropInvalid: the transaction builder refuses it (an id out of range).
	dropInvalid = "invalid"
	// dropNotHeld: an attestation of a copy no longer in the store.
	dropNotHeld = "not_held"
	// dropNotAssigned: the chain does not list the custody as this
	// holder's (never assigned, or deleted after retention), or, for a
	// release, it has failed already.
	dropNotAssigned = "not_assigned"
	// dropRefused: the chain refused it, alone in a transaction.
	dropRefused = "refused"
)

// flushRound is one flush of one queue: its transaction budget and what it
// dropped.
type flushRound struct {
	n      *Node
	prefix string
	budget int
	sendTx func(context.Context, []custody.CustodyID) error // one transaction: Node.send

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
	ids := make([]custody.CustodyID, len(items))
	for i, it := range items {
		ids[i] = it.id
	}
	if err := f.sendTx(ctx, ids); err != nil {
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

// errNotHeld is why an attestation of a copy no longer stored is dropped.
var errNotHeld = errors.New("the copy is no longer in the store: a holder never attests what it does not hold")

// dropInvalid drops the entries the transaction builder would refuse, and
// attestations of copies this holder no longer has.
func (f *flushRound) dropInvalid(items []queuedEntry) []queuedEntry {
	keep := items[:0]
	for _, it := range items {
		if it.id.Commitment == 0 || it.id.Commitment > attest.MaxCommitmentID || it.id.Slot >= attest.MaxSlots {
			f.drop(it, dropInvalid, fmt.Errorf("custody %s out of range: %w", idString(it.id), attest.ErrInvalid))
			continue
		}
		if f.prefix == attestPrefix {
			if _, err := f.n.st.Stat(it.id); errors.Is(err, store.ErrNotFound) {
				f.drop(it, dropNotHeld, errNotHeld)
				continue
			}
		}
		keep = append(keep, it)
	}
	return keep
}

// filterByChain reads this holder's custodies from the chain and drops what
// can never pass: an attestation of a custody not listed as this holder's;
// a release of one not listed, or failed already (refusal is the chain's
// refusal that made it look, nil before any transaction).
func (f *flushRound) filterByChain(ctx context.Context, items []queuedEntry, refusal error) ([]queuedEntry, error) {
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	held, err := f.n.chain.CustodiesByHolder(cctx, f.n.addr)
	if err != nil {
		if refusal != nil {
			return nil, fmt.Errorf("reading this holder's custodies after a refusal (%v): %w", refusal, err)
		}
		return nil, fmt.Errorf("reading this holder's custodies: %w", err)
	}
	mine := make(map[custody.CustodyID]attest.HeldCustody, len(held))
	for _, hc := range held {
		mine[custody.CustodyID{Commitment: hc.Commitment, Slot: hc.Slot}] = hc
	}
	reason := refusal
	if reason == nil {
		reason = errors.New("not this holder's live custody on chain")
	}
	keep := items[:0:0]
	for _, it := range items {
		hc, ok := mine[it.id]
		if !ok || (f.prefix == releasePrefix && hc.Status == custody.StatusFailed.String()) {
			f.drop(it, dropNotAssigned, reason)
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
	for _, reason := range []string{dropInvalid, dropNotHeld, dropNotAssigned, dropRefused} {
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

// queued reads up to batchSize(prefix) entries queued under prefix. A record
// that no longer decodes is dropped: it was written by this program, and it
// must not block the queue forever.
func (n *Node) queued(prefix string) ([]queuedEntry, error) {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	var items []queuedEntry
	var bad []string
	limit := batchSize(prefix)
	err := n.st.ScanMeta(prefix, func(k string, b []byte) error {
		if len(items) == limit {
			return errScanFull
		}
		if n.inflight[k] != nil {
			return nil // its copy's write has not ended: next flush
		}
		var q queuedCustody
		derr := json.Unmarshal(b, &q)
		if derr == nil && custodyKey(q.id()) != k[len(prefix):] {
			derr = fmt.Errorf("record names custody %s", idString(q.id()))
		}
		if derr != nil {
			if len(bad) == 0 {
				n.log.Error("dropping malformed queued entries", "first", k, "err", derr)
			}
			bad = append(bad, k)
			return nil
		}
		items = append(items, queuedEntry{key: k, id: q.id()})
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

func (n *Node) send(ctx context.Context, prefix string, ids []custody.CustodyID) error {
	var msg attest.Msg = &attest.Attest{Custodies: ids}
	if prefix == releasePrefix {
		msg = &attest.Release{Custodies: ids}
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
	n.log.Info("transaction committed", "kind", kind, "custodies", len(items))
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
		case attest.CodeNotFound, attest.CodeInvalid, attest.CodeMalformed, attest.CodeTooLarge, attest.CodeExists, attest.CodeNotAssigned:
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

// Why the holder deletes a copy: the label of ksb_holder_dropped_copies_total.
const (
	// dropGone: the chain deleted its custody (the commitment was
	// superseded or its vault retired, and retention_blocks passed).
	dropGone = "gone"
	// dropFailed: its custody failed (missed proofs, released, a failed
	// drill, the holder failed as a whole): the chain repairs it elsewhere.
	dropFailed = "failed"
	// dropForeign: the chain assigned the custody to another holder.
	dropForeign = "not_assigned"
)

// reconcileHeld compares the copies this holder keeps with its custodies on
// chain (v.held, read in the same poll) and:
//
//   - queues the attestation of every copy held for a custody that is live,
//     not failed and not attested yet (a crash between storing and queueing,
//     an entry dropped while the chain lagged);
//   - queues the release of every custody it attested and is still counted
//     for whose copy is not in the store (a lost or wiped store: at the first
//     poll after a restart, so the chain repairs at once instead of waiting
//     for missed proofs), unless another live instance of this identity
//     answers at the chain's address for it (instance.go);
//   - deletes the copies whose custody failed or is gone from chain state
//     (retention), asking the chain about each copy it does not list first,
//     since a push may have stored it after the list was read.
//
// Queueing is idempotent, so entries already queued or in flight are
// harmless.
func (n *Node) reconcileHeld(ctx context.Context, v *chainView) error {
	entries, err := n.st.Entries(nil)
	if err != nil {
		return err
	}
	stored := make(map[custody.CustodyID]bool, len(entries))
	var drop []store.Entry
	var reasons []string
	for _, e := range entries {
		stored[e.Custody] = true
		hc, listed := v.held[e.Custody]
		if !listed {
			cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
			got, err := n.chain.Custody(cctx, e.Custody)
			cancel()
			switch {
			case errors.Is(err, attest.ErrNotFound):
				drop, reasons = append(drop, e), append(reasons, dropGone)
				continue
			case err != nil:
				return err
			case got.Holder != n.addr:
				drop, reasons = append(drop, e), append(reasons, dropForeign)
				continue
			}
			hc = *got
		}
		switch {
		case hc.Status == custody.StatusFailed.String():
			drop, reasons = append(drop, e), append(reasons, dropFailed)
		case !hc.Attested && hc.Live:
			if err := n.queueIfStillHeld(e.Custody); err != nil {
				return err
			}
		}
	}
	var lost []custody.CustodyID
	for id, hc := range v.held {
		if !stored[id] && hc.Attested && hc.Live && hc.Status != custody.StatusFailed.String() && !n.isSilent(id) {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 || n.otherInstance() != nil {
		// Before releasing, and to clear a report of another instance: is
		// another process this node? (Nothing missing, nothing to protect:
		// no probe.)
		o, inconclusive := n.probeInstance(ctx, v)
		switch {
		case o != nil && len(lost) > 0:
			// Not this process's to release: the copies are probably in the
			// other instance's store (instance.go).
			n.log.Error("another live instance of this node's identity answers at the chain's address; not releasing the attested copies this store lacks — stop one of the two processes",
				"other", o.Addr, "since", o.Since, "missing", len(lost))
			lost = nil
		case o != nil:
			n.log.Error("another live instance of this node's identity answers at the chain's address; stop one of the two processes", "other", o.Addr, "since", o.Since)
		case inconclusive:
			lost = nil
		}
	}
	slices.SortFunc(lost, func(a, b custody.CustodyID) int { return a.Compare(b) })
	released, already := n.queueReleases(lost)
	if released > 0 {
		// One line per reconcile, and only for what is new: a backlog
		// waiting in the queue is not reported again every minute.
		n.log.Warn("attested copies are not in the store; releases queued", "count", released, "already_queued", already)
	}
	for i, e := range drop {
		n.dropCopy(e.Custody, reasons[i])
	}
	return nil
}

// dropCopy deletes a held copy the chain no longer counts (why: a drop
// reason) and its queued attestation.
func (n *Node) dropCopy(id custody.CustodyID, why string) {
	n.pendingMu.Lock()
	n.removeQueued(attestPrefix, []string{attestPrefix + custodyKey(id)})
	err := n.st.Delete(id)
	n.pendingMu.Unlock()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		n.log.Error("dropping a held copy", "custody", idString(id), "err", err)
		return
	}
	n.m.droppedCopies.WithLabelValues(why).Inc()
	n.log.Info("dropped a held copy", "custody", idString(id), "reason", why)
}

// queueIfStillHeld queues the attestation of custody id unless, meanwhile,
// its copy was dropped: the store is read again under pendingMu, which
// dropCopy holds while it deletes.
func (n *Node) queueIfStillHeld(id custody.CustodyID) error {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	if _, err := n.st.Stat(id); err != nil {
		return nil // gone
	}
	_, err := n.enqueue(attestPrefix, id)
	return err
}
