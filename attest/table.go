package attest

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteCoverageTable writes cov as the human-readable table `ksb coverage`
// prints: one line per vault (threshold, members covered, safe) and one per
// member with its holders.
func WriteCoverageTable(w io.Writer, cov *Coverage) error {
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
