package attest_test

import (
	"fmt"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest"
)

// setupVault commits a share of every member of testVault and has every
// holder attest: the vault is safe. It returns member i's commitment id.
func setupVault(t *testing.T, c *chain) []uint64 {
	t.Helper()
	ids := make([]uint64, 4)
	for i := range ids {
		ids[i] = c.commit(i, testVaultIdx, 1000+200*i)
	}
	for _, id := range ids {
		c.attestAll(id)
	}
	if v := c.coverage(testVault).Vaults[0]; !v.Safe || v.Covered != 4 {
		t.Fatalf("after setup: %+v", v)
	}
	return ids
}

// allHolders returns every node that holds a custody of ids.
func allHolders(c *chain, ids []uint64) []string {
	var out []string
	for _, id := range ids {
		for _, cu := range c.commitment(id).Custodies {
			if !slices.Contains(out, cu.Holder) {
				out = append(out, cu.Holder)
			}
		}
	}
	slices.Sort(out)
	return out
}

// proveExcept answers every holder's open challenges except those of the
// custodies in skip.
func (c *chain) proveExcept(holders []string, skip map[attest.CustodyID]bool) {
	c.t.Helper()
	var txs [][]byte
	for _, h := range holders {
		var ps []attest.SegmentProof
		var epoch uint64
		for _, ch := range c.challenges(h) {
			id := attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}
			if !skip[id] {
				ps = append(ps, c.proof(id, ch.Segment))
				epoch = ch.Epoch
			}
		}
		if len(ps) > 0 {
			txs = append(txs, c.sign(idOf(h), &attest.Prove{Epoch: epoch, Proofs: ps}))
		}
	}
	for _, r := range c.block(txs...) {
		if r.Code != 0 {
			c.t.Fatalf("prove: code %d: %s", r.Code, r.Log)
		}
	}
}

func eventsOf(evs []abci.Event, typ string) []map[string]string {
	var out []map[string]string
	for _, ev := range evs {
		if ev.Type == typ {
			m := map[string]string{}
			for _, a := range ev.Attributes {
				m[a.Key] = a.Value
			}
			out = append(out, m)
		}
	}
	return out
}

