package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/identity"
)

func init() { commands = append(commands, chainCmd) }

const (
	// queryTimeout bounds one chain query: they answer in milliseconds, so
	// 30 s only expires when the node is unreachable or stuck.
	queryTimeout = 30 * time.Second
	// txTimeout bounds a transaction: the client already gives up after
	// attest.MaxCommitWait; the rest covers reading the sequence.
	txTimeout = attest.MaxCommitWait + 15*time.Second
	// chainStartTimeout bounds starting a validator (opening its stores,
	// replaying blocks the application missed).
	chainStartTimeout = 2 * time.Minute
)

func chainCmd() *cobra.Command {
	chain := &cobra.Command{Use: "chain", Short: "Run, query and send transactions to the attestation chain"}
	chain.AddCommand(chainStartCmd(), chainQueryCmd(), chainTxCmd())
	return chain
}

func chainStartCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run one validator of the attestation chain until SIGTERM or SIGINT (logs on stderr)",
		Args:  cobra.NoArgs,
	}
	home := cmd.Flags().String("home", "", "validator home (made by ksb testnet init)")
	level := cmd.Flags().String("log-level", "info", "debug, info, warn or error")
	cmd.MarkFlagRequired("home")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(*level)); err != nil {
			return fmt.Errorf("--log-level %q: %w", *level, err)
		}
		if _, err := attest.LoadHomeConfig(*home); err != nil {
			return fmt.Errorf("%s is not a validator home (make one with `ksb testnet init`): %w", *home, err)
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		startCtx, cancel := context.WithTimeout(ctx, chainStartTimeout)
		defer cancel()
		e, err := attest.StartEmbedded(startCtx, attest.EmbeddedConfig{Home: *home, Logger: logger})
		if err != nil {
			return err
		}
		logger.Info("ksb chain validator running", "home", *home, "chain_id", e.ChainID(), "rpc", e.RPCURL())
		<-ctx.Done()
		stop() // a second signal kills the process during a slow shutdown
		// Stop answers the RPC requests in flight, then stops the node and
		// closes its stores: no request reads a closed store.
		logger.Info("stopping")
		if err := e.Stop(); err != nil {
			return err
		}
		logger.Info("stopped")
		return nil
	}
	return cmd
}

