package devnet

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

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
	// Elapsed is the time between the two blocks (their header times);
	// Observed the wall-clock time from the loss's block until a poll of
	// the chain showed r counted holders again (so up to a poll late).
	Elapsed, Observed time.Duration
	// Repairs is how many replacements were assigned and attested.
	Repairs int
}

func (t *RepairTiming) String() string {
	return fmt.Sprintf("%d repair(s): loss at block %d, last replacement attested at block %d: %d blocks, %s (seen after %s)",
		t.Repairs, t.LossHeight, t.RepairedHeight, t.Blocks, t.Elapsed.Round(time.Millisecond), t.Observed.Round(time.Millisecond))
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
			tm.Observed = time.Since(since)
			tm.Elapsed, err = n.blockSpan(ctx, tm.LossHeight, tm.RepairedHeight)
			if err != nil {
				return nil, err
			}
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

// blockSpan is the time between the headers of blocks from and to.
func (n *Network) blockSpan(ctx context.Context, from, to int64) (time.Duration, error) {
	c, err := rpchttp.New(n.Chain.RPCURL())
	if err != nil {
		return 0, err
	}
	var ts [2]time.Time
	for i, h := range []int64{from, to} {
		b, err := c.Block(ctx, &h)
		if err != nil {
			return 0, fmt.Errorf("block %d: %w", h, err)
		}
		ts[i] = b.Block.Time
	}
	return ts[1].Sub(ts[0]), nil
}

// repairTimeout bounds Run's wait for the repairs (goal: a few blocks).
const repairTimeout = time.Minute

// repairPhase is Run's repair step: node0 (the owner) stops; one holder of
// its share of the first vault is destroyed for good and churned out; the
// chain assigns replacements, the surviving holders send them their
// copies, and node0's shares are back to r counted holders without it.
// It returns the timing, the holders that got a repaired copy of node0's
// shares, and the indices of the first vault's other counted holders (Run
// stops them during the recovery, so that share can only come from a
// repaired copy).
func (n *Network) repairPhase(ctx context.Context, out io.Writer, step string) (*RepairTiming, map[string]bool, []int, error) {
	owner, vault := n.Members[0], n.Vaults[0]
	if err := n.StopMember(0); err != nil {
		return nil, nil, nil, err
	}
	c, err := n.liveCommitment(ctx, owner.Address, vault)
	if err != nil {
		return nil, nil, nil, err
	}
	var victim *Member
	for _, cu := range c.Custodies {
		if cu.Attested && cu.Status != "failed" {
			victim = n.member(cu.Holder)
			break
		}
	}
	if victim == nil {
		return nil, nil, nil, fmt.Errorf("node0's share of %s has no counted holder", vault)
	}
	fmt.Fprintf(out, "\n%s repair without the owner: node0 stopped; node%d, a holder of its share of vault %s, destroyed for good\n"+
		"      (stopped, home wiped) and churned out; the chain assigns a replacement and names a surviving holder\n"+
		"      its source, which sends it its copy\n", step, victim.Index, short(vault))
	loss, err := n.KillMembers(ctx, victim.Index)
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, repairTimeout)
	tm, err := n.WaitReplicated(rctx, []string{owner.Address}, loss, time.Now(), coveragePoll/5)
	cancel()
	if err != nil {
		return nil, nil, nil, err
	}
	cs, err := n.Client.CommitmentsByOwner(ctx, owner.Address)
	if err != nil {
		return nil, nil, nil, err
	}
	repaired := map[string]bool{}
	var originals []int
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "      VAULT\tSLOT\tHOLDER\tCOPY\tSTATUS\tATTESTED AT\tREPAIRED FROM")
	for _, c := range cs {
		if !c.Live {
			continue
		}
		for _, cu := range c.Custodies {
			from := ""
			if cu.AssignedHeight >= loss {
				from = cu.Source
				if cu.Attested {
					repaired[cu.Holder] = true
				}
			} else if c.Vault == vault && cu.Attested && cu.Status != "failed" {
				if m := n.member(cu.Holder); m != nil && m.Running() {
					originals = append(originals, m.Index)
				}
			}
			if from != "" {
				if m := n.member(from); m != nil {
					from = fmt.Sprintf("node%d", m.Index)
				}
			}
			name := cu.Holder
			if m := n.member(cu.Holder); m != nil {
				name = fmt.Sprintf("node%d", m.Index)
			}
			fmt.Fprintf(tw, "      %s\t%d\t%s\t%d\t%s\t%d\t%s\n", short(c.Vault), cu.Slot, name, cu.CopyIndex, cu.Status, cu.AttestHeight, from)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "      node0's shares back to r = %d counted holders without node0: %s\n", n.opts.Replication, tm)
	return tm, repaired, originals, nil
}