// TestMissedChallengesFailACustody: a holder that keeps answering its other
// challenges but never one custody's: that custody is stale after the first
// epoch's window and failed after the second (2R epochs with R = 1);
// coverage drops to the truth, safe flips (threshold = all members), and
// the same block assigns a replacement and a source; once the replacement
// attests the vault is safe again.
func TestMissedChallengesFailACustody(t *testing.T) {
	g := testGenesis()
	g.Vaults[0].Threshold = 4
	c := newChain(t, g)
	ids := setupVault(t, c)
	lost := attest.CustodyID{Commitment: ids[0], Slot: 1}
	loser := c.custody(lost).Holder
	holders := allHolders(c, ids)
	skip := map[attest.CustodyID]bool{lost: true}

	c.until(epochStart(1))
	c.proveExcept(holders, skip)
	if cu := c.custody(lost); cu.Status != "pending" {
		t.Fatalf("before the window closes: %s", cu.Status)
	}
	c.until(epochStart(1) + testCustody.ProofWindow) // the window closes at the end of this block
	if cu := c.custody(lost); cu.Status != "stale" {
		t.Fatalf("after one missed window: %s, want stale", cu.Status)
	}
	m := c.member(0)
	if !slices.Contains(m.Holders, loser) || !c.coverage(testVault).Vaults[0].Safe {
		t.Fatalf("a stale custody still counts: %+v", m)
	}
	for _, cu := range c.member(1).Custody {
		if cu.Status != "fresh" || cu.LastProofHeight != epochStart(1)+1 {
			t.Errorf("member 1's custody %+v, want fresh, proven at %d", cu, epochStart(1)+1)
		}
	}

	c.until(epochStart(2))
	if chs := c.challenges(loser); !slices.ContainsFunc(chs, func(ch attest.Challenge) bool { return ch.ID == attest.PackCustody(lost) }) {
		t.Fatalf("the stale custody is not challenged again: %+v", chs)
	}
	c.proveExcept(holders, skip)
	closing := epochStart(2) + testCustody.ProofWindow
	c.until(closing)
	cu := c.custody(lost)
	if cu.Status != "failed" || cu.FailReason != "missed" || cu.FailedHeight != closing {
		t.Fatalf("after two missed windows: %+v", cu.Custody)
	}
	if n := c.node(loser); n.FailedHeight != 0 {
		t.Fatalf("the holder answered its other challenges but failed as a whole: %+v", n)
	}
	v := c.coverage(testVault).Vaults[0]
	m = v.Members[0]
	if v.Safe || v.Covered != 3 || slices.Contains(m.Holders, loser) || len(m.Holders) != 2 {
		t.Fatalf("coverage after the failure: safe %v covered %d holders %v", v.Safe, v.Covered, m.Holders)
	}
	// The same block assigned a replacement (slot 3) and a source.
	rep := c.custody(attest.CustodyID{Commitment: ids[0], Slot: 3})
	if rep.AssignedHeight != closing || rep.Source == "" || rep.Status != "pending" || rep.Attested {
		t.Fatalf("replacement %+v", rep.Custody)
	}
	assigns := eventsOf(c.last.Events, "ksb.assign")
	if len(assigns) != 1 || assigns[0]["holder"] != rep.Holder || assigns[0]["source"] != rep.Source {
		t.Fatalf("block events %+v", assigns)
	}
	before := c.commitment(ids[0]).Custodies
	if rep.Holder == addr(0) || slices.ContainsFunc(before[:3], func(x attest.Custody) bool { return x.Holder == rep.Holder }) {
		t.Fatalf("replacement %s is the owner or a holder already", rep.Holder)
	}
	i := slices.IndexFunc(before, func(x attest.Custody) bool { return x.Holder == rep.Source })
	if i < 0 || before[i].Status == "failed" || !before[i].Attested || before[i].CopyIndex != rep.CopyIndex {
		t.Fatalf("source %s for replacement copy %d among %+v", rep.Source, rep.CopyIndex, before)
	}
	var bySource, byReplacement struct{ Repairs []attest.Repair }
	c.query("/repairs/source/"+rep.Source, &bySource)
	c.query("/repairs/replacement/"+rep.Holder, &byReplacement)
	if len(bySource.Repairs) != 1 || !equalJSON(t, bySource.Repairs, byReplacement.Repairs) ||
		bySource.Repairs[0].Replacement != rep.Holder || bySource.Repairs[0].Root != rep.Root {
		t.Fatalf("repairs by source %+v, by replacement %+v", bySource.Repairs, byReplacement.Repairs)
	}

	// The replacement receives the source's copy and attests: safe again.
	c.mustExec(idOf(rep.Holder), &attest.Attest{Custodies: []attest.CustodyID{{Commitment: ids[0], Slot: 3}}})
	if v := c.coverage(testVault).Vaults[0]; !v.Safe || len(v.Members[0].Holders) != 3 {
		t.Fatalf("after the replacement attested: %+v", v)
	}
	c.query("/repairs/source/"+rep.Source, &bySource)
	if len(bySource.Repairs) != 0 {
		t.Fatalf("a delivered repair is still listed: %+v", bySource.Repairs)
	}
	// It is challenged like any holder from the next epoch on.
	c.until(epochStart(3))
	if chs := c.challenges(rep.Holder); !slices.ContainsFunc(chs, func(ch attest.Challenge) bool { return ch.Commitment == ids[0] && ch.Slot == 3 }) {
		t.Fatalf("the replacement is not challenged: %+v", chs)
	}
	c.prove(rep.Holder)
	if cu := c.custody(attest.CustodyID{Commitment: ids[0], Slot: 3}); cu.Status != "fresh" {
		t.Fatalf("the replacement's proof: %+v", cu.Custody)
	}
}

