package attest

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteCoverageTable writes cov as the human-readable table `ksb coverage`
// prints: one line per vault (threshold, members covered, safe), one per
// member (counted holders, commitment, last drill) and one per custody of
// the member's commitment (holder, status, last proof).
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
			commit := "no commitment"
			if m.Commitment != 0 {
				commit = fmt.Sprintf("commitment %d at %d", m.Commitment, m.CommitHeight)
			}
			drill := "no drill"
			if m.LastDrillHeight != 0 {
				drill = fmt.Sprintf("drill at %d ok", m.LastDrillHeight)
				if !m.LastDrillOK {
					drill = fmt.Sprintf("drill at %d FAILED", m.LastDrillHeight)
				}
			}
			fmt.Fprintf(tw, "  %s\t%d holders\t%s, %s\t%s\n", m.Address, len(m.Holders), commit, drill, holders)
			for _, c := range m.Custody {
				proof := "never proven"
				if c.LastProofHeight != 0 {
					proof = fmt.Sprintf("proven at %d", c.LastProofHeight)
				}
				attested := ""
				if !c.Attested {
					attested = ", not attested"
				}
				fmt.Fprintf(tw, "    slot %d copy %d\t%s\t%s%s\t%s\n", c.Slot, c.CopyIndex, c.Status, proof, attested, c.Holder)
			}
		}
	}
	return tw.Flush()
}
