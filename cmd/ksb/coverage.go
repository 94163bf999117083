package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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

func writeCoverage(w io.Writer, cov *attest.Coverage) error {
	fmt.Fprintf(w, "height %d, replication target r = %d\n", cov.Height, cov.Replication)
	if len(cov.Vaults) == 0 {
		_, err := fmt.Fprintln(w, "no live vaults")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VAULT\tTHRESHOLD\tCOVERED\tSAFE")
	for _, v := range cov.Vaults {
		safe := "no"
		if v.Safe {
			safe = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%s\n", v.PubKey, v.Threshold, v.Covered, len(v.Members), safe)
		for _, m := range v.Members {
			holders := "-"
			if len(m.Holders) > 0 {
				holders = strings.Join(m.Holders, ", ")
			}
			fmt.Fprintf(tw, "  %s\t%d holders\t\t%s\n", m.Address, len(m.Holders), holders)
		}
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
