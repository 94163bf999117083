package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/attest"
)

func init() { commands = append(commands, coverageCmd) }

// defaultChainRPC is CometBFT's default RPC address.
const defaultChainRPC = "http://127.0.0.1:26657"

func coverageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "coverage",
		Short: "Show, per vault, which members' shares have at least r holders, and whether the vault is safe",
		Long: "Ask the attestation chain for its coverage: for each live vault, every member's distinct active holders,\n" +
			"the replication target r, and safe = (members with at least r holders) >= threshold.\n" +
			"Same as `ksb chain query coverage`.",
		Args: cobra.NoArgs,
	}
	rpc := cmd.Flags().String("rpc", defaultChainRPC, "CometBFT RPC address of a node running the ksb chain")
	vault := cmd.Flags().String("vault", "", "only this vault (public key as `ksb inspect` prints it)")
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runCoverage(cmd.Context(), cmd.OutOrStdout(), *rpc, *vault, *asJSON)
	}
	return cmd
}

// runCoverage is `ksb coverage` and `ksb chain query coverage`.
func runCoverage(ctx context.Context, w io.Writer, rpc, vault string, asJSON bool) error {
	c, err := attest.NewClient(rpc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	cov, err := c.Coverage(ctx, vault)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, cov)
	}
	return writeCoverage(w, cov)
}

func writeCoverage(w io.Writer, cov *attest.Coverage) error { return attest.WriteCoverageTable(w, cov) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
