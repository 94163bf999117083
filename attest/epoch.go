package attest

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/custody"
)

// startEpoch derives epoch e's challenges at its first block (this one):
// seed = custody.EpochSeed(chain ID, e, this block's hash); for every active
// holder, custody.Challenges over its counted custodies (attested, not
// failed, of a commitment that counts) at position e mod RoundEpochs of
// round e / RoundEpochs. Each challenge is a state record open until the
// holder proves it or the proof window closes (height + ProofWindow).
//
// The work is O(custodies held by active nodes) in this one block: about
// 2·720 custody reads and 720 + 120 writes on the reference network
// (superseded custodies are read until deleted). It is not spread over the
// epoch: every challenge must come from the seed of one block nobody could
// predict, and the epoch's first block is where that seed is known.
func (bc *blockCtx) startEpoch(s kv, e uint64) error {
	seed := custody.EpochSeed(bc.p.ChainID, e, bc.hash)
	round, pos := e/bc.p.RoundEpochs, e%bc.p.RoundEpochs
	deadline := bc.height + bc.p.ProofWindow
	act, err := bc.active(s)
	if err != nil {
		return err
	}
	commits := map[uint64]*attestpb.CommitmentRecord{}
	total := 0
	for _, holder := range act.sorted {
		ids, err := scanIDs(s, prefHeld+holder+"/")
		if err != nil {
			return err
		}
		var held []custody.Held
		recs := map[CustodyID]*attestpb.CustodyRecord{}
		for _, id := range ids {
			rec, err := getCustody(s, id)
			if err != nil {
				return err
			}
			if rec == nil || rec.Holder != holder || rec.Status == statusFailed || rec.AttestHeight == 0 {
				continue
			}
			c, ok := commits[id.Commitment]
			if !ok {
				if c, err = getCommitment(s, id.Commitment); err != nil {
					return err
				}
				commits[id.Commitment] = c
			}
			if c == nil || !live(c) {
				continue
			}
			recs[id] = rec
			held = append(held, custody.Held{
				ID: id, Size: c.Size,
				Pending:    rec.Status == statusPending,
				Stale:      rec.Status == statusStale,
				Challenged: rec.ChallengedRound == round+1,
			})
		}
		chs, err := custody.Challenges(seed, holder, held, pos, bc.p.RoundEpochs)
		if err != nil {
			return fmt.Errorf("challenges of %s: %w: %w", holder, ErrInternal, err)
		}
		if len(chs) == 0 {
			continue
		}
		for _, ch := range chs {
			if err := putRec(s, KeyChallenge(e, holder, ch.Custody), &attestpb.ChallengeRecord{Segment: ch.Segment, Deadline: deadline}); err != nil {
				return err
			}
			rec := recs[ch.Custody]
			rec.ChallengedRound = round + 1
			if err := putRec(s, KeyCustody(ch.Custody), rec); err != nil {
				return err
			}
		}
		n := act.records[holder]
		n.TallyEpoch, n.TallyChallenged, n.TallyAnswered = e+1, uint32(len(chs)), 0
		if err := putRec(s, KeyNode(holder), n); err != nil {
			return err
		}
		total += len(chs)
	}
	bc.invalidate() // node records changed under the cache
	ep := &attestpb.EpochRecord{Epoch: e, StartHeight: bc.height, Seed: seed[:], ProofDeadline: deadline, Challenges: uint32(total)}
	if err := putRec(s, keyEpoch, ep); err != nil {
		return err
	}
	bc.emit("ksb.epoch", "epoch", itoa(e), "challenges", itoa(uint64(total)), "proof_deadline", itoa64(deadline))
	return nil
}

