package attest

import (
	"errors"
	"fmt"

	"github.com/ksb-project/ksb/attest/attestpb"
)

const (
	statusPending = attestpb.CustodyStatus_CUSTODY_STATUS_PENDING
	statusFresh   = attestpb.CustodyStatus_CUSTODY_STATUS_FRESH
	statusStale   = attestpb.CustodyStatus_CUSTODY_STATUS_STALE
	statusFailed  = attestpb.CustodyStatus_CUSTODY_STATUS_FAILED
)

// applyAttest records that holder holds its copy of each custody. Each must
// exist (ErrNotFound) and be assigned to holder (ErrNotAssigned): nobody
// can attest a copy it was not given, so coverage never counts a phantom
// holder. Attesting a custody that is attested already, failed, or of a
// commitment that no longer counts changes nothing, so that a holder's
// batch is not refused for a change it could not see coming.
func (bc *blockCtx) applyAttest(s kv, holder string, m *Attest) error {
	for i, id := range m.Custodies {
		rec, err := bc.assigned(s, holder, id)
		if err != nil {
			return fmt.Errorf("custody %d: %w", i, err)
		}
		if rec.AttestHeight != 0 || rec.Status == statusFailed {
			continue
		}
		rec.AttestHeight = bc.height
		if rec.Source != "" {
			if err := s.del(keySource(rec.Source, id)); err != nil {
				return err
			}
		}
		if err := putRec(s, KeyCustody(id), rec); err != nil {
			return err
		}
	}
	return nil
}

// assigned returns custody id's record if it exists and holder holds it.
func (bc *blockCtx) assigned(s kv, holder string, id CustodyID) (*attestpb.CustodyRecord, error) {
	rec, err := getCustody(s, id)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("no custody %d/%d: %w", id.Commitment, id.Slot, ErrNotFound)
	}
	if rec.Holder != holder {
		return nil, fmt.Errorf("custody %d/%d is assigned to %s, not %s: %w", id.Commitment, id.Slot, rec.Holder, holder, ErrNotAssigned)
	}
	return rec, nil
}

// applyRelease fails each custody holder releases, which repairs it. A
// custody that is gone (deleted after retention) or failed already is
// skipped; one assigned to another holder is ErrNotAssigned.
func (bc *blockCtx) applyRelease(s kv, holder string, m *Release) error {
	for i, id := range m.Custodies {
		rec, err := bc.assigned(s, holder, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("custody %d: %w", i, err)
		}
		if rec.Status == statusFailed {
			continue
		}
		if err := bc.failCustody(s, id, rec, attestpb.FailReason_FAIL_REASON_RELEASED); err != nil {
			return err
		}
	}
	return nil
}

// applyDrill records owner's restore drill of one of its custodies: at most
// one per owner per DrillInterval blocks (ErrRateLimited), only of its own
// live commitment (ErrNotAssigned, ErrInvalid). A failed drill fails the
// custody, which repairs it.
func (bc *blockCtx) applyDrill(s kv, owner string, self *attestpb.NodeRecord, m *Drill) error {
	if self.LastDrillHeight != 0 && bc.height < self.LastDrillHeight+bc.p.DrillInterval {
		return fmt.Errorf("last drill at block %d, the next is accepted from block %d: %w",
			self.LastDrillHeight, self.LastDrillHeight+bc.p.DrillInterval, ErrRateLimited)
	}
	id := m.Custody
	rec, err := getCustody(s, id)
	if err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("no custody %d/%d: %w", id.Commitment, id.Slot, ErrNotFound)
	}
	c, err := getCommitment(s, id.Commitment)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("custody %d/%d without its commitment: %w", id.Commitment, id.Slot, ErrNotFound)
	}
	if c.Owner != owner {
		return fmt.Errorf("commitment %d is %s's, not %s's: %w", id.Commitment, c.Owner, owner, ErrNotAssigned)
	}
	if !live(c) {
		return fmt.Errorf("commitment %d no longer counts: %w", id.Commitment, ErrInvalid)
	}
	ok := m.Result == DrillOK
	self.LastDrillHeight = bc.height
	if err := putRec(s, KeyNode(owner), self); err != nil {
		return err
	}
	c.LastDrillHeight, c.LastDrillOk, c.LastDrillSlot = bc.height, ok, uint32(id.Slot)
	if err := putRec(s, KeyCommitment(id.Commitment), c); err != nil {
		return err
	}
	rec.LastDrillHeight, rec.LastDrillOk = bc.height, ok
	bc.emit("ksb.drill", "custody", itoa(PackCustody(id)), "holder", rec.Holder, "result", m.Result.String(), "millis", itoa(uint64(m.Millis)))
	if ok || rec.Status == statusFailed {
		return putRec(s, KeyCustody(id), rec)
	}
	return bc.failCustody(s, id, rec, attestpb.FailReason_FAIL_REASON_DRILL)
}