func (c *chain) node(a string) attest.Node {
	c.t.Helper()
	var ns struct{ Nodes []attest.Node }
	c.query("/nodes", &ns)
	for _, n := range ns.Nodes {
		if n.Address == a {
			return n
		}
	}
	c.t.Fatalf("node %s is not active", a)
	return attest.Node{}
}

// TestHolderThatLostEverythingFails: a holder that answers none of its
// challenges fails as a whole at the end of the second epoch's window: all
// its custodies fail and are replaced in that block, and it is not assigned
// new custodies for RoundEpochs epochs.
func TestHolderThatLostEverythingFails(t *testing.T) {
	c := newChain(t, testGenesis())
	ids := setupVault(t, c)
	holders := allHolders(c, ids)
	// The holder with the most custodies loses everything after epoch 0.
	count := map[string]int{}
	for _, id := range ids {
		for _, cu := range c.commitment(id).Custodies {
			count[cu.Holder]++
		}
	}
	dead := holders[0]
	for _, h := range holders {
		if count[h] > count[dead] {
			dead = h
		}
	}
	alive := slices.DeleteFunc(slices.Clone(holders), func(h string) bool { return h == dead })
	for e := int64(1); e <= 2; e++ {
		c.until(epochStart(e))
		c.prove(alive...)
		c.until(epochStart(e) + testCustody.ProofWindow)
	}
	closing := epochStart(2) + testCustody.ProofWindow
	if n := c.node(dead); n.FailedHeight != closing {
		t.Fatalf("dead holder %+v, want failed at %d", n, closing)
	}
	if evs := eventsOf(c.last.Events, "ksb.holder_failed"); len(evs) != 1 || evs[0]["holder"] != dead {
		t.Fatalf("holder_failed events %+v", evs)
	}
	for _, a := range eventsOf(c.last.Events, "ksb.assign") {
		if a["holder"] == dead || a["source"] == dead {
			t.Errorf("the failing holder is a replacement or source in its failure's block: %+v", a)
		}
	}
	var held struct{ Custodies []attest.HeldCustody }
	c.query("/custodies/holder/"+dead, &held)
	if len(held.Custodies) != count[dead] {
		t.Fatalf("%d custodies, want %d", len(held.Custodies), count[dead])
	}
	for _, hc := range held.Custodies {
		if hc.Status != "failed" || hc.FailedHeight != closing {
			t.Errorf("custody %+v", hc.Custody)
		}
		// Each was replaced in the same block.
		cm := c.commitment(hc.Commitment)
		if !slices.ContainsFunc(cm.Custodies, func(x attest.Custody) bool { return x.Source != "" && x.AssignedHeight == closing }) {
			t.Errorf("commitment %d has no replacement assigned at %d: %+v", hc.Commitment, closing, cm.Custodies)
		}
	}
	for _, m := range c.coverage(testVault).Vaults[0].Members {
		if slices.Contains(m.Holders, dead) {
			t.Errorf("member %s still counts the failed holder", m.Address)
		}
	}
	// No new custodies for it: it is not eligible until RoundEpochs epochs
	// after the one it failed in.
	for i := range 6 {
		id := c.commit(i%4, testVaultIdx, 500)
		if len(c.heldBy(id, dead)) != 0 {
			t.Fatalf("commitment %d assigned the failed holder", id)
		}
	}
}

