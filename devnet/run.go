package devnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/recovery"
)

const (
	// coverageTimeout bounds the wait for full coverage. At work factor 18
	// each member seals two shares (about a second of scrypt each, two cores
	// shared by all members) and the chain commits every 300 ms: the devnet
	// is covered in well under a minute even on a loaded machine.
	coverageTimeout = 3 * time.Minute
	// recoveryTimeout bounds the recovery of the destroyed member.
	recoveryTimeout = 2 * time.Minute
	// proofEpochs bounds the wait for every custody to be proven, in epochs:
	// a new custody is challenged in the first epoch after its attestation,
	// so two epochs and their proof windows, with one to spare.
	proofEpochs = 3
	// coveragePoll is how often the chain's coverage is read while waiting.
	coveragePoll = 250 * time.Millisecond
)

// RunOptions configure Run.
type RunOptions struct {
	Options
	// Keep leaves the network running after the demonstration (the
	// destroyed member restarted from its recovered files) until ctx ends.
	Keep bool
	// Out receives the narration, tables and summary.
	Out io.Writer
}

// Timings are the figures Run reports.
type Timings struct {
	Start    time.Duration // chain and members up
	Coverage time.Duration // shares placed → every vault safe
	Proofs   time.Duration // every vault safe → every custody proven (with EpochBlocks)
	Recovery time.Duration // recovery of the destroyed member, mnemonic only
	// Repair is the repair of node0's shares after one of their holders
	// was destroyed while node0 was stopped (nil: not run, fewer than r+2
	// nodes leave no replacement candidate).
	Repair *RepairTiming
}

