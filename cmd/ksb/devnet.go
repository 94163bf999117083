package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/devnet"
	"github.com/ksb-project/ksb/envelope"
)

func init() { commands = append(commands, devnetCmd) }

func devnetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run the whole cycle in one process: chain, nodes, backup, coverage, repair, destroy a node, recover it",
		Long: `Starts an embedded single-validator chain and N nodes on 127.0.0.1 with fresh mnemonics,
places real keyshare files (shipped with the binary) as keygen would, waits until every
vault is safe and prints the coverage. With at least r+2 nodes it then stops node0,
destroys one holder of its shares for good (stopped, wiped, churned out) and shows node0's
shares repaired back to r holders without it, with the time it took. Then it destroys
node0 (keyshares and data), recovers it from its mnemonic alone (one share from a
repaired copy), checks every file byte for byte, and prints a summary with timings.
Exits 0 on success. With --keep the network keeps running until Ctrl-C.`,
		Args: cobra.NoArgs,
	}
	var o devnet.RunOptions
	cmd.Flags().IntVar(&o.Nodes, "nodes", devnet.MaxNodes, fmt.Sprintf("number of nodes (%d..%d)", devnet.MinNodes, devnet.MaxNodes))
	cmd.Flags().StringVar(&o.Dir, "dir", "", "directory for the chain and node homes (default: a temporary one, removed at the end)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the network running after the demonstration, until Ctrl-C")
	cmd.Flags().IntVar(&o.WorkFactor, "work-factor", envelope.DefaultWorkFactor, fmt.Sprintf("scrypt work factor the nodes seal with, log2 N (%d..%d)", envelope.MinWorkFactor, envelope.MaxWorkFactor))
	cmd.Flags().BoolVar(&o.AllowLowWorkFactor, "insecure-work-factor", false, fmt.Sprintf("allow --work-factor below %d (a quicker demonstration; cheapens mnemonic guesses)", envelope.MinWorkFactor))
	cmd.Flags().Int64Var(&o.EpochBlocks, "epoch-blocks", 0, fmt.Sprintf("blocks per custody epoch (0: %d); the proof window is half of it", attest.DefaultEpochBlocks))
	verbose := cmd.Flags().Bool("verbose", false, "log the nodes' and chain's activity to stderr")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		var logw io.Writer = io.Discard
		if *verbose {
			logw = cmd.ErrOrStderr()
		}
		if o.WorkFactor < envelope.MinWorkFactor && !o.AllowLowWorkFactor {
			return fmt.Errorf("--work-factor %d is below %d: add --insecure-work-factor for a quick demonstration", o.WorkFactor, envelope.MinWorkFactor)
		}
		o.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))
		o.QUIC = true
		o.Out = cmd.OutOrStdout()
		_, err := devnet.Run(ctx, o)
		return err
	}
	return cmd
}