// liveCommitment returns owner's live commitment for vault.
func (n *Network) liveCommitment(ctx context.Context, owner, vault string) (attest.Commitment, error) {
	cs, err := n.Client.CommitmentsByOwner(ctx, owner)
	if err != nil {
		return attest.Commitment{}, err
	}
	for _, c := range cs {
		if c.Live && c.Vault == vault {
			return c, nil
		}
	}
	return attest.Commitment{}, fmt.Errorf("%s has no live commitment for %s", owner, vault)
}

// member returns the member with address addr, or nil.
func (n *Network) member(addr string) *Member {
	for _, m := range n.Members {
		if m.Address == addr {
			return m
		}
	}
	return nil
}

// short abbreviates a vault key for tables.
func short(vault string) string {
	if len(vault) <= 24 {
		return vault
	}
	return vault[:24] + "…"
}

// CopyTraffic is what a member's p2p service moved over one copy protocol
// (push or repair), from its ksb_p2p_requests_total and
// ksb_p2p_blob_bytes_total counters: copies and blob bytes accepted, sent
// (as an owner pushing or a repair source) and received (as an assigned
// holder or a replacement).
type CopyTraffic struct {
	CopiesOut, CopiesIn int
	// DuplicatesIn are copies received that this member already held
	// (its bytes are in BytesIn): the owner's push and a repair source's
	// copy raced for the same custody.
	DuplicatesIn      int
	BytesOut, BytesIn int64
}

// Sub returns t − u, the traffic between two readings.
func (t CopyTraffic) Sub(u CopyTraffic) CopyTraffic {
	return CopyTraffic{CopiesOut: t.CopiesOut - u.CopiesOut, CopiesIn: t.CopiesIn - u.CopiesIn,
		DuplicatesIn: t.DuplicatesIn - u.DuplicatesIn,
		BytesOut:     t.BytesOut - u.BytesOut, BytesIn: t.BytesIn - u.BytesIn}
}

// Traffic reads member m's copy traffic over protocol ("push" or "repair")
// since its daemon last started; for a stopped member, that of its last
// run. Copies count accepted streams; bytes count every successful one
// (accepted, or a duplicate of a copy already held); refused and failed
// streams count in neither.
func (m *Member) Traffic(protocol string) (CopyTraffic, error) {
	m.mu.Lock()
	reg := m.reg
	m.mu.Unlock()
	var t CopyTraffic
	if reg == nil {
		return t, nil
	}
	mfs, err := reg.Gather()
	if err != nil {
		return t, fmt.Errorf("member %d's metrics: %w", m.Index, err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if name != "ksb_p2p_blob_bytes_total" && name != "ksb_p2p_requests_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["protocol"] != protocol {
				continue
			}
			v := mt.GetCounter().GetValue()
			switch {
			case name == "ksb_p2p_blob_bytes_total" && l["direction"] == "out":
				t.BytesOut += int64(v)
			case name == "ksb_p2p_blob_bytes_total" && l["direction"] == "in":
				t.BytesIn += int64(v)
			case l["result"] == "duplicate" && l["direction"] == "in":
				t.DuplicatesIn += int(v)
			case l["result"] != "accepted":
			case l["direction"] == "out":
				t.CopiesOut += int(v)
			case l["direction"] == "in":
				t.CopiesIn += int(v)
			}
		}
	}
	return t, nil
}
