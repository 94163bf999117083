package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

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
			"the replication target r, and safe = (members with at least r holders) >= threshold.\n\n" +
			"Exit status, for monitoring (cron, a Prometheus blackbox or script exporter, Nagios):\n" +
			"  0  every vault listed is safe (or there is none)\n" +
			"  2  some vault is not safe; the table (or JSON) is printed and stderr names the vaults\n" +
			"  1  the chain could not be asked (unreachable, bad --rpc)\n" +
			"  3  --verify: the answer could not be proven (a header, signature, proof or value did not verify,\n" +
			"     or a witness disagreed): the RPC may be lying; nothing is printed on stdout\n" +
			"With --exit-zero it exits 0 whatever the coverage, as `ksb chain query coverage` does.\n" +
			"With --verify the coverage is computed here from state read key by key, each read checked against\n" +
			"the app hash of a header the light client verified from your trust anchor (see docs/attestation.md,\n" +
			"\"Verifying an answer\"); --json then adds \"proven\": the height, app hash and header it rests on.\n" +
			"Without --vault the chain lists live vaults only; --vault V checks V even if it is retired.",
		Args: cobra.NoArgs,
	}
	rpc := cmd.Flags().StringSlice("rpc", []string{defaultChainRPC}, "CometBFT RPC `URL` of a node running the ksb chain; with --verify, repeat it: the first is the primary, the others witnesses")
	vault := cmd.Flags().String("vault", "", "only this vault (its public `KEY`, as ksb inspect prints it)")
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	exitZero := cmd.Flags().Bool("exit-zero", false, "exit 0 even when a vault is not safe (only print the coverage)")
	vf := addVerifyFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := vf.check(*rpc); err != nil {
			return err
		}
		var (
			cov *attest.Coverage
			err error
		)
		if vf.on {
			cov, err = runVerifiedCoverage(cmd.Context(), cmd.OutOrStdout(), vf, *rpc, *vault, *asJSON)
		} else {
			cov, err = runCoverage(cmd.Context(), cmd.OutOrStdout(), (*rpc)[0], *vault, *asJSON)
		}
		if err != nil || *exitZero {
			return err
		}
		return unsafeVaults(cov)
	}
	return cmd
}

// exitNotSafe is the exit status of `ksb coverage` when a vault is not
// safe: distinct from 1, which says the coverage could not be read.
const exitNotSafe = 2

// unsafeVaults returns an exitStatus naming the vaults of cov that are not
// safe, or nil.
func unsafeVaults(cov *attest.Coverage) error {
	var bad []string
	for _, v := range cov.Vaults {
		if !v.Safe {
			bad = append(bad, fmt.Sprintf("%s (%d of %d members covered)", v.PubKey, v.Covered, v.Threshold))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return exitStatus{
		err:  fmt.Errorf("%d of %d vault(s) not safe at height %d: %s", len(bad), len(cov.Vaults), cov.Height, strings.Join(bad, ", ")),
		code: exitNotSafe,
	}
}

// runCoverage is `ksb coverage` and `ksb chain query coverage`: it prints
// the coverage and returns it.
func runCoverage(ctx context.Context, w io.Writer, rpc, vault string, asJSON bool) (*attest.Coverage, error) {
	c, err := attest.NewClient(rpc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	cov, err := c.Coverage(ctx, vault)
	if err != nil {
		return nil, err
	}
	if asJSON {
		return cov, writeJSON(w, cov)
	}
	return cov, writeCoverage(w, cov)
}

// runVerifiedCoverage is `ksb coverage --verify`: coverage computed from
// verified state only; the proof's height and app hash are printed with it.
func runVerifiedCoverage(ctx context.Context, w io.Writer, vf *verifyFlags, rpcs []string, vault string, asJSON bool) (*attest.Coverage, error) {
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	vc, err := vf.client(ctx, rpcs)
	if err != nil {
		return nil, err
	}
	s, err := vc.Latest(ctx)
	if err != nil {
		return nil, notVerified(err)
	}
	cov, err := s.Coverage(ctx, vault)
	if err != nil {
		return nil, notVerified(err)
	}
	p := proven(vc, s, rpcs)
	if asJSON {
		return cov, writeJSON(w, struct {
			*attest.Coverage
			Proven provenAt `json:"proven"`
		}{cov, p})
	}
	if err := writeCoverage(w, cov); err != nil {
		return nil, err
	}
	_, err = fmt.Fprintln(w, p)
	return cov, err
}

// verifyTimeout bounds `ksb coverage --verify`: the light client's headers
// and one proven query per key (a few hundred for a 40-member vault, each
// in milliseconds).
const verifyTimeout = 2 * time.Minute

func writeCoverage(w io.Writer, cov *attest.Coverage) error { return attest.WriteCoverageTable(w, cov) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