// failCustody fails custody id (record rec) for reason, and if its
// commitment still counts, repairs the commitment in this block (with the
// owner as a possible source unless the custody timed out unattested).
func (bc *blockCtx) failCustody(s kv, id CustodyID, rec *attestpb.CustodyRecord, reason attestpb.FailReason) error {
	rec.Status, rec.FailedHeight, rec.FailReason = statusFailed, bc.height, reason
	if rec.AttestHeight == 0 && rec.Source != "" {
		if err := s.del(keySource(rec.Source, id)); err != nil {
			return err
		}
	}
	if err := putRec(s, KeyCustody(id), rec); err != nil {
		return err
	}
	bc.emit("ksb.fail", "custody", itoa(PackCustody(id)), "commitment", itoa(id.Commitment), "slot", itoa(id.Slot),
		"holder", rec.Holder, "reason", failReasonName(reason))
	c, err := getCommitment(s, id.Commitment)
	if err != nil || c == nil || !live(c) {
		return err
	}
	// A custody that timed out unattested says its copy never arrived: if
	// no holder counts, the owner did not deliver, and naming it the source
	// of yet another replacement would only repeat that every
	// attest_window. It can commit a new version.
	return bc.repair(s, id.Commitment, c, reason != attestpb.FailReason_FAIL_REASON_ATTEST_TIMEOUT)
}

// failHolderCustodies fails every custody of holder, which failed as a
// whole (it missed every challenge of two epochs in a row; its node record
// says so already, so it gets no new custodies for RoundEpochs epochs).
// Each failure repairs its commitment.
func (bc *blockCtx) failHolderCustodies(s kv, holder string) error {
	bc.emit("ksb.holder_failed", "holder", holder, "epoch", itoa(bc.epoch))
	ids, err := scanIDs(s, prefHeld+holder+"/")
	if err != nil {
		return err
	}
	for _, id := range ids {
		rec, err := getCustody(s, id)
		if err != nil {
			return err
		}
		if rec != nil && rec.Status != statusFailed {
			if err := bc.failCustody(s, id, rec, attestpb.FailReason_FAIL_REASON_HOLDER_FAILED); err != nil {
				return err
			}
		}
	}
	return nil
}

var failReasonNames = map[attestpb.FailReason]string{
	attestpb.FailReason_FAIL_REASON_MISSED:         "missed",
	attestpb.FailReason_FAIL_REASON_HOLDER_FAILED:  "holder_failed",
	attestpb.FailReason_FAIL_REASON_LEFT:           "left",
	attestpb.FailReason_FAIL_REASON_RELEASED:       "released",
	attestpb.FailReason_FAIL_REASON_DRILL:          "drill",
	attestpb.FailReason_FAIL_REASON_ATTEST_TIMEOUT: "attest_timeout",
}

// failReasonName is the reason as queries and events show it ("" for
// none).
func failReasonName(r attestpb.FailReason) string { return failReasonNames[r] }