func chainQueryCmd() *cobra.Command {
	what := []string{"nodes", "vaults", "coverage", "commitments", "custodies", "custody", "challenges", "epoch", "params"}
	cmd := &cobra.Command{
		Use: "query " + strings.Join(what, "|"),
		Short: "Query the attestation chain (nodes, vaults, coverage [--vault V], commitments --owner A, " +
			"custodies --holder A, custody --custody C/S, challenges --holder A, epoch, params)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: what,
	}
	rpc := cmd.Flags().String("rpc", defaultChainRPC, "CometBFT RPC address of a node running the ksb chain")
	vault := cmd.Flags().String("vault", "", "coverage: only this vault")
	owner := cmd.Flags().String("owner", "", "commitments: of this owner address")
	holder := cmd.Flags().String("holder", "", "custodies, challenges: of this holder address")
	cust := cmd.Flags().String("custody", "", "custody: this custody, as COMMITMENT/SLOT")
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		q := args[0]
		if *vault != "" && q != "coverage" {
			return errors.New("--vault goes with `coverage`")
		}
		if *owner != "" && q != "commitments" {
			return errors.New("--owner goes with `commitments`")
		}
		if *holder != "" && q != "custodies" && q != "challenges" {
			return errors.New("--holder goes with `custodies` and `challenges`")
		}
		if *cust != "" && q != "custody" {
			return errors.New("--custody goes with `custody`")
		}
		if q == "coverage" {
			_, err := runCoverage(cmd.Context(), cmd.OutOrStdout(), *rpc, *vault, *asJSON)
			return err
		}
		c, err := attest.NewClient(*rpc)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), queryTimeout)
		defer cancel()
		w := cmd.OutOrStdout()
		switch q {
		case "nodes":
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(w, map[string]any{"nodes": nodes})
			}
			return writeTable(w, "ADDRESS\tACCOUNT\tPEER ID\tMULTIADDRS", len(nodes), func(i int) string {
				n := nodes[i]
				return fmt.Sprintf("%s\t%d\t%s\t%s", n.Address, n.Account, n.PeerID, strings.Join(n.Multiaddrs, " "))
			})
		case "vaults":
			vaults, err := c.Vaults(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(w, map[string]any{"vaults": vaults})
			}
			return writeTable(w, "VAULT\tINDEX\tTHRESHOLD\tMEMBERS\tSTATUS", len(vaults), func(i int) string {
				v := vaults[i]
				status := "live"
				if v.Retired {
					status = fmt.Sprintf("retired at %d", v.RetiredHeight)
				}
				return fmt.Sprintf("%s\t%d\t%d\t%d\t%s", v.PubKey, v.Index, v.Threshold, len(v.Members), status)
			})
		case "commitments":
			if *owner == "" {
				return errors.New("commitments needs --owner")
			}
			cs, err := c.CommitmentsByOwner(ctx, *owner)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(w, map[string]any{"commitments": cs})
			}
			var rows []string
			for _, cm := range cs {
				live := "live"
				if !cm.Live {
					live = "superseded or retired"
				}
				for _, cu := range cm.Custodies {
					rows = append(rows, fmt.Sprintf("%d\t%s\t%d/%d\t%s\t%d\t%s\t%s\t%d", cm.ID, cm.Vault, cu.Slot, cu.CopyIndex, cu.Holder, cm.CommitHeight, live, cu.Status, cu.LastProofHeight))
				}
			}
			return writeTable(w, "COMMITMENT\tVAULT\tSLOT/COPY\tHOLDER\tHEIGHT\tCOMMITMENT STATE\tSTATUS\tLAST PROOF", len(rows), func(i int) string { return rows[i] })
		case "custodies":
			if *holder == "" {
				return errors.New("custodies needs --holder")
			}
			hs, err := c.CustodiesByHolder(ctx, *holder)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(w, map[string]any{"custodies": hs})
			}
			return writeTable(w, "CUSTODY\tCOPY\tOWNER\tVAULT\tSTATUS\tATTESTED\tLAST PROOF", len(hs), func(i int) string {
				h := hs[i]
				return fmt.Sprintf("%d/%d\t%d\t%s\t%s\t%s\t%v\t%d", h.Commitment, h.Slot, h.CopyIndex, h.Owner, h.Vault, h.Status, h.Attested, h.LastProofHeight)
			})
		case "custody":
			id, err := parseCustody(*cust)
			if err != nil {
				return err
			}
			hc, err := c.Custody(ctx, id)
			if err != nil {
				return err
			}
			return writeJSON(w, hc)
		case "challenges":
			if *holder == "" {
				return errors.New("challenges needs --holder")
			}
			chs, err := c.Challenges(ctx, *holder)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(w, map[string]any{"challenges": chs})
			}
			return writeTable(w, "EPOCH\tCUSTODY\tSEGMENT\tDEADLINE", len(chs), func(i int) string {
				ch := chs[i]
				return fmt.Sprintf("%d\t%d/%d\t%d\t%d", ch.Epoch, ch.Commitment, ch.Slot, ch.Segment, ch.Deadline)
			})
		case "epoch":
			ep, err := c.Epoch(ctx)
			if err != nil {
				return err
			}
			return writeJSON(w, ep)
		case "params":
			p, err := c.Params(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(w, p)
			}
			_, err = fmt.Fprintf(w, "chain_id:    %s\nauthority:   %s (%s)\nreplication: %d\nhrp:         %s\n"+
				"strategy:    %s\nepoch:       %d blocks (proof window %d, round of %d epochs)\n"+
				"windows:     attest %d, repair %d, retention %d, drill interval %d blocks\n",
				p.ChainID, p.AuthorityAddress, p.Authority, p.Replication, p.HRP,
				p.Strategy, p.EpochBlocks, p.ProofWindow, p.RoundEpochs,
				p.AttestWindow, p.RepairWindow, p.RetentionBlocks, p.DrillInterval)
			return err
		}
		return fmt.Errorf("unknown query %q: want %s", q, strings.Join(what, ", "))
	}
	return cmd
}

// parseCustody reads a custody id written COMMITMENT/SLOT.
func parseCustody(s string) (attest.CustodyID, error) {
	c, sl, ok := strings.Cut(s, "/")
	cn, err1 := strconv.ParseUint(c, 10, 64)
	sn, err2 := strconv.ParseUint(sl, 10, 64)
	if !ok || err1 != nil || err2 != nil || cn == 0 || sn >= attest.MaxSlots {
		return attest.CustodyID{}, fmt.Errorf("custody %q: want COMMITMENT/SLOT, as ksb chain query commitments shows it", s)
	}
	return attest.CustodyID{Commitment: cn, Slot: sn}, nil
}