// TestRepairOnRelease: a release fails the custody and the same block
// assigns a replacement and a source; if the replacement has not attested
// RepairWindow blocks later, another source is drawn (another counted
// holder); the repair is listed for source and replacement until the
// replacement attests.
func TestRepairOnRelease(t *testing.T) {
	c := newChain(t, testGenesis())
	id := c.commit(0, testVaultIdx, 1500)
	c.attestAll(id)
	rel := attest.CustodyID{Commitment: id, Slot: 2}
	holder := c.custody(rel).Holder
	res := c.mustExec(idOf(holder), &attest.Release{Custodies: []attest.CustodyID{rel}})
	h := c.height
	if cu := c.custody(rel); cu.Status != "failed" || cu.FailReason != "released" {
		t.Fatalf("released custody %+v", cu.Custody)
	}
	as := (&attest.TxResult{Events: res.Events}).Assignments()
	if len(as) != 1 || as[0].Custody != (attest.CustodyID{Commitment: id, Slot: 3}) || as[0].Source == "" {
		t.Fatalf("assignments in the release's result: %+v", as)
	}
	repID := as[0].Custody
	rep := c.custody(repID)
	first := rep.Source
	if rep.SourceDeadline != h+testCustody.RepairWindow || rep.AttestDeadline != h+testCustody.AttestWindow {
		t.Fatalf("replacement %+v", rep.Custody)
	}
	c.until(rep.SourceDeadline)
	rep = c.custody(repID)
	if rep.Source == first || rep.Source == "" || rep.SourceDeadline != h+2*testCustody.RepairWindow {
		t.Fatalf("after the source's deadline: source %s (was %s), deadline %d", rep.Source, first, rep.SourceDeadline)
	}
	if evs := eventsOf(c.last.Events, "ksb.source"); len(evs) != 1 || evs[0]["source"] != rep.Source {
		t.Fatalf("source events %+v", evs)
	}
	var byFirst, bySecond struct{ Repairs []attest.Repair }
	c.query("/repairs/source/"+first, &byFirst)
	c.query("/repairs/source/"+rep.Source, &bySecond)
	if len(byFirst.Repairs) != 0 || len(bySecond.Repairs) != 1 || bySecond.Repairs[0].CopyIndex != rep.CopyIndex {
		t.Fatalf("repairs of the old source %+v, of the new %+v", byFirst.Repairs, bySecond.Repairs)
	}
	c.mustExec(idOf(rep.Holder), &attest.Attest{Custodies: []attest.CustodyID{repID}})
	if m := c.member(0); len(m.Holders) != 3 || !slices.Contains(m.Holders, rep.Holder) {
		t.Fatalf("member 0 after the repair: %+v", m)
	}
	// Releasing again changes nothing; releasing a custody that is not
	// yours is refused.
	c.mustExec(idOf(holder), &attest.Release{Custodies: []attest.CustodyID{rel}})
	if r := c.exec(idOf(holder), &attest.Release{Custodies: []attest.CustodyID{repID}}); r.Code != attest.CodeNotAssigned {
		t.Fatalf("release of another's custody: code %d (%s)", r.Code, r.Log)
	}
}

// TestRepairOnChurnAndOwnerAsSource: a holder churned out fails its
// custodies and the Churn's block replaces them; a commitment that no
// holder has attested yet gets the owner as its repair source, for a copy
// no live custody holds.
func TestRepairOnChurnAndOwnerAsSource(t *testing.T) {
	c := newChain(t, testGenesis())
	attested := c.commit(0, testVaultIdx, 800)
	c.attestAll(attested)
	fresh := c.commit(1, testVaultIdx, 900) // nobody attests it
	gone := c.custody(attest.CustodyID{Commitment: attested, Slot: 0}).Holder
	res := c.mustExec(authority(), &attest.Churn{RemoveNodes: []string{gone}})
	fails := eventsOf(res.Events, "ksb.fail")
	assigns := eventsOf(res.Events, "ksb.assign")
	if len(fails) == 0 || len(fails) != len(assigns) {
		t.Fatalf("churn events: %d failures, %d assignments", len(fails), len(assigns))
	}
	for _, f := range fails {
		if f["holder"] != gone || f["reason"] != "left" {
			t.Errorf("failure %+v", f)
		}
	}
	for _, a := range assigns {
		if a["holder"] == gone || a["source"] == gone {
			t.Errorf("assignment to or from the departed node: %+v", a)
		}
	}
	if m := c.member(0); len(m.Holders) != 2 || slices.Contains(m.Holders, gone) {
		t.Fatalf("member 0 after the churn: %+v", m)
	}
	// Fail one of the unattested commitment's custodies: with no counted
	// holder, the owner is the source, for the released copy's index.
	rel := attest.CustodyID{Commitment: fresh, Slot: 1}
	if c.custody(rel).Status == "failed" {
		rel.Slot = 2
	}
	rh := c.custody(rel).Holder
	res = c.mustExec(idOf(rh), &attest.Release{Custodies: []attest.CustodyID{rel}})
	as := (&attest.TxResult{Events: res.Events}).Assignments()
	if len(as) != 1 || as[0].Source != addr(1) || as[0].CopyIndex != uint32(rel.Slot) {
		t.Fatalf("repair of an unattested commitment: %+v", as)
	}
	var owner struct{ Repairs []attest.Repair }
	c.query("/repairs/source/"+addr(1), &owner)
	if len(owner.Repairs) != 1 || owner.Repairs[0].Replacement != as[0].Holder {
		t.Fatalf("owner's repairs: %+v", owner.Repairs)
	}
}