// closeWindow ends epoch ep's proof window, at the end of its last block:
// every challenge still open is a miss (custody.Status.Missed: pending or
// fresh become stale, stale becomes failed and is repaired); a holder that
// answered none of its challenges in this epoch and in the one before fails
// as a whole (custody.HolderFails).
func (bc *blockCtx) closeWindow(s kv, ep *attestpb.EpochRecord) error {
	prefix := prefChallenge + hex16(ep.Epoch) + "/"
	type open struct {
		key    string
		holder string
		id     CustodyID
	}
	var missed []open
	err := s.scan(prefix, func(key string, _ []byte) error {
		holder, rest, ok := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		id, ok2 := custodyFromSuffix(rest)
		if !ok || !ok2 {
			return fmt.Errorf("state key %q: %w", key, ErrInternal)
		}
		missed = append(missed, open{key, holder, id})
		return nil
	})
	if err != nil {
		return err
	}
	// First the holders that fail as a whole, so that no replacement drawn
	// below is one of them.
	holders := map[string]bool{}
	for _, m := range missed {
		holders[m.holder] = true
	}
	names := make([]string, 0, len(holders))
	for h := range holders {
		names = append(names, h)
	}
	sort.Strings(names)
	var failing []string
	for _, h := range names {
		n, err := getNode(s, h)
		if err != nil {
			return err
		}
		if n == nil || n.TallyEpoch != ep.Epoch+1 {
			continue
		}
		cur := custody.EpochTally{Challenged: int(n.TallyChallenged), Answered: int(n.TallyAnswered)}
		if !cur.AllMissed() {
			continue
		}
		// AllMissedEpoch holds epoch+1 of the last all-missed epoch: the
		// previous epoch, ep.Epoch-1, is stored as ep.Epoch.
		if ep.Epoch >= 1 && n.AllMissedEpoch == ep.Epoch {
			n.FailedHeight, n.FailedEpoch = bc.height, bc.epoch+1
			failing = append(failing, h)
		}
		n.AllMissedEpoch = ep.Epoch + 1
		if err := putRec(s, KeyNode(h), n); err != nil {
			return err
		}
	}
	bc.invalidate()
	for _, m := range missed {
		if err := s.del(m.key); err != nil {
			return err
		}
		rec, err := getCustody(s, m.id)
		if err != nil {
			return err
		}
		if rec == nil || rec.Status == statusFailed {
			continue
		}
		c, err := getCommitment(s, m.id.Commitment)
		if err != nil {
			return err
		}
		if c == nil || !live(c) {
			continue
		}
		st := custody.Status(rec.Status).Missed()
		if st == custody.StatusFailed {
			if err := bc.failCustody(s, m.id, rec, attestpb.FailReason_FAIL_REASON_MISSED); err != nil {
				return err
			}
			continue
		}
		rec.Status = attestpb.CustodyStatus(st)
		if err := putRec(s, KeyCustody(m.id), rec); err != nil {
			return err
		}
	}
	for _, h := range failing {
		if err := bc.failHolderCustodies(s, h); err != nil {
			return err
		}
	}
	return nil
}

// applyProve checks holder's proofs for epoch m.Epoch: each must answer an
// open challenge of holder in that epoch (ErrNoChallenge: never challenged,
// a wrong epoch, answered already, or the window closed), for the segment
// challenged (ErrWrongSegment), and verify with custody.Verify against the
// committed root, size and r and the custody's copy index, all from state
// (ErrBadProof). A verified proof closes the challenge and makes the custody
// fresh.
func (bc *blockCtx) applyProve(s kv, holder string, self *attestpb.NodeRecord, m *Prove) error {
	for i, p := range m.Proofs {
		id := p.Custody
		k := KeyChallenge(m.Epoch, holder, id)
		ch := &attestpb.ChallengeRecord{}
		ok, err := getRec(s, k, ch)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("proof %d: custody %d/%d has no open challenge for %s in epoch %d: %w", i, id.Commitment, id.Slot, holder, m.Epoch, ErrNoChallenge)
		}
		if p.Segment != ch.Segment {
			return fmt.Errorf("proof %d: segment %d, challenged %d: %w", i, p.Segment, ch.Segment, ErrWrongSegment)
		}
		rec, err := getCustody(s, id)
		if err != nil {
			return err
		}
		c, err := getCommitment(s, id.Commitment)
		if err != nil {
			return err
		}
		if rec == nil || c == nil || len(c.Root) != HashSize {
			// Deleted after its retention while the challenge was open:
			// the challenge is as good as closed.
			return fmt.Errorf("proof %d: custody %d/%d is no longer in state: %w", i, id.Commitment, id.Slot, ErrNoChallenge)
		}
		proof := custody.Proof{
			CopyIndex: int(rec.Copy), Copies: int(c.Copies), Segment: p.Segment,
			Data: p.Data, CopyPath: p.CopyPath, CommitPath: p.CommitPath,
		}
		err = custody.Verify([HashSize]byte(c.Root), c.Size, int(c.Copies), int(rec.Copy), ch.Segment, proof)
		if errors.Is(err, custody.ErrInvalidProof) {
			return fmt.Errorf("proof %d: custody %d/%d: %w: %w", i, id.Commitment, id.Slot, ErrBadProof, err)
		}
		if err != nil { // the records admit no proof (custody.ErrInvalidArgument): refused, never a halt
			return fmt.Errorf("proof %d: custody %d/%d: %w: %w", i, id.Commitment, id.Slot, ErrInvalid, err)
		}
		if err := s.del(k); err != nil {
			return err
		}
		if rec.Status != statusFailed {
			rec.Status = attestpb.CustodyStatus(custody.Status(rec.Status).Proved())
			rec.LastProofHeight = bc.height
			if err := putRec(s, KeyCustody(id), rec); err != nil {
				return err
			}
		}
	}
	if self.TallyEpoch != m.Epoch+1 {
		return nil
	}
	self.TallyAnswered += uint32(len(m.Proofs))
	return putRec(s, KeyNode(holder), self)
}