// Run is `ksb devnet`: start a devnet, place real shares as keygen would, wait
// until every vault is safe and print the coverage; with EpochBlocks set,
// wait until every holder has proven possession of its copy (every custody
// fresh) and print the coverage again; destroy member 0 (its keyshares and
// data), recover it from its mnemonic alone through the chain and its
// holders, check every recovered file byte for byte, and print a summary
// with timings. It returns an error if anything, including the byte-for-byte
// check, fails.
func Run(ctx context.Context, o RunOptions) (*Timings, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	var tm Timings
	t0 := time.Now()
	n, err := Start(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	tm.Start = time.Since(t0)
	opts := n.opts
	fmt.Fprintf(out, "ksb devnet: chain %s at %s, %d nodes, r = %d, age work factor %d (dir %s)\n",
		ChainID, n.Chain.RPCURL(), len(n.Members), opts.Replication, opts.WorkFactor, n.Dir)
	steps := 4
	proving := opts.EpochBlocks > 0
	if proving {
		steps++
	}
	// A replacement must be a node that is neither the owner nor one of
	// its r holders.
	repairing := len(n.Members) >= opts.Replication+2
	if repairing {
		steps++
	}
	if proving {
		p, err := n.Client.Params(ctx)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "custody epochs of %d blocks (%v each): holders prove possession within %d blocks of each epoch's start\n",
			p.EpochBlocks, time.Duration(p.EpochBlocks)*opts.BlockInterval, p.ProofWindow)
	}
	step := 0
	next := func() string { step++; return fmt.Sprintf("[%d/%d]", step, steps) }
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, m := range n.Members {
		fmt.Fprintf(tw, "  node%d\t%s\t%s\tadmin http://%s\n", m.Index, m.Address, m.ID.PeerID(), m.Node().AdminAddr())
	}
	tw.Flush()

	// 1. Keygen writes the shares.
	if err := n.PlaceShares(); err != nil {
		return nil, err
	}
	t1 := time.Now()
	fmt.Fprintf(out, "\n%s keygen: wrote %d shares of %d vaults into the nodes' keyshares/ directories\n",
		next(), 2*len(n.Members), len(n.Vaults))

	// 2. Backup: seal, commit, push, hold, attest.
	fmt.Fprintf(out, "%s backing up: each node seals %d copies of each share and commits them on chain; the chain assigns a holder\n"+
		"      to each copy, the owner pushes it there, and the holder checks it against the commitment and attests\n", next(), opts.Replication)
	cctx, cancel := context.WithTimeout(ctx, coverageTimeout)
	cov, err := n.WaitCovered(cctx, coveragePoll)
	cancel()
	if err != nil {
		return nil, err
	}
	tm.Coverage = time.Since(t1)
	fmt.Fprintf(out, "      every vault safe after %s\n\n", tm.Coverage.Round(time.Millisecond))
	if err := attest.WriteCoverageTable(out, cov); err != nil {
		return nil, err
	}

	// 3. Proofs: every holder answers its challenges.
	if proving {
		p, err := n.Client.Params(ctx)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "\n%s proving custody: each epoch the chain challenges every holder on random segments of its copies;\n"+
			"      waiting until every custody is fresh (proven)\n", next())
		wait := time.Duration(proofEpochs*p.EpochBlocks)*opts.BlockInterval + coverageTimeout
		pctx, cancel := context.WithTimeout(ctx, wait)
		t3 := time.Now()
		cov, err = n.WaitFresh(pctx, coveragePoll)
		cancel()
		if err != nil {
			return nil, err
		}
		tm.Proofs = time.Since(t3)
		fmt.Fprintf(out, "      every custody proven after %s more\n\n", tm.Proofs.Round(time.Millisecond))
		if err := attest.WriteCoverageTable(out, cov); err != nil {
			return nil, err
		}
	}

	// 4. Repair without the owner: node0 stops, one of its holders dies.
	victim := n.Members[0]
	var repaired map[string]bool // vault → holders with a repaired copy
	var originals []int          // vault A's other holders, stopped during the recovery
	if repairing {
		if tm.Repair, repaired, originals, err = n.repairPhase(ctx, out, next()); err != nil {
			return nil, err
		}
	}

	// 5. Disaster: node0 loses everything but its mnemonic.
	if err := n.StopMember(0); err != nil {
		return nil, err
	}
	if err := n.WipeMember(0); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n%s destroyed node0 (%s): stopped, keyshares/ and data/ deleted; only its mnemonic is left\n", next(), victim.Address)
	for _, i := range originals {
		if err := n.StopMember(i); err != nil {
			return nil, err
		}
	}
	if len(originals) > 0 {
		fmt.Fprintf(out, "      vault %s's original holders stopped for the recovery: its share can only come from a repaired copy\n", short(n.Vaults[0]))
	}

	// 4. Recovery from the mnemonic alone.
	mn, err := identity.Read(identity.Source{File: filepath.Join(victim.Home, "mnemonic")})
	if err != nil {
		return nil, err
	}
	var boot []string
	for _, m := range n.Members[1:] {
		if nd := m.Node(); nd != nil {
			boot = append(boot, nd.Addrs()...)
		}
	}
	fmt.Fprintf(out, "%s recovering node0 from its mnemonic: its commitments from the chain, copies from their holders,\n"+
		"      each checked against the committed root before it is opened\n", next())
	rctx, cancel := context.WithTimeout(ctx, recoveryTimeout)
	t2 := time.Now()
	rep, err := recovery.Run(rctx, recovery.Options{
		Mnemonic:  mn,
		OutDir:    victim.KeysharesDir(),
		RPC:       n.Chain.RPCURL(),
		Bootstrap: boot,
		Logger:    opts.Logger.With("component", "recovery"),
	})
	cancel()
	tm.Recovery = time.Since(t2)
	if err != nil {
		return nil, fmt.Errorf("recovering node0: %w", err)
	}
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "      VAULT\tHOLDER USED\tBYTES\tTIME\tBYTE FOR BYTE")
	names := make([]string, 0, len(victim.Shares))
	for name := range victim.Shares {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, v := range rep.Vaults {
		got, err := os.ReadFile(v.File)
		if err != nil {
			return nil, err
		}
		want := victim.Shares[filepath.Base(v.File)]
		same := "identical"
		if !bytes.Equal(got, want) {
			same = "DIFFERENT"
		}
		holder := v.Holder
		if v.Vault == n.Vaults[0] && repaired[v.Holder] {
			holder += " (repaired copy)"
		}
		fmt.Fprintf(tw, "      %s\t%s\t%d\t%s\t%s\n", v.Vault, holder, v.Bytes, v.Duration.Round(time.Millisecond), same)
		if same != "identical" {
			tw.Flush()
			return nil, fmt.Errorf("recovered %s differs from the original", v.File)
		}
		if len(originals) > 0 && v.Vault == n.Vaults[0] && !repaired[v.Holder] {
			tw.Flush()
			return nil, fmt.Errorf("vault %s's share came from %s, not from a repaired copy", v.Vault, v.Holder)
		}
	}
	tw.Flush()
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(victim.KeysharesDir(), name)); err != nil {
			return nil, fmt.Errorf("share %s was not recovered: %w", name, err)
		}
	}

	fmt.Fprintf(out, "\nsummary: %d nodes up in %s; %d shares backed up to %d holders each, all vaults safe in %s;\n"+
		"         node0 recovered %d of %d shares from its mnemonic alone in %s (via %s), byte for byte.\n",
		len(n.Members), tm.Start.Round(time.Millisecond), 2*len(n.Members), opts.Replication,
		tm.Coverage.Round(time.Millisecond), len(rep.Recovered()), len(names), tm.Recovery.Round(time.Millisecond), rep.Path)

	if tm.Repair != nil {
		fmt.Fprintf(out, "         repair without the owner: %s\n", tm.Repair)
	}

	for _, i := range originals {
		if err := n.StartMember(ctx, i); err != nil {
			return nil, err
		}
	}
	if !o.Keep {
		return &tm, nil
	}
	if err := n.StartMember(ctx, 0); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\nThe devnet keeps running (node0 restarted from its recovered files); Ctrl-C stops it.\n"+
		"  ksb coverage --rpc %s\n", n.Chain.RPCURL())
	for _, m := range n.Members {
		if nd := m.Node(); nd != nil {
			fmt.Fprintf(out, "  ksb status --home %s      # admin http://%s/status\n", m.Home, nd.AdminAddr())
		}
	}
	<-ctx.Done()
	return &tm, nil
}
