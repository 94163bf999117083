package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// The source side of repair (issue 11; docs/protocol.md, "Repair"). The
// chain names, for each replacement it assigns, a source: a counted holder
// of another copy of the same commitment. This node, when named, sends its
// copy to the replacement over p2p.RepairProtocol; the replacement checks
// it, stores it and attests (its push handler's AcceptRecords, holder.go). The
// repair bound (issue 11: ≤ 3 block intervals plus one push from the loss
// to the replacement's attestation) leaves no room for a poll interval of
// several blocks, so the repairer watches the chain height and reads its
// repairs at every new block.
const (
	// repairPollDivisor: the repairer asks the chain's height every
	// chain.poll_interval / repairPollDivisor (250 ms on a devnet polling
	// every 500 ms, 2.5 s at the default 5 s, against THORChain's ~6 s
	// blocks), and reads its repairs only when a new block has committed:
	// one cheap status query per tick, one repairs query per block. A node
	// that holds no copy is never a source and asks nothing.
	repairPollDivisor = 2
	// minRepairPoll bounds that tick from below: a block takes longer, and
	// every node of a network asks the same validators.
	minRepairPoll = 100 * time.Millisecond
	// maxConcurrentRepairs bounds the repairs this node sends at once
	// (p2p.Service.Repair keeps p2p.MaxRepairStreamsPerPeer per
	// replacement); a churn that removes a third of the active set names
	// each source in a few repairs.
	maxConcurrentRepairs = 4
	// repairRetryFirst and repairRetryMax are the wait before sending a
	// repair again after a failed attempt, doubling each time up to the
	// maximum. After a successful send the wait is repushAfter: the
	// replacement attests within a batch interval and a block, and the
	// chain's list stops naming the repair.
	repairRetryFirst = 500 * time.Millisecond
	repairRetryMax   = 30 * time.Second
)

// repairer is the state of the repair loop: what is in flight and when each
// repair may be sent again. Only the loop's goroutine and the repairs it
// starts touch it, under mu.
type repairer struct {
	mu       sync.Mutex
	inflight map[custody.CustodyID]bool
	next     map[custody.CustodyID]time.Time     // not before
	backoff  map[custody.CustodyID]time.Duration // after the last failure
	sem      chan struct{}
	wg       sync.WaitGroup
}