// TestAttestDeadline: an assigned holder that never attests fails at its
// deadline and is replaced, from a holder that did attest.
func TestAttestDeadline(t *testing.T) {
	g := testGenesis()
	g.EpochBlocks, g.ProofWindow = 100, 50 // no epoch before the deadline
	c := newChain(t, g)
	id := c.commit(0, testVaultIdx, 700)
	assigned := c.height
	cm := c.commitment(id)
	var txs [][]byte
	for _, cu := range cm.Custodies[1:] { // slot 0 never attests
		txs = append(txs, c.sign(idOf(cu.Holder), &attest.Attest{Custodies: []attest.CustodyID{{Commitment: id, Slot: cu.Slot}}}))
	}
	c.block(txs...)
	c.until(assigned + testCustody.AttestWindow)
	cu := c.custody(attest.CustodyID{Commitment: id, Slot: 0})
	if cu.Status != "failed" || cu.FailReason != "attest_timeout" {
		t.Fatalf("unattested custody at its deadline: %+v", cu.Custody)
	}
	rep := c.custody(attest.CustodyID{Commitment: id, Slot: 3})
	if rep.Source != cm.Custodies[1].Holder && rep.Source != cm.Custodies[2].Holder {
		t.Fatalf("replacement's source %s is not an attested holder", rep.Source)
	}
}

// TestDrills: an owner's drill is recorded in coverage; a second one
// within DrillInterval is refused; a failed drill fails the custody and
// repairs it; nobody drills another owner's custody.
func TestDrills(t *testing.T) {
	c := newChain(t, testGenesis())
	id := c.commit(0, testVaultIdx, 600)
	c.attestAll(id)
	first := attest.CustodyID{Commitment: id, Slot: 0}
	c.mustExec(testIDs[0], &attest.Drill{Custody: first, Result: attest.DrillOK, Millis: 120})
	okAt := c.height
	if m := c.member(0); m.LastDrillHeight != okAt || !m.LastDrillOK {
		t.Fatalf("member 0 after an ok drill: %+v", m)
	}
	second := attest.CustodyID{Commitment: id, Slot: 1}
	if r := c.exec(testIDs[0], &attest.Drill{Custody: second, Result: attest.DrillBadCopy}); r.Code != attest.CodeRateLimited {
		t.Fatalf("second drill within the interval: code %d (%s)", r.Code, r.Log)
	}
	holder := c.custody(first).Holder
	if r := c.exec(idOf(holder), &attest.Drill{Custody: first, Result: attest.DrillOK}); r.Code != attest.CodeNotAssigned {
		t.Fatalf("drill by a holder of another's commitment: code %d (%s)", r.Code, r.Log)
	}
	c.until(okAt + testCustody.DrillInterval - 1)
	res := c.mustExec(testIDs[0], &attest.Drill{Custody: second, Result: attest.DrillBadCopy, Millis: 80})
	cu := c.custody(second)
	if cu.Status != "failed" || cu.FailReason != "drill" || cu.LastDrillOK || cu.LastDrillHeight != c.height {
		t.Fatalf("custody after a failed drill: %+v", cu.Custody)
	}
	if as := (&attest.TxResult{Events: res.Events}).Assignments(); len(as) != 1 || as[0].Source == "" {
		t.Fatalf("a failed drill's repair: %+v", as)
	}
	m := c.member(0)
	if m.LastDrillHeight != c.height || m.LastDrillOK || len(m.Holders) != 2 {
		t.Fatalf("member 0 after a failed drill: %+v", m)
	}
}

