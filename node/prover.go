package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/store"
)

// maxProveRounds bounds the Prove transactions one epoch's answer may take
// when the chain refuses one (a challenge closed or answered meanwhile):
// each round reads the open challenges again and answers what is left.
const maxProveRounds = 3

// runProver answers this holder's challenges: every poll interval it reads
// the current epoch and, once per epoch, its open challenges, and answers
// them all in one Prove (attest.MaxProofs at most per transaction). The
// chain derives an epoch's challenges in its first block; the holder sees
// them within one poll interval and its Prove commits a block later, well
// inside the proof window (attest.Params.ProofWindow blocks).
func (n *Node) runProver(ctx context.Context) error {
	if !n.waitView(ctx) {
		return nil
	}
	t := time.NewTicker(n.cfg.Chain.PollInterval.Duration)
	defer t.Stop()
	for {
		if n.member.IsActive(n.id.PubKey()) {
			if err := n.prove(ctx); err != nil && ctx.Err() == nil {
				n.m.chainErrors.Inc()
				n.log.Warn("answering challenges; will retry", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// prove answers the current epoch's open challenges of this holder, once.
func (n *Node) prove(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	ep, err := n.chain.Epoch(cctx)
	if errors.Is(err, attest.ErrNotFound) {
		return nil // no epoch has started
	}
	if err != nil {
		return fmt.Errorf("reading the epoch: %w", err)
	}
	if n.lastProved == ep.Epoch+1 {
		return nil
	}
	for round := 0; round < maxProveRounds; round++ {
		chs, err := n.chain.Challenges(cctx, n.addr)
		if err != nil {
			return fmt.Errorf("reading challenges: %w", err)
		}
		var open []attest.Challenge
		for _, ch := range chs {
			if ch.Epoch == ep.Epoch {
				open = append(open, ch)
			}
		}
		if len(open) == 0 {
			n.lastProved = ep.Epoch + 1
			return nil
		}
		proofs, lost := n.answer(cctx, open)
		if len(lost) > 0 {
			// Honest about what it lost: released now, the chain repairs
			// the custodies at once instead of after two missed epochs.
			if added, _ := n.queueReleases(lost); added > 0 {
				n.log.Warn("challenged copies are not held; releases queued", "count", added, "epoch", ep.Epoch)
			}
			n.m.proofs.WithLabelValues("lost").Add(float64(len(lost)))
		}
		err = nil
		for len(proofs) > 0 && err == nil {
			batch := proofs[:min(len(proofs), attest.MaxProofs)]
			proofs = proofs[len(batch):]
			if _, err = n.sender.Prove(cctx, ep.Epoch, batch...); err == nil {
				n.m.proofs.WithLabelValues("proved").Add(float64(len(batch)))
				n.log.Info("challenges answered", "epoch", ep.Epoch, "proofs", len(batch))
			}
		}
		var te *attest.TxError
		if err != nil && !errors.As(err, &te) {
			return fmt.Errorf("sending proofs for epoch %d: %w", ep.Epoch, err)
		}
		if err != nil {
			// Refused whole (a challenge closed meanwhile, or the window
			// ended): read what is still open and answer that.
			n.m.proofs.WithLabelValues("refused").Inc()
			n.log.Warn("proofs refused; answering what is still open", "epoch", ep.Epoch, "err", err)
			continue
		}
		n.lastProved = ep.Epoch + 1
		return nil
	}
	n.lastProved = ep.Epoch + 1
	return fmt.Errorf("epoch %d: proofs refused %d times", ep.Epoch, maxProveRounds)
}

// answer builds the proofs of challenges from the store, each checked
// against the committed root before it is sent (a Prove is refused whole if
// one proof is bad). A challenged copy that is missing, unreadable or does
// not prove is returned in lost, unless a test made this holder lose it
// silently (DropCopy).
func (n *Node) answer(ctx context.Context, chs []attest.Challenge) (proofs []attest.SegmentProof, lost []custody.CustodyID) {
	v := n.member.current()
	for _, ch := range chs {
		id := custody.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}
		p, err := n.proveOne(ctx, v, id, ch.Segment)
		switch {
		case err == nil:
			proofs = append(proofs, attest.NewSegmentProof(id, p))
		case n.isSilent(id):
			n.log.Debug("not answering a challenge of a copy dropped silently", "custody", idString(id))
		default:
			n.log.Error("cannot prove a challenged copy", "custody", idString(id), "segment", ch.Segment, "err", err)
			if errors.Is(err, store.ErrCorrupt) || errors.Is(err, custody.ErrInvalidProof) {
				// Unprovable bytes are not worth keeping.
				n.dropCopy(id, dropFailed)
			}
			lost = append(lost, id)
		}
	}
	return proofs, lost
}

// errNoCopy is why a challenged custody cannot be proved: its copy is not in
// the store.
var errNoCopy = errors.New("copy not held")

// proveOne builds and checks the proof of segment of custody id.
func (n *Node) proveOne(ctx context.Context, v *chainView, id custody.CustodyID, segment uint64) (custody.Proof, error) {
	e, blob, err := n.st.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return custody.Proof{}, errNoCopy
	}
	if err != nil {
		return custody.Proof{}, err
	}
	hc, ok := v.held[id]
	if !ok {
		got, err := n.chain.Custody(ctx, id)
		if err != nil {
			return custody.Proof{}, fmt.Errorf("reading the custody: %w", err)
		}
		hc = *got
	}
	c := toP2P(hc)
	if !c.Live && !c.Failed {
		return custody.Proof{}, fmt.Errorf("custody %s: its commitment no longer counts", idString(id))
	}
	p, err := custody.ProveHeld(blob, e.CopyIndex, e.Copies, e.CommitPath, segment)
	if err != nil {
		return custody.Proof{}, err
	}
	if err := custody.Verify(c.Root, c.Size, c.Copies, c.CopyIndex, segment, p); err != nil {
		return custody.Proof{}, err
	}
	return p, nil
}