// runRepairer sends this node's copies to the replacements the chain names
// it the source of, at every new block.
func (n *Node) runRepairer(ctx context.Context) error {
	if !n.waitView(ctx) {
		return nil
	}
	rp := &repairer{
		inflight: map[custody.CustodyID]bool{},
		next:     map[custody.CustodyID]time.Time{},
		backoff:  map[custody.CustodyID]time.Duration{},
		sem:      make(chan struct{}, maxConcurrentRepairs),
	}
	defer rp.wg.Wait()
	t := time.NewTicker(max(minRepairPoll, n.cfg.Chain.PollInterval.Duration/repairPollDivisor))
	defer t.Stop()
	var seen int64
	for {
		if n.member.IsActive(n.id.PubKey()) && len(n.member.current().held) > 0 {
			h, err := n.repairRound(ctx, rp, seen)
			switch {
			case err != nil && ctx.Err() == nil:
				n.m.chainErrors.Inc()
				n.log.Debug("reading repairs; will retry", "err", err)
			case err == nil:
				seen = h
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// repairRound reads the height and, if a block committed since seen (or a
// retry is due), this node's repairs, and starts the sends that are due. It
// returns the height it read.
func (n *Node) repairRound(ctx context.Context, rp *repairer, seen int64) (int64, error) {
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	h, err := n.chain.Height(cctx)
	if err != nil {
		return seen, err
	}
	if h == seen && !rp.retryDue(time.Now()) {
		return h, nil
	}
	reps, err := n.chain.RepairsBySource(cctx, n.addr)
	if err != nil {
		return seen, err
	}
	now := time.Now()
	named := make(map[custody.CustodyID]bool, len(reps))
	for _, r := range reps {
		id := custody.CustodyID{Commitment: r.Commitment, Slot: r.Slot}
		named[id] = true
		if r.Owner == n.addr {
			// This node's own commitment: the owner side pushes the copy to
			// every unattested custody (reconcileAll), repairs included.
			continue
		}
		if !rp.due(id, now) {
			continue
		}
		select {
		case rp.sem <- struct{}{}:
		default:
			continue // all slots busy: the next round
		}
		rp.start(id)
		rp.wg.Add(1)
		go func() {
			defer func() { <-rp.sem; rp.wg.Done() }()
			n.sendRepair(ctx, rp, r, h)
		}()
	}
	rp.forget(named)
	return h, nil
}

// sendRepair sends one repair and schedules the next attempt.
func (n *Node) sendRepair(ctx context.Context, rp *repairer, r attest.Repair, height int64) {
	id := custody.CustodyID{Commitment: r.Commitment, Slot: r.Slot}
	log := n.log.With("custody", idString(id), "replacement", r.Replacement, "copy", r.CopyIndex)
	held, ok := n.heldCopy(r.Commitment, int(r.CopyIndex))
	if !ok {
		// The chain thinks this node holds the copy; it does not (a wiped
		// store): the holder reconcile releases it, and the chain draws
		// another source at the repair's deadline.
		log.Warn("named the source of a repair whose copy this node does not hold")
		rp.done(id, false)
		return
	}
	ai, ok := n.member.current().addrInfoOf(r.Replacement)
	if !ok {
		log.Debug("replacement not in the view yet; will retry")
		rp.done(id, false)
		return
	}
	n.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	start := time.Now()
	// One send, dial included, holds one of maxConcurrentRepairs slots for
	// at most RepairTimeout: a replacement that is down or black-holes the
	// dial backs off, and the other repairs get the slot.
	sctx, cancel := context.WithTimeout(ctx, p2p.RepairTimeout)
	_, err := n.svc.Repair(sctx, ai.ID, id, held)
	cancel()
	switch {
	case err == nil:
		n.m.repairs.WithLabelValues("ok").Inc()
		log.Info("repair sent", "seen_at_height", height, "took_ms", time.Since(start).Milliseconds())
		rp.done(id, true)
	case errors.Is(err, p2p.ErrNotSource), errors.Is(err, p2p.ErrNotAssigned), errors.Is(err, p2p.ErrNotLive):
		// The chain changed since the list was read (another source was
		// drawn, the custody failed): the next list says what to do.
		n.m.repairs.WithLabelValues("superseded").Inc()
		log.Info("repair no longer this node's to send", "err", err)
		rp.done(id, false)
	case isLocal(err, p2p.ErrBadCopy), errors.Is(err, store.ErrNotFound), isLocal(err, p2p.ErrWrongCopy):
		// This holder's own copy is lost or corrupted: honest about it, it
		// releases the custody (the chain fails it and repairs it from
		// another holder) and drops what it has.
		n.m.repairs.WithLabelValues("own_copy_bad").Inc()
		log.Error("this node's copy cannot be sent; releasing its custody", "held", idString(held), "err", err)
		n.queueReleases([]custody.CustodyID{held})
		rp.done(id, false)
	default:
		n.m.repairs.WithLabelValues(reasonOf(err)).Inc()
		log.Warn("repair failed; will retry", "err", err)
		rp.done(id, false)
	}
}

// isLocal reports whether err is sentinel as Service.Repair returns it for
// this node's own copy, not as a refusal of the replacement's.
func isLocal(err, sentinel error) bool {
	var ref *p2p.RefusedError
	return errors.Is(err, sentinel) && !errors.As(err, &ref)
}

// heldCopy returns the custody under which this node holds copy copyIndex
// of commitment: from the chain view, else from the store (a copy stored
// since the last poll).
func (n *Node) heldCopy(commitment uint64, copyIndex int) (custody.CustodyID, bool) {
	for id, hc := range n.member.current().held {
		if id.Commitment == commitment && int(hc.CopyIndex) == copyIndex && hc.Holder == n.addr {
			if _, err := n.st.Stat(id); err == nil {
				return id, true
			}
		}
	}
	entries, err := n.st.Entries(nil)
	if err != nil {
		return custody.CustodyID{}, false
	}
	for _, e := range entries {
		if e.Custody.Commitment == commitment && e.CopyIndex == copyIndex {
			return e.Custody, true
		}
	}
	return custody.CustodyID{}, false
}

// due reports whether repair id may be sent now.
func (rp *repairer) due(id custody.CustodyID, now time.Time) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return !rp.inflight[id] && !now.Before(rp.next[id])
}

// retryDue reports whether a failed repair's retry is due (a round then
// reads the repairs even without a new block).
func (rp *repairer) retryDue(now time.Time) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for id, b := range rp.backoff {
		if b > 0 && !rp.inflight[id] && !now.Before(rp.next[id]) {
			return true
		}
	}
	return false
}

func (rp *repairer) start(id custody.CustodyID) {
	rp.mu.Lock()
	rp.inflight[id] = true
	rp.mu.Unlock()
}

// done ends an attempt: after a success the repair waits repushAfter (the
// replacement attests meanwhile), after a failure an exponential backoff.
func (rp *repairer) done(id custody.CustodyID, ok bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	delete(rp.inflight, id)
	if ok {
		rp.next[id] = time.Now().Add(repushAfter)
		delete(rp.backoff, id)
		return
	}
	b := rp.backoff[id]
	if b == 0 {
		b = repairRetryFirst
	} else {
		b = min(2*b, repairRetryMax)
	}
	rp.backoff[id] = b
	rp.next[id] = time.Now().Add(b)
}

// forget drops the state of repairs the chain no longer names (attested,
// redrawn, failed), so the maps stay as small as the list.
func (rp *repairer) forget(named map[custody.CustodyID]bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for id := range rp.next {
		if !named[id] && !rp.inflight[id] {
			delete(rp.next, id)
			delete(rp.backoff, id)
		}
	}
}
