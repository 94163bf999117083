package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ksb-project/ksb/attest"
)

// epochPoll is how often the proof epoch step reads the chain's epoch
// while waiting for the next one to start: a fifth of a 1 s block, so the
// epoch's start is seen within 200 ms of its block (an /epoch query reads
// a few keys, unlike /coverage).
const epochPoll = 200 * time.Millisecond

// ProofEpoch is what the simulation measured of one proof epoch.
type ProofEpoch struct {
	// Epoch is the epoch's number; StartHeight its first block (where the
	// chain derived its challenges) and ProofDeadline the last block a
	// Prove for it is accepted in.
	Epoch         uint64 `json:"epoch"`
	StartHeight   int64  `json:"start_height"`
	ProofDeadline int64  `json:"proof_deadline"`
	// Challenges is the number of challenges the chain derived (/epoch),
	// Custodies the counted custodies in the coverage when the epoch was
	// seen (every one is challenged: round_epochs 1).
	Challenges int `json:"challenges"`
	Custodies  int `json:"custodies"`
	// Proved is the counted custodies the coverage showed proved in this
	// epoch (last proof after StartHeight) at the end of the step.
	Proved int `json:"proved"`
	// Proofs, ProveTxs and ProveBytes are the segment proofs, Prove
	// transactions and their bytes committed for this epoch, from the
	// chain scan (filled by the accounting step).
	Proofs     int   `json:"proofs"`
	ProveTxs   int   `json:"prove_txs"`
	ProveBytes int64 `json:"prove_bytes"`
	// Time runs from the moment the simulation saw the epoch started (at
	// most epochPoll after its first block) until every counted custody
	// was proved in it.
	Time time.Duration `json:"time"`
}

// proofEpoch is the "proof epoch" step: it waits for the first epoch to
// start after full coverage, then until every counted custody has been
// proved in it (each holder reads its challenges, builds the proofs from
// its stored copies and sends one Prove). A holder that misses its window
// leaves the step failed, with the counts so far.
func (r *runner) proofEpoch(ctx context.Context) (string, string, error) {
	c := r.net.client
	wctx, cancel := context.WithTimeoutCause(ctx, r.cfg.PhaseTimeout, fmt.Errorf("%w: proof epoch not done after %v", ErrPhaseTimeout, r.cfg.PhaseTimeout))
	defer cancel()
	first := true
	var e0 uint64
	var ep attest.Epoch
	err := waitFor(wctx, epochPoll, func() (bool, error) {
		cctx, cancel := context.WithTimeout(wctx, chainCallTimeout)
		defer cancel()
		cur, err := c.Epoch(cctx)
		if errors.Is(err, attest.ErrNotFound) {
			first = false // no epoch started yet: the first one is new
			return false, nil
		}
		if err != nil {
			return false, nil // the RPC under load; read again
		}
		if first {
			first, e0 = false, cur.Epoch
			return false, nil
		}
		if cur.Epoch != e0 {
			ep = cur
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return "", "", fmt.Errorf("waiting for the next epoch: %w", err)
	}
	t := time.Now()
	pe := &ProofEpoch{Epoch: ep.Epoch, StartHeight: ep.StartHeight, ProofDeadline: ep.ProofDeadline, Challenges: int(ep.Challenges)}
	r.res.Proof = pe
	var last error
	err = waitFor(wctx, coveragePoll, func() (bool, error) {
		cctx, cancel := context.WithTimeout(wctx, chainCallTimeout)
		defer cancel()
		cov, err := c.Coverage(cctx, "")
		if err != nil {
			last = err
			return false, nil
		}
		counted, proved := provedIn(cov, ep.StartHeight)
		if pe.Custodies == 0 {
			pe.Custodies = counted
		}
		pe.Proved = proved
		if proved < counted {
			last = fmt.Errorf("%d of %d counted custodies proved in epoch %d (height %d, proof deadline %d)", proved, counted, ep.Epoch, cov.Height, ep.ProofDeadline)
			if cov.Height > ep.ProofDeadline {
				return false, last // the window closed: a miss
			}
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return "", "", fmt.Errorf("%w (last: %v)", err, last)
	}
	pe.Time = time.Since(t)
	return StatusOK, fmt.Sprintf("epoch %d (blocks %d..%d): %d challenges, all %d counted custodies proved %v after its start",
		ep.Epoch, ep.StartHeight, ep.ProofDeadline, pe.Challenges, pe.Proved, pe.Time.Round(time.Millisecond)), nil
}

// provedIn counts the counted custodies of cov and those whose last proof
// is in a block after start (an epoch's proofs are accepted from the block
// after its first).
func provedIn(cov *attest.Coverage, start int64) (counted, proved int) {
	for _, v := range cov.Vaults {
		for _, m := range v.Members {
			for _, cu := range m.Custody {
				if !cu.Counted {
					continue
				}
				counted++
				if cu.LastProofHeight > start {
					proved++
				}
			}
		}
	}
	return counted, proved
}