func writeTable(w io.Writer, header string, n int, row func(int) string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for i := range n {
		fmt.Fprintln(tw, row(i))
	}
	return tw.Flush()
}

func chainTxCmd() *cobra.Command {
	tx := &cobra.Command{Use: "tx", Short: "Sign and send a transaction to the attestation chain (operator tools)"}
	tx.AddCommand(chainTxEntryCmd("attest"), chainTxEntryCmd("release"), chainTxChurnCmd())
	return tx
}

// chainTxEntryCmd is `ksb chain tx attest` and `ksb chain tx release`.
func chainTxEntryCmd(kind string) *cobra.Command {
	cmd := &cobra.Command{
		Use: kind + " --home H --custody C/S [--custody C/S ...]",
		Short: "Sign, as the node of --home, that it " + map[string]string{"attest": "holds its copy of", "release": "no longer holds its copy of"}[kind] +
			" custodies the chain assigned it",
		Long: "An operator tool: the daemon attests and releases by itself. The chain refuses (code 16) a custody\n" +
			"not assigned to the signer; a release fails the custody, and the chain assigns a replacement.",
		Args: cobra.NoArgs,
	}
	home := cmd.Flags().String("home", "", "node home (config.toml and mnemonic)")
	rpc := cmd.Flags().String("rpc", "", "chain RPC address (default: chain.rpc of the node's config.toml)")
	ids := cmd.Flags().StringSlice("custody", nil, "custody as COMMITMENT/SLOT; repeat or separate with commas")
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	for _, f := range []string{"home", "custody"} {
		cmd.MarkFlagRequired(f)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var cs []attest.CustodyID
		for _, s := range *ids {
			id, err := parseCustody(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			cs = append(cs, id)
		}
		var msg attest.Msg = &attest.Release{Custodies: cs}
		if kind == "attest" {
			msg = &attest.Attest{Custodies: cs}
		}
		return sendTx(cmd, *home, *rpc, msg, *asJSON)
	}
	return cmd
}

func chainTxChurnCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "churn FILE.json",
		Short: "Sign, as the authority of --home, a churn: add/remove nodes, create/retire vaults",
		Long: "FILE is JSON: {\"add_nodes\":[{\"pubkey\":HEX,\"multiaddrs\":[…]}], \"remove_nodes\":[address…],\n" +
			"\"create_vaults\":[{\"pubkey\":…,\"members\":[address…],\"threshold\":t}], \"retire_vaults\":[pubkey…]}.\n" +
			"Applied in that order; vault members must be active once the node changes are applied.",
		Args: cobra.ExactArgs(1),
	}
	home := cmd.Flags().String("home", "", "authority home (holds the mnemonic file)")
	rpc := cmd.Flags().String("rpc", "", "chain RPC address (default: chain.rpc of the home's config.toml, if any)")
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	cmd.MarkFlagRequired("home")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(f, attest.MaxChurnFileSize+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", args[0], err)
		}
		c, err := attest.ParseChurn(b)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		return sendTx(cmd, *home, *rpc, c, *asJSON)
	}
	return cmd
}

// sendTx signs msg with the mnemonic of home and sends it through rpc (or
// the home's configured chain RPC).
func sendTx(cmd *cobra.Command, home, rpc string, msg attest.Msg, asJSON bool) error {
	mnemonicFile := filepath.Join(home, "mnemonic")
	cfgPath := filepath.Join(home, config.FileName)
	if _, err := os.Stat(cfgPath); err == nil {
		c, err := config.Load(cfgPath)
		if err != nil {
			return err
		}
		mnemonicFile = config.Path(home, c.Mnemonic)
		if rpc == "" {
			rpc = c.Chain.RPC
		}
	}
	if rpc == "" {
		return fmt.Errorf("no --rpc, and %s has no config.toml to read chain.rpc from", home)
	}
	m, err := identity.Read(identity.Source{File: mnemonicFile, OnInsecureFile: warnInsecure(cmd)})
	if err != nil {
		return err
	}
	id, err := identity.New(m)
	if err != nil {
		return fmt.Errorf("%s: %w", mnemonicFile, err)
	}
	client, err := attest.NewClient(rpc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), txTimeout)
	defer cancel()
	res, err := attest.NewSender(client, id).Send(ctx, msg)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(cmd.OutOrStdout(), map[string]any{"hash": res.Hash, "height": res.Height})
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s committed in block %d: %s\n", msg.Type(), res.Height, res.Hash)
	return err
}