// TestRetentionKeepsStateBounded runs 12 churns: each creates a vault of
// four members, who commit, their holders attest and prove, and retires
// the previous vault; halfway, members also commit a second version of a
// share (superseding the first). State keys and each holder's custodies
// stay bounded: retired and superseded commitments are deleted
// RetentionBlocks after.
func TestRetentionKeepsStateBounded(t *testing.T) {
	c := newChain(t, testGenesis())
	const churns = 12
	var sizes []int
	prevVault := testVault
	maxHeld := 0
	for n := 1; n <= churns; n++ {
		vault := fmt.Sprintf("thorpub1addwnpepqchurn%d", n)
		c.mustExec(authority(), &attest.Churn{
			CreateVaults: []attest.VaultSpec{{PubKey: vault, Members: []string{addr(0), addr(1), addr(2), addr(3)}, Threshold: 3}},
			RetireVaults: []string{prevVault},
		})
		prevVault = vault
		idx := uint64(n + 1)
		var ids []uint64
		for i := range 4 {
			ids = append(ids, c.commit(i, idx, 400))
			if n%2 == 0 {
				ids = append(ids, c.commit(i, idx, 420)) // supersedes the one before
			}
		}
		for _, id := range ids {
			c.attestAll(id)
		}
		// A whole epoch with proofs.
		e := (c.height-1)/testCustody.EpochBlocks + 1
		c.until(epochStart(e))
		var hs []string
		for i := range nGenesis {
			hs = append(hs, addr(i))
		}
		c.prove(hs...)
		c.until(epochStart(e) + testCustody.EpochBlocks - 1)
		if v := c.coverage(vault).Vaults[0]; !v.Safe {
			t.Fatalf("churn %d: vault not safe: %+v", n, v)
		}
		keys, err := c.app.StateKeys()
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, k := range keys {
			total += k
		}
		sizes = append(sizes, total)
		for i := range nGenesis {
			var held struct{ Custodies []attest.HeldCustody }
			c.query("/custodies/holder/"+addr(i), &held)
			maxHeld = max(maxHeld, len(held.Custodies))
		}
		t.Logf("churn %d: height %d, %d state keys %v", n, c.height, total, keys)
	}
	// Each churn adds 4–8 commitments of 3 custodies; retention is 20
	// blocks and a churn takes about 20, so at most the last two or three
	// churns' commitments are in state. Without deletion the state would
	// grow by ~60 keys a churn.
	last := sizes[len(sizes)-1]
	if peak := slices.Max(sizes[3:]); last > sizes[3]+40 || peak > sizes[3]+60 {
		t.Fatalf("state keys per churn %v: not bounded", sizes)
	}
	if maxHeld > 30 {
		t.Fatalf("a holder had %d custodies in state at once", maxHeld)
	}
	var vaults struct{ Vaults []attest.Vault }
	c.query("/vaults", &vaults)
	if len(vaults.Vaults) > 3 {
		t.Fatalf("%d vaults in state after %d churns", len(vaults.Vaults), churns)
	}
}

