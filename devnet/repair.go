package devnet

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
)

// RepairTiming is how long the chain and the holders took to bring shares
// back to r counted holders after a loss (issue 11's repair latency).
type RepairTiming struct {
	// LossHeight is the block where the loss became visible on chain (a
	// churn that removed holders, the Release of a wiped holder).
	LossHeight int64
	// RepairedHeight is the block where the last replacement's attestation
	// committed; Blocks is RepairedHeight − LossHeight.
	RepairedHeight int64
	Blocks         int64
	// Elapsed is the wall-clock time from the loss's block until the chain
	// showed r counted holders again (polled, so up to one poll late).
	Elapsed time.Duration
	// Repairs is how many replacements were assigned and attested.
	Repairs int
}

func (t *RepairTiming) String() string {
	return fmt.Sprintf("%d repair(s): loss at block %d, last replacement attested at block %d: %d blocks, %s",
		t.Repairs, t.LossHeight, t.RepairedHeight, t.Blocks, t.Elapsed.Round(time.Millisecond))
}

// Churn has the authority remove the given node addresses from the active
// set in one Churn transaction and returns its block: the chain fails their
// custodies and assigns replacements in that block.
func (n *Network) Churn(ctx context.Context, remove ...string) (int64, error) {
	res, err := attest.NewSender(n.Client, n.Authority).Send(ctx, &attest.Churn{RemoveNodes: remove})
	if err != nil {
		return 0, fmt.Errorf("churning out %v: %w", remove, err)
	}
	return res.Height, nil
}

// KillMembers destroys members idx for good, as a dead machine: each is
// stopped and its home wiped down to its mnemonic, and then all are churned
// out of the active set in one transaction, whose block it returns.
func (n *Network) KillMembers(ctx context.Context, idx ...int) (int64, error) {
	var addrs []string
	for _, i := range idx {
		if err := n.StopMember(i); err != nil {
			return 0, err
		}
		if err := n.WipeMember(i); err != nil {
			return 0, err
		}
		addrs = append(addrs, n.Members[i].Address)
	}
	return n.Churn(ctx, addrs...)
}

// WipeStore deletes member i's copy store (its data directory) and nothing
// else, as a replaced disk would; the member must be stopped.
func (n *Network) WipeStore(i int) error {
	m := n.Members[i]
	if m.Running() {
		return fmt.Errorf("member %d is running", i)
	}
	return os.RemoveAll(config.Path(m.Home, m.Config.Store.Dir))
}

// WaitReplicated polls the chain until every live commitment of the given
// owners (addresses) has at least its r copies attested by holders that
// count (attested, not failed, active), and returns the timing of the
// repairs since lossHeight: the largest attestation height of a custody
// assigned at or after it. since is when the loss's block committed.
func (n *Network) WaitReplicated(ctx context.Context, owners []string, lossHeight int64, since time.Time, poll time.Duration) (*RepairTiming, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	var last error
	for {
		tm, err := n.replicated(ctx, owners, lossHeight)
		if err == nil {
			tm.Elapsed = time.Since(since)
			return tm, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for repairs: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

func (n *Network) replicated(ctx context.Context, owners []string, lossHeight int64) (*RepairTiming, error) {
	nodes, err := n.Client.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	active := map[string]bool{}
	for _, nd := range nodes {
		active[nd.Address] = true
	}
	tm := &RepairTiming{LossHeight: lossHeight, RepairedHeight: lossHeight}
	for _, o := range owners {
		cs, err := n.Client.CommitmentsByOwner(ctx, o)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if !c.Live {
				continue
			}
			var holders []string
			for _, cu := range c.Custodies {
				if cu.AssignedHeight >= lossHeight {
					if !cu.Attested {
						if cu.Status != "failed" {
							return nil, fmt.Errorf("commitment %d: replacement %s (slot %d) has not attested", c.ID, cu.Holder, cu.Slot)
						}
						continue
					}
					tm.Repairs++
					tm.RepairedHeight = max(tm.RepairedHeight, cu.AttestHeight)
				}
				if cu.Attested && cu.Status != "failed" && active[cu.Holder] && !slices.Contains(holders, cu.Holder) {
					holders = append(holders, cu.Holder)
				}
			}
			if len(holders) < int(c.Copies) {
				return nil, fmt.Errorf("commitment %d of %s has %d counted holders, want %d", c.ID, o, len(holders), c.Copies)
			}
		}
	}
	tm.Blocks = tm.RepairedHeight - tm.LossHeight
	return tm, nil
}
