package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/recovery"
)

func init() { commands = append(commands, recoverCmd) }

// exitIncomplete is the exit status of `ksb recover` when some vault was
// not recovered (the others are written).
const exitIncomplete = 2

// recoverOut is the JSON form of `ksb recover --json`.
type recoverOut struct {
	Path     recovery.Path `json:"path"`
	Owner    string        `json:"owner"`
	PeerID   string        `json:"peer_id"`
	Fallback string        `json:"fallback,omitempty"`
	// ProvenHeight: with --verify, the height of the proven state read.
	ProvenHeight int64          `json:"proven_height,omitempty"`
	Vaults       []recoverVault `json:"vaults"`
	Missing      []string       `json:"missing"`
	Skipped      []recoverSkip  `json:"skipped"`
	DurationMS   int64          `json:"duration_ms"`
	Clock        *recoverClock  `json:"clock,omitempty"`
	Error        string         `json:"error,omitempty"`
}

// recoverClock is this machine's clock against the chain's or the holders'.
type recoverClock struct {
	OffsetMS int64  `json:"offset_ms"`
	Against  string `json:"against"`
	Height   int64  `json:"height,omitempty"`
	Samples  int    `json:"samples,omitempty"`
	Skewed   bool   `json:"skewed"`
}

type recoverVault struct {
	Vault      string `json:"vault"`
	Holder     string `json:"holder,omitempty"`
	PeerID     string `json:"peer_id,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Commitment uint64 `json:"commitment,omitempty"`
	Height     int64  `json:"height,omitempty"`
	Received   string `json:"received,omitempty"`
	Bytes      int    `json:"bytes"`
	DurationMS int64  `json:"duration_ms"`
	File       string `json:"file,omitempty"`
	Unchanged  bool   `json:"unchanged,omitempty"`
	Error      string `json:"error,omitempty"`
}

type recoverSkip struct {
	Vault      string `json:"vault"`
	Holder     string `json:"holder"`
	PeerID     string `json:"peer_id,omitempty"`
	Digest     string `json:"digest"`
	Commitment uint64 `json:"commitment,omitempty"`
	Error      string `json:"error"`
}

// recoverExit carries the exit status of an incomplete recovery.
type recoverExit struct{ err error }

func (e recoverExit) Error() string { return e.err.Error() }
func (e recoverExit) Unwrap() error { return e.err }
func (e recoverExit) ExitCode() int { return exitIncomplete }

func recoverCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recover --out DIR",
		Short: "Recover this node's keyshares from its mnemonic alone",
		Long: "Recover this node's keyshares from its mnemonic alone: read its commitments from the chain and\n" +
			"fetch a copy of each from the holders the chain assigned, or, when the chain does not answer (or with\n" +
			"--no-chain), ask the --bootstrap peers over gossip. Each copy is checked (over the chain: against the\n" +
			"committed Merkle root; over gossip: its sha256), opened with the mnemonic, checked to be a keyshare\n" +
			"of its vault, and written as DIR/localstate-<vault>.json (mode 0600; DIR is created, mode\n" +
			"0700, when the first file is written). A file already there with exactly the recovered bytes is\n" +
			"left as it is and counts as recovered, so running it again is safe; one that differs is refused\n" +
			"unless --force. Progress goes to stderr, a summary to stdout. Over gossip it stops --gossip-grace\n" +
			"after the last holder answered once every vault heard of has a verified copy; when no blob has\n" +
			"come within --gossip-first-wait (a wrong mnemonic); or --gossip-quiet after the last new one.\n" +
			"It warns when this machine's clock is off from the chain's or the holders' by more than nodes\n" +
			"tolerate (recovery itself does not depend on the clock).\n\n" +
			"Exit status: 0 every vault recovered; 2 some vault not recovered (named on stderr, the others\n" +
			"written); 130 interrupted (Ctrl-C, SIGTERM); 1 anything else (bad flags, no mnemonic, chain\n" +
			"unreachable without --bootstrap, no bootstrap peer reachable, no backups found); 3 with --verify,\n" +
			"the chain's answer could not be proven (the RPC may be lying; nothing was fetched or written).\n\n" +
			"With --verify (a trust anchor: --trust-height and --trust-hash, or --genesis) the commitments and\n" +
			"their holders are read from state proven against a header CometBFT's light client verified, never\n" +
			"from the RPC's JSON, and there is no fallback to gossip; only each vault's newest commitment is read.",
		Args: cobra.NoArgs,
	}
	load := mnemonicFlag(cmd)
	f := cmd.Flags()
	out := f.String("out", "", "`DIR` to write localstate-<vault>.json to (created, mode 0700, when the first file is written)")
	rpc := f.StringSlice("rpc", []string{config.Default().Chain.RPC}, "CometBFT RPC `URL` of the ksb chain; with --verify, repeat it: the first is the primary, the others witnesses")
	bootstrap := f.StringSlice("bootstrap", nil, "peer to ask over gossip without the chain, a `MULTIADDR` ending in /p2p/<peer ID> (repeatable, or comma-separated)")
	noChain := f.Bool("no-chain", false, "do not use the chain: recover over gossip from the --bootstrap peers")
	hrp := f.String("hrp", "", "bech32 prefix of node addresses (default: the chain's, else \"thor\")")
	force := f.Bool("force", false, "replace existing keyshare files that differ from the recovered ones")
	asJSON := f.Bool("json", false, "print the report as JSON")
	firstWait := f.Duration("gossip-first-wait", recovery.DefaultGossipFirstWait, "without the chain: stop if no blob comes within this long of the first request (a wrong mnemonic)")
	quiet := f.Duration("gossip-quiet", recovery.DefaultGossipQuiet, "without the chain: stop after this long without a new blob, once one came")
	timeout := f.Duration("gossip-timeout", recovery.DefaultGossipTimeout, "without the chain: stop after this long in all")
	grace := f.Duration("gossip-grace", recovery.DefaultGossipGrace, "without the chain: once every vault heard of has a verified copy, wait this long after the last holder answered for later ones")
	_ = cmd.MarkFlagRequired("out")
	vf := addVerifyFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := vf.check(*rpc); err != nil {
			return err
		}
		if vf.on && *noChain {
			return errors.New("--verify reads the chain: it does not go with --no-chain")
		}
		var verified func(context.Context) (attest.StateGetter, int64, error)
		if vf.on {
			verified = func(ctx context.Context) (attest.StateGetter, int64, error) {
				vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
				defer cancel()
				vc, err := vf.client(vctx, *rpc)
				if err != nil {
					return nil, 0, err
				}
				s, err := vc.Latest(vctx)
				if err != nil {
					return nil, 0, err
				}
				return s.Getter(ctx), s.Height, nil
			}
		}
		m, err := load()
		if err != nil {
			return err
		}
		now, err := testClock()
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		rep, err := recovery.Run(ctx, recovery.Options{
			Mnemonic: m, OutDir: *out, RPC: (*rpc)[0], Bootstrap: *bootstrap, NoChain: *noChain, Verified: verified,
			HRP: *hrp, Force: *force, Progress: cmd.ErrOrStderr(), Now: now,
			GossipQuiet: *quiet, GossipFirstWait: *firstWait, GossipTimeout: *timeout, GossipGrace: *grace,
		})
		if rep != nil {
			w := cmd.OutOrStdout()
			var perr error
			switch {
			case *asJSON:
				perr = printRecoverJSON(w, rep, err)
			case len(rep.Vaults) > 0:
				perr = printRecoverTable(w, rep)
			}
			if perr != nil && err == nil {
				err = perr
			}
			warnClock(cmd.ErrOrStderr(), rep.Clock)
		}
		if ctx.Err() != nil && err != nil {
			// Interrupted: context.Canceled is how it ended, not why.
			what := "nothing was written"
			if rep != nil {
				if n := len(rep.Recovered()); n > 0 {
					what = fmt.Sprintf("%d file(s) were written to %s before", n, *out)
				}
			}
			return exitStatus{err: fmt.Errorf("recovery interrupted; %s", what), code: exitInterrupted}
		}
		if vf.on {
			if nv := notVerified(err); nv != err {
				return nv
			}
		}
		var inc *recovery.IncompleteError
		if errors.As(err, &inc) {
			return recoverExit{err}
		}
		if errors.Is(err, recovery.ErrChainUnreachable) {
			return fmt.Errorf("%w\nTo recover without the chain, ask active nodes over gossip: add --bootstrap /ip4/HOST/tcp/PORT/p2p/PEER-ID\n"+
				"(a node's p2p.listen address and the peer ID ksb keys show gives for it; repeat for several nodes)", err)
		}
		return err
	}
	return cmd
}

// warnClock tells the operator when this machine's clock is beyond what the
// protocols tolerate: the recovery did not depend on it, the node that runs
// next does.
func warnClock(w io.Writer, c *recovery.ClockCheck) {
	if !c.Skewed() {
		return
	}
	dir, off := "ahead of", c.Offset
	if off < 0 {
		dir, off = "behind", -off
	}
	ref := fmt.Sprintf("the chain's latest block (block %d)", c.Height)
	if c.Against == recovery.ClockAgainstHolders {
		ref = fmt.Sprintf("the clocks of the %d holder(s) that answered", c.Samples)
	}
	fmt.Fprintf(w, "warning: this machine's clock is %v %s %s, beyond the ±%v ksb nodes tolerate.\n"+
		"The recovery does not depend on it, but a node run with this clock is not heard by its peers:\n"+
		"set the clock (enable NTP) before starting `ksb node`.\n", off.Round(time.Second), dir, ref, p2p.ClockTolerance)
}

// printRecoverTable prints one row per vault and a closing line.
func printRecoverTable(w io.Writer, rep *recovery.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VAULT\tHOLDER\tBYTES\tTIME\tFILE")
	unchanged := 0
	for _, v := range rep.Vaults {
		if v.Err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\tNOT RECOVERED: %v\n", v.Vault, v.Err)
			continue
		}
		file := v.File
		if v.Unchanged {
			file += " (already present, identical)"
			unchanged++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%s\n", v.Vault, v.Holder, v.Bytes, v.Duration.Round(time.Millisecond), file)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	note := ""
	if unchanged > 0 {
		note = fmt.Sprintf(" (%d already present and identical)", unchanged)
	}
	_, err := fmt.Fprintf(w, "recovered %d of %d vault(s) via %s in %v%s\n",
		len(rep.Recovered()), len(rep.Vaults), rep.Path, rep.Duration.Round(time.Millisecond), note)
	return err
}

// printRecoverJSON prints the report, and the error if any, as JSON.
func printRecoverJSON(w io.Writer, rep *recovery.Report, runErr error) error {
	o := recoverOut{
		Path: rep.Path, Owner: rep.Owner, PeerID: rep.PeerID.String(), Fallback: rep.Fallback, ProvenHeight: rep.ProvenHeight,
		Vaults: []recoverVault{}, Missing: []string{}, Skipped: []recoverSkip{},
		DurationMS: rep.Duration.Milliseconds(),
	}
	if c := rep.Clock; c != nil {
		o.Clock = &recoverClock{OffsetMS: c.Offset.Milliseconds(), Against: c.Against, Height: c.Height, Samples: c.Samples, Skewed: c.Skewed()}
	}
	if runErr != nil {
		o.Error = runErr.Error()
	}
	for _, v := range rep.Vaults {
		rv := recoverVault{
			Vault: v.Vault, Holder: v.Holder, Digest: v.Digest, Commitment: v.Commitment, Height: v.Height,
			Bytes: v.Bytes, DurationMS: v.Duration.Milliseconds(), File: v.File, Unchanged: v.Unchanged,
		}
		if v.Peer != "" {
			rv.PeerID = v.Peer.String()
		}
		if !v.Received.IsZero() {
			rv.Received = v.Received.UTC().Format(time.RFC3339Nano)
		}
		if v.Err != nil {
			rv.Error = v.Err.Error()
			o.Missing = append(o.Missing, v.Vault)
		}
		o.Vaults = append(o.Vaults, rv)
	}
	for _, s := range rep.Skipped {
		rs := recoverSkip{Vault: s.Vault, Holder: s.Holder, Digest: s.Digest, Commitment: s.Commitment, Error: s.Err.Error()}
		if s.Peer != "" {
			rs.PeerID = s.Peer.String()
		}
		o.Skipped = append(o.Skipped, rs)
	}
	return writeJSON(w, o)
}