// TestVersionsAreBounded: an owner that commits a vault's share again and
// again keeps at most MaxSupersededVersions superseded versions in state
// besides its live one, however fast it commits.
func TestVersionsAreBounded(t *testing.T) {
	c := newChain(t, testGenesis())
	var ids []uint64
	for range 6 {
		ids = append(ids, c.commit(0, testVaultIdx, 300))
	}
	var owned struct{ Commitments []attest.Commitment }
	c.query("/commitments/owner/"+addr(0), &owned)
	if len(owned.Commitments) != 1+attest.MaxSupersededVersions {
		t.Fatalf("%d commitments in state, want %d", len(owned.Commitments), 1+attest.MaxSupersededVersions)
	}
	for i, cm := range owned.Commitments {
		want := ids[len(ids)-len(owned.Commitments)+i]
		if cm.ID != want || cm.Live != (i == len(owned.Commitments)-1) {
			t.Errorf("commitment %d: id %d live %v, want id %d", i, cm.ID, cm.Live, want)
		}
	}
	if r := c.query("/commitment/"+itoa(ids[0]), nil); r.Code != attest.CodeNotFound {
		t.Fatalf("the oldest version is still in state: code %d", r.Code)
	}
	for i := range nGenesis {
		var held struct{ Custodies []attest.HeldCustody }
		c.query("/custodies/holder/"+addr(i), &held)
		for _, hc := range held.Custodies {
			if hc.Commitment == ids[0] || hc.Commitment == ids[1] || hc.Commitment == ids[2] {
				t.Errorf("holder %d still has a custody of deleted commitment %d", i, hc.Commitment)
			}
		}
	}
	if m := c.member(0); m.Commitment != ids[5] {
		t.Fatalf("coverage counts commitment %d, want the newest %d", m.Commitment, ids[5])
	}
}

// TestUndeliveredCommitmentIsNotRepairedFromItsOwner: when no holder ever
// attests a commitment (its owner never delivered the copies), the
// custodies time out and fail, and no replacement is assigned with the
// owner as its source: that would only repeat every attest_window. Had a
// holder attested, it would be the source (TestAttestDeadline).
func TestUndeliveredCommitmentIsNotRepairedFromItsOwner(t *testing.T) {
	g := testGenesis()
	g.EpochBlocks, g.ProofWindow = 100, 50
	c := newChain(t, g)
	id := c.commit(0, testVaultIdx, 400)
	c.until(c.height + testCustody.AttestWindow)
	cm := c.commitment(id)
	if len(cm.Custodies) != 3 {
		t.Fatalf("custodies %+v, want the original 3 only", cm.Custodies)
	}
	for _, cu := range cm.Custodies {
		if cu.Status != "failed" || cu.FailReason != "attest_timeout" {
			t.Errorf("custody %+v", cu)
		}
	}
	var repairs struct{ Repairs []attest.Repair }
	c.query("/repairs/source/"+addr(0), &repairs)
	if len(repairs.Repairs) != 0 {
		t.Fatalf("the owner is a source: %+v", repairs.Repairs)
	}
}

// TestSourceThatLeavesIsReplacedAtOnce: a repair's source churned out is
// replaced in the Churn's block, not at its deadline.
func TestSourceThatLeavesIsReplacedAtOnce(t *testing.T) {
	c := newChain(t, testGenesis())
	id := c.commit(0, testVaultIdx, 900)
	c.attestAll(id)
	rel := attest.CustodyID{Commitment: id, Slot: 0}
	res := c.mustExec(idOf(c.custody(rel).Holder), &attest.Release{Custodies: []attest.CustodyID{rel}})
	rep := (&attest.TxResult{Events: res.Events}).Assignments()[0]
	res = c.mustExec(authority(), &attest.Churn{RemoveNodes: []string{rep.Source}})
	now := c.custody(rep.Custody)
	if now.Source == rep.Source || now.Source == "" || now.SourceDeadline != c.height+testCustody.RepairWindow {
		t.Fatalf("after its source left: %+v (was %s)", now.Custody, rep.Source)
	}
	if evs := eventsOf(res.Events, "ksb.source"); len(evs) == 0 {
		t.Fatal("no ksb.source event in the Churn's result")
	}
}
