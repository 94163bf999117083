package attest_test

import (
	"math"
	"testing"

	"github.com/ksb-project/ksb/attest"
)

// Drill bytes on chain (issue 11 item 3; docs/performance.md, "Chain bytes
// per churn"). The reference network has 120 owners; a churn period is
// attest.DefaultEpochBlocks (3 days of 1 s blocks, THORChain's churn
// interval); the chain accepts one Drill per owner per drill_interval, half
// an epoch by default, so at most two per owner in any window of one churn
// period (drills at h and h + interval; h + 2·interval is the next period).
const (
	refOwners = 120
	// adr004Bytes20 is ADR 004's bytes per churn for 20-party shares
	// (BenchmarkChurnChainBytes: 120 × sealed ECDSA + EdDSA).
	adr004Bytes20 = 3_516_480
)

// drillTx signs a Drill with the given field sizes.
func drillTx(tb testing.TB, account, seq, commitment uint64, millis uint32) []byte {
	tb.Helper()
	b, err := attest.SignTx(testIDs[0], testChainID, testHRP, account, seq,
		&attest.Drill{Custody: attest.CustodyID{Commitment: commitment, Slot: 2}, Result: attest.DrillBadCopy, Millis: millis})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// drillsPerPeriod is the most Drills one owner can post in any churn
// period at the default parameters.
func drillsPerPeriod() int64 {
	interval := int64(attest.DefaultEpochBlocks) / 2 // CustodyParams' default drill_interval
	return (int64(attest.DefaultEpochBlocks) + interval - 1) / interval
}

// TestDrillBytesPerChurnPeriod bounds the chain bytes of drills per churn
// period at the defaults, with every field at its largest encoding: under
// 1 % of ADR 004's bytes.
func TestDrillBytesPerChurnPeriod(t *testing.T) {
	worst := len(drillTx(t, math.MaxUint32, math.MaxUint64, 1<<55, math.MaxUint32))
	perPeriod := int64(worst) * refOwners * drillsPerPeriod()
	if drillsPerPeriod() != 2 {
		t.Errorf("%d drills per owner per churn period at the defaults, want 2", drillsPerPeriod())
	}
	if 100*perPeriod > adr004Bytes20 {
		t.Errorf("drills cost up to %d B per churn period (%d B each), over 1 %% of ADR 004's %d B", perPeriod, worst, adr004Bytes20)
	}
	t.Logf("Drill tx ≤ %d B; ≤ %d B per churn period for %d owners (%.2f %% of ADR 004, 20-party)",
		worst, perPeriod, refOwners, 100*float64(perPeriod)/adr004Bytes20)
}

// BenchmarkDrillChainBytes reports a Drill's bytes on the reference network
// (account 120, sequence 40,000, commitment 70,000, 2.5 s) and at its
// largest, and the bytes drills cost per churn period at the defaults.
//
//	go test -run '^$' -bench DrillChainBytes -benchtime 1x ./attest/
func BenchmarkDrillChainBytes(b *testing.B) {
	var typical, worst int
	for range b.N {
		typical = len(drillTx(b, 120, 40_000, 70_000, 2500))
		worst = len(drillTx(b, math.MaxUint32, math.MaxUint64, 1<<55, math.MaxUint32))
	}
	per := float64(refOwners * drillsPerPeriod())
	b.ReportMetric(float64(typical), "drill-tx-B")
	b.ReportMetric(float64(worst), "drill-tx-max-B")
	b.ReportMetric(float64(drillsPerPeriod()), "drills/owner/churn-period")
	b.ReportMetric(per*float64(typical), "drill-B/churn-period")
	b.ReportMetric(per*float64(worst), "drill-max-B/churn-period")
	b.ReportMetric(100*per*float64(typical)/adr004Bytes20, "vs-adr20-%")
}
