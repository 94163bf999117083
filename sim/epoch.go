package sim

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ksb-project/ksb/attest"
)

// epochParam is the genesis parameter of the custody design's proof epochs
// (docs: the custody design, "Epochs"): a chain that has them reports it in
// /params.
const epochParam = "epoch_blocks"

// proofEpoch is the "proof epoch" step. It is a stub until the chain has
// proof epochs, and says so: it never reports a proof that did not happen.
//
// What it must do once the custody work lands (and what the result must
// then record): wait for the first block of the next epoch e; read every
// holder's challenges of e; wait until each is answered (a Prove committed,
// the custody fresh) or missed at the end of proof_window; record the time
// from the epoch's first block to the last proof, the misses (0 expected:
// every holder is honest here) and, through the chain scan, the bytes of the
// "prove" transactions. Coverage after it must then count "fresh" holders.
func proofEpoch(ctx context.Context, c *attest.Client) (status, note string, err error) {
	var params map[string]json.RawMessage
	if err := c.Query(ctx, "/params", &params); err != nil {
		return "", "", fmt.Errorf("reading the chain's parameters: %w", err)
	}
	if _, ok := params[epochParam]; !ok {
		return StatusUnavailable, fmt.Sprintf("the chain has no proof epochs (no %s in /params): nothing proved, nothing measured", epochParam), nil
	}
	return StatusUnavailable, fmt.Sprintf("the chain has proof epochs (%s in /params) but the simulation does not drive them yet (sim/epoch.go): nothing measured", epochParam), nil
}
