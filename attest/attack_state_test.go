package attest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
)

// TestAttackAttestationsPerHolderAreBounded (finding 3, an active node gone
// bad): a holder keeps one blob per owner and vault (a new one replaces the
// old), but the chain kept every digest a holder ever attested. One active
// node could attest 4096 made-up digests a block — for real owners of a live
// vault, which the chain accepts — and the state, which the app hash reads
// whole every block, grew without bound: after the 4 blocks of this test
// (16,384 attestations) an empty block took 47 ms to finalize instead of
// 0.07 ms, after 20 blocks 0.26 s, growing by ~13 ms a block for as long as
// the node kept at it; every /coverage and /attestations query read them all
// too. Now an attestation replaces the holder's earlier one of the same owner
// and vault, so a holder has at most one per owner and vault on chain,
// however many it sends.
func TestAttackAttestationsPerHolderAreBounded(t *testing.T) {
	c := newChain(t, testGenesis())
	start := time.Now()
	c.block()
	emptyBefore := time.Since(start)

	bad, honest := testIDs[1], testIDs[2]
	owners := []int{0, 2, 3}
	const blocks = 4
	n := 0
	for range blocks {
		var txs [][]byte
		for range attest.MaxBlockItems / attest.MaxEntries {
			es := make([]attest.Entry, attest.MaxEntries)
			for i := range es {
				es[i] = entry(owners[n%len(owners)], testVault, fmt.Sprintf("made-up %d", n))
				n++
			}
			txs = append(txs, c.sign(bad, &attest.Attest{Entries: es}))
		}
		for i, r := range c.block(txs...) {
			if r.Code != 0 {
				t.Fatalf("bad node's tx %d: code %d: %s", i, r.Code, r.Log)
			}
		}
	}
	start = time.Now()
	c.block()
	emptyAfter := time.Since(start)
	// Honest traffic is untouched: an honest holder's attestation commits
	// and counts.
	c.mustExec(honest, &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "honest")}})

	var held struct{ Attestations []attest.Attestation }
	if r := c.query("/attestations/holder/"+addr(1), &held); r.Code != 0 {
		t.Fatalf("query: %s", r.Log)
	}
	t.Logf("%d attestations sent by one node, %d kept on chain; empty block: %v before, %v after",
		n, len(held.Attestations), emptyBefore.Round(time.Microsecond), emptyAfter.Round(time.Microsecond))
	if len(held.Attestations) > len(owners) {
		t.Fatalf("the chain keeps %d attestations of one holder for %d owners of one vault, want at most %d", len(held.Attestations), len(owners), len(owners))
	}
	// The one kept for each owner is the last one sent.
	last := map[string]bool{}
	for i := n - len(owners); i < n; i++ {
		e := entry(owners[i%len(owners)], testVault, fmt.Sprintf("made-up %d", i))
		last[e.Owner+fmt.Sprintf("%x", e.Digest)] = true
	}
	for _, a := range held.Attestations {
		if !last[a.Owner+a.Digest] {
			t.Fatalf("kept attestation %+v is not the holder's last one for its owner", a)
		}
	}
	cov := c.coverage(testVault)
	for _, m := range cov.Vaults[0].Members {
		if m.Address == addr(0) && len(m.Holders) != 2 {
			t.Fatalf("owner 0 has holders %v, want the bad node and the honest one", m.Holders)
		}
	}
}
