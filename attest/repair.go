package attest

import (
	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/custody"
)

// repair brings live commitment id (record c) back to c.Copies custodies
// that have not failed (issue 11): for each one missing, a replacement
// holder drawn by custody.Assign from custody.RepairSeed(chain ID, this
// block's hash, id, new slot) among the strategy's eligible candidates,
// never the owner and never a node that holds or held a slot of the
// commitment; and a source that sends it a copy (pickSource). The
// replacement's custody is a new slot, pending until it attests. Nothing is
// assigned when no candidate is left, the commitment has MaxSlots slots, or
// the only source would be the owner and ownerSource is false: coverage
// then shows it under-replicated.
func (bc *blockCtx) repair(s kv, id uint64, c *attestpb.CommitmentRecord, ownerSource bool) error {
	recs, err := slotRecords(s, id, c)
	if err != nil {
		return err
	}
	alive := 0
	used := map[string]bool{c.Owner: true}
	for _, r := range recs {
		if r == nil {
			continue
		}
		used[r.Holder] = true
		if r.Status != statusFailed {
			alive++
		}
	}
	need := int(c.Copies) - alive
	if need <= 0 {
		return nil
	}
	_, v, err := vaultByIndex(s, c.Vault)
	if err != nil {
		return err
	}
	if v == nil {
		return nil // a commitment outlives its vault only until its prune timer
	}
	cands, err := bc.candidates(s, v)
	if err != nil {
		return err
	}
	act, err := bc.active(s)
	if err != nil {
		return err
	}
	changed := false
	for ; need > 0 && c.Slots < MaxSlots; need-- {
		slot := uint64(c.Slots)
		picked := custody.Assign(custody.RepairSeed(bc.p.ChainID, bc.hash, id, slot), cands,
			func(a string) bool { return used[a] }, 1)
		if len(picked) == 0 {
			break
		}
		source, copyIndex := bc.pickSource(id, slot, 0, c, recs, act, "")
		if source == c.Owner && !ownerSource {
			break
		}
		cid := CustodyID{Commitment: id, Slot: slot}
		if err := bc.newCustody(s, cid, picked[0], copyIndex, source); err != nil {
			return err
		}
		rec, err := getCustody(s, cid)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		used[picked[0]] = true
		c.Slots++
		changed = true
	}
	if !changed {
		return nil
	}
	return putRec(s, KeyCommitment(id), c)
}

// slotRecords returns the custody records of slots 0..c.Slots-1 of
// commitment id (nil for a slot without one).
func slotRecords(s kv, id uint64, c *attestpb.CommitmentRecord) ([]*attestpb.CustodyRecord, error) {
	recs := make([]*attestpb.CustodyRecord, c.Slots)
	for slot := range recs {
		r, err := getCustody(s, CustodyID{Commitment: id, Slot: uint64(slot)})
		if err != nil {
			return nil, err
		}
		recs[slot] = r
	}
	return recs, nil
}

// pickSource chooses who sends a copy to the replacement of slot slot of
// commitment id: a counted holder of it (attested, not failed, active),
// drawn by custody.Assign from custody.SourceSeed(…, attempt) and, if
// another one exists, not avoid (the source that did not deliver); the
// replacement then holds the source's copy index. With no counted holder
// the source is the owner, for the lowest copy index no live custody holds
// (an owner keeps its copies while its commitment is live).
func (bc *blockCtx) pickSource(id, slot, attempt uint64, c *attestpb.CommitmentRecord, recs []*attestpb.CustodyRecord, act *activeSet, avoid string) (string, uint32) {
	copyOf := map[string]uint32{}
	var counted, others []string
	held := map[uint32]bool{}
	for _, r := range recs {
		if r == nil || r.Status == statusFailed {
			continue
		}
		held[r.Copy] = true
		if r.AttestHeight == 0 || !act.has(r.Holder) {
			continue
		}
		copyOf[r.Holder] = r.Copy
		counted = append(counted, r.Holder)
		if r.Holder != avoid {
			others = append(others, r.Holder)
		}
	}
	if len(others) > 0 {
		counted = others
	}
	if len(counted) > 0 {
		src := custody.Assign(custody.SourceSeed(bc.p.ChainID, bc.hash, id, slot, attempt), counted, nil, 1)[0]
		return src, copyOf[src]
	}
	for i := uint32(0); i < c.Copies; i++ {
		if !held[i] {
			return c.Owner, i
		}
	}
	return c.Owner, 0
}

// redrawSource draws a new source for the repair of custody id, whose
// source did not deliver by its deadline (onDeadline) or left the active
// set; the next deadline is RepairWindow blocks away. Nothing happens if the
// replacement has attested, failed, or its commitment no longer counts.
func (bc *blockCtx) redrawSource(s kv, id CustodyID, onDeadline bool) error {
	rec, err := getCustody(s, id)
	if err != nil || rec == nil || rec.AttestHeight != 0 || rec.Status == statusFailed || rec.Source == "" {
		return err
	}
	if onDeadline && rec.SourceDeadline != bc.height {
		return nil // a timer of an earlier source
	}
	c, err := getCommitment(s, id.Commitment)
	if err != nil || c == nil || !live(c) {
		return err
	}
	recs, err := slotRecords(s, id.Commitment, c)
	if err != nil {
		return err
	}
	act, err := bc.active(s)
	if err != nil {
		return err
	}
	rec.SourceAttempt++
	source, copyIndex := bc.pickSource(id.Commitment, id.Slot, uint64(rec.SourceAttempt), c, recs, act, rec.Source)
	if source == c.Owner {
		copyIndex = rec.Copy // the owner has every copy: keep the one assigned
	}
	if err := s.del(keySource(rec.Source, id)); err != nil {
		return err
	}
	rec.Source, rec.Copy, rec.SourceDeadline = source, copyIndex, bc.height+bc.p.RepairWindow
	if err := s.set(keySource(source, id), nil); err != nil {
		return err
	}
	if err := s.set(keyTimerCustody(rec.SourceDeadline, timerSource, id), nil); err != nil {
		return err
	}
	if err := putRec(s, KeyCustody(id), rec); err != nil {
		return err
	}
	bc.emit("ksb.source", "custody", itoa(PackCustody(id)), "holder", rec.Holder, "source", source,
		"copy", itoa(uint64(copyIndex)), "deadline", itoa64(rec.SourceDeadline))
	return nil
}
