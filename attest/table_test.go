package attest_test

import (
	"strings"
	"testing"

	"github.com/ksb-project/ksb/attest"
)

func TestWriteCoverageTable(t *testing.T) {
	cov := &attest.Coverage{Height: 7, Replication: 2, Vaults: []attest.VaultCoverage{{
		PubKey: testVault, Threshold: 2, Replication: 2, Covered: 1, Safe: false,
		Members: []attest.MemberCoverage{
			{Address: addr(0), Holders: []string{addr(1), addr(2)}, Commitment: 4, CommitHeight: 3, LastDrillHeight: 6, LastDrillOK: true,
				Custody: []attest.CustodyCoverage{
					{Holder: addr(1), Status: "fresh", LastProofHeight: 5, Attested: true, Counted: true},
					{Holder: addr(2), Status: "stale", Slot: 1, CopyIndex: 1, Attested: true, Counted: true},
					{Holder: addr(3), Status: "failed", Slot: 2, CopyIndex: 2},
				}},
			{Address: addr(1), Holders: []string{}},
		},
	}}}
	var b strings.Builder
	if err := attest.WriteCoverageTable(&b, cov); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"height 7, replication target r = 2", testVault, "1/2", "no", addr(1) + ", " + addr(2), "0 holders",
		"commitment 4 at 3", "drill at 6 ok", "fresh", "proven at 5", "stale", "failed", "not attested", "no commitment",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	attest.WriteCoverageTable(&b, &attest.Coverage{})
	if !strings.Contains(b.String(), "no live vaults") {
		t.Errorf("empty coverage table: %q", b.String())
	}
}
