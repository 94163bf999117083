package attest_test

import (
	"testing"

	"github.com/ksb-project/ksb/attest"
)

// TestAttackOwnerVoidsChallengesToFailHonestHolders (an active node gone
// bad, as an owner): an owner that commits three new versions of its share
// for a vault deletes its oldest superseded version at once
// (MaxSupersededVersions = 2), custodies and all. Doing so in the first block
// of an epoch — right after the epoch's challenges are drawn, before any
// holder can answer — deletes the commitment its holders were just
// challenged on: their proofs are refused (no longer in state), and the
// challenge still counted as given and unanswered in the holder's epoch
// tally. Twice in a row, and every holder challenged only on that owner's
// custodies (a new holder, or one with few custodies: from the second epoch
// of a round a holder is given ceil(left / epochs left) challenges, often
// one) missed "every challenge of two epochs" and failed as a whole: all its
// custodies, of every owner, failed and were repaired, and it got no new
// custodies for RoundEpochs epochs. Before the fix, the three honest
// holders here failed (seen). Now a challenge whose custody the chain
// deletes is withdrawn from the holder's tally with it, so the holders keep
// their standing, and an honest owner's next commitment goes to them.
func TestAttackOwnerVoidsChallengesToFailHonestHolders(t *testing.T) {
	g := testGenesis()
	g.Strategy = attest.StrategyVault // holders: the vault's members but the owner
	c := newChain(t, g)
	const size = 700
	attacker := 0
	holders := []string{addr(1), addr(2), addr(3)}
	commitAt := func(h int64) uint64 {
		// Three new versions in the epoch's first block: the version
		// challenged in it is superseded, then deleted.
		c.until(h - 1)
		var txs [][]byte
		var pending [][][]byte
		for range 3 {
			copies, cm := c.newShare(size)
			txs = append(txs, c.sign(testIDs[attacker], &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: cm.Size, Root: cm.Root}}}))
			pending = append(pending, copies)
		}
		res := c.block(txs...)
		var last uint64
		for i, r := range res {
			if r.Code != 0 {
				t.Fatalf("attacker's commit %d: code %d: %s", i, r.Code, r.Log)
			}
			ids := (&attest.TxResult{Events: r.Events}).Commitments()
			c.copies[ids[0]] = pending[i]
			last = ids[0]
		}
		return last
	}
	// proveDeleted makes every holder answer its open challenges with the
	// right proof, built from the copy it holds.
	proveDeleted := func(id uint64) {
		for _, h := range holders {
			var ps []attest.SegmentProof
			epoch := uint64(0)
			for _, ch := range c.challenges(h) {
				if ch.Commitment != id {
					t.Fatalf("%s challenged on %d, want %d", h, ch.Commitment, id)
				}
				ps = append(ps, c.proofFromCopy(attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}, ch.Segment, int(ch.Slot)))
				epoch = ch.Epoch
			}
			if len(ps) == 0 {
				continue // the fix withdrew it
			}
			if r := c.exec(idOf(h), &attest.Prove{Epoch: epoch, Proofs: ps}); r.Code != attest.CodeNoChallenge {
				t.Fatalf("%s's proof of a deleted custody: code %d (%s)", h, r.Code, r.Log)
			}
		}
	}

	x := c.commit(attacker, testVaultIdx, size)
	c.attestAll(x)
	for e := int64(1); e <= 2; e++ {
		w := commitAt(epochStart(e))
		if r := c.query("/commitment/"+itoa(x), nil); r.Code != attest.CodeNotFound {
			t.Fatalf("epoch %d: the challenged commitment %d is still in state", e, x)
		}
		proveDeleted(x)
		c.attestAll(w) // the new version is pushed and attested: challenged next epoch
		x = w
	}
	c.until(epochStart(2) + testCustody.ProofWindow + 1) // epoch 2's window closes

	var nodes struct{ Nodes []attest.Node }
	c.query("/nodes", &nodes)
	failed := 0
	for _, n := range nodes.Nodes {
		for _, h := range holders {
			if n.Address == h && n.FailedHeight != 0 {
				failed++
			}
		}
	}
	t.Logf("an owner deleting its challenged commitment in two epochs' first blocks: %d of %d honest holders failed as a whole", failed, len(holders))
	if failed > 0 {
		t.Fatalf("%d honest holders failed as a whole because an owner deleted the custody they were challenged on", failed)
	}
	// Honest traffic: another owner's commitment goes to the holders, who
	// attest it.
	honest := c.commit(1, testVaultIdx, size)
	cm := c.commitment(honest)
	if len(cm.Custodies) != 3 {
		t.Fatalf("honest commitment got %d holders, want 3", len(cm.Custodies))
	}
	c.attestAll(honest)
}

// TestAttackFalseDrillsAreBounded (an active node gone bad, as an owner):
// an owner posts failing restore drills against the honest holders of its
// own share. What bounds it: a drill is accepted only of the signer's own
// live commitment (another owner's custody: ErrNotAssigned), one per owner
// per DrillInterval (ErrRateLimited); a failed drill fails that one custody
// (which is repaired, never to the same holder again: the commitment's past
// holders are excluded) and nothing else — the holder's standing is
// untouched (no holder-wide failure, still eligible), so an honest owner's
// next commitment goes to it.
func TestAttackFalseDrillsAreBounded(t *testing.T) {
	g := testGenesis()
	g.Strategy = attest.StrategyVault
	c := newChain(t, g)
	const size = 700
	bad := c.commit(0, testVaultIdx, size)
	c.attestAll(bad)
	honest := c.commit(1, testVaultIdx, size)
	c.attestAll(honest)

	victim := c.commitment(bad).Custodies[0]
	if r := c.exec(testIDs[0], &attest.Drill{Custody: attest.CustodyID{Commitment: honest, Slot: 0}, Result: attest.DrillMismatch}); r.Code != attest.CodeNotAssigned {
		t.Fatalf("drill of another owner's custody: code %d (%s)", r.Code, r.Log)
	}
	if r := c.exec(testIDs[0], &attest.Drill{Custody: attest.CustodyID{Commitment: bad, Slot: victim.Slot}, Result: attest.DrillMismatch}); r.Code != 0 {
		t.Fatalf("owner's false drill: code %d (%s)", r.Code, r.Log)
	}
	limited := 0
	for slot := uint64(1); slot < 3; slot++ {
		r := c.exec(testIDs[0], &attest.Drill{Custody: attest.CustodyID{Commitment: bad, Slot: slot}, Result: attest.DrillMismatch})
		if r.Code == attest.CodeRateLimited {
			limited++
		}
	}
	if limited != 2 {
		t.Fatalf("%d of 2 drills within DrillInterval refused, want 2", limited)
	}
	failed := 0
	for _, cu := range c.commitment(bad).Custodies {
		if cu.Status == "failed" {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d custodies failed by one accepted drill, want 1", failed)
	}
	var nodes struct{ Nodes []attest.Node }
	c.query("/nodes", &nodes)
	for _, n := range nodes.Nodes {
		if n.Address == victim.Holder && n.FailedHeight != 0 {
			t.Fatalf("the drilled holder failed as a whole: %+v", n)
		}
	}
	// The drilled holder still gets custodies: owner 2's holders are the
	// other members, the victim among them.
	next := c.commit(2, testVaultIdx, size)
	got := false
	for _, cu := range c.commitment(next).Custodies {
		got = got || cu.Holder == victim.Holder
	}
	if !got {
		t.Fatalf("the drilled holder %s got no custody of the next commitment", victim.Holder)
	}
	c.attestAll(next)
	// The honest owner's custodies are untouched.
	for _, cu := range c.commitment(honest).Custodies {
		if cu.Status == "failed" {
			t.Fatalf("honest owner's custody failed: %+v", cu)
		}
	}
}

// TestAttackOwnerDeletesCustodyUnderAHoldersBatch (an active node gone
// bad, as an owner): a holder attests its custodies in batches, and a batch
// is all or nothing. An owner that pushes a copy to an honest holder and
// then deletes that commitment (three new versions delete the oldest
// superseded one at once) in the block the holder's batch lands in made the
// whole batch fail "not found" — the honest owners' custodies in it too;
// kept up until their attestation deadline, it failed them all. Attesting a
// custody the chain has deleted now changes nothing, like one that failed
// or no longer counts (a commitment id the chain never issued is still
// refused), so the batch goes through. Seen failing before the fix: code 8.
func TestAttackOwnerDeletesCustodyUnderAHoldersBatch(t *testing.T) {
	g := testGenesis()
	g.Strategy = attest.StrategyVault // owner 0's holders 1, 2, 3; owner 1's 0, 2, 3
	c := newChain(t, g)
	const size = 700
	bad := c.commit(0, testVaultIdx, size)
	honest := c.commit(1, testVaultIdx, size)
	holder := addr(2)
	mine := append(c.heldBy(bad, holder), c.heldBy(honest, holder)...)
	if len(mine) != 2 {
		t.Fatalf("holder 2 holds %v", mine)
	}
	var txs [][]byte
	for range 3 {
		_, cm := c.newShare(size)
		txs = append(txs, c.sign(testIDs[0], &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: cm.Size, Root: cm.Root}}}))
	}
	txs = append(txs, c.sign(idOf(holder), &attest.Attest{Custodies: mine}))
	res := c.block(txs...)
	if r := c.query("/commitment/"+itoa(bad), nil); r.Code != attest.CodeNotFound {
		t.Fatal("the owner's first commitment is still in state")
	}
	if r := res[3]; r.Code != 0 {
		t.Fatalf("honest holder's batch, one custody of which the owner deleted in the same block: code %d (%s)", r.Code, r.Log)
	}
	if cu := c.custody(mine[1]); !cu.Attested {
		t.Fatalf("the honest owner's custody is not attested: %+v", cu)
	}
	// A commitment the chain never issued is still refused.
	if r := c.exec(idOf(holder), &attest.Attest{Custodies: []attest.CustodyID{{Commitment: 1000}}}); r.Code != attest.CodeNotFound {
		t.Fatalf("attestation of a commitment never issued: code %d (%s)", r.Code, r.Log)
	}
}

// TestAttackOwnerDeletesCustodyUnderAHoldersProofs (an active node gone
// bad, as an owner): like an Attest, a Prove is all or nothing. An owner
// whose commitment is challenged on an honest holder together with other
// owners' custodies deletes it (three new versions) in the block the
// holder's Prove lands in: the whole Prove was refused (no open challenge),
// and the holder, which retries a refused Prove three times an epoch, lost
// every honest proof of the epoch if the owner did that three times (three
// of its commitments challenged on the holder). A proof of a custody the
// chain has deleted since now changes nothing; the rest of the batch
// counts. Seen failing before the fix: code 13.
func TestAttackOwnerDeletesCustodyUnderAHoldersProofs(t *testing.T) {
	g := testGenesis()
	g.Strategy = attest.StrategyVault
	c := newChain(t, g)
	const size = 700
	bad := c.commit(0, testVaultIdx, size)
	honest := c.commit(1, testVaultIdx, size)
	c.attestAll(bad)
	c.attestAll(honest)
	c.until(epochStart(1))
	holder := addr(2)
	chs := c.challenges(holder)
	if len(chs) != 2 {
		t.Fatalf("holder 2's challenges: %+v, want one on each commitment", chs)
	}
	var ps []attest.SegmentProof
	for _, ch := range chs {
		ps = append(ps, c.proof(attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}, ch.Segment))
	}
	var txs [][]byte
	for range 3 {
		_, cm := c.newShare(size)
		txs = append(txs, c.sign(testIDs[0], &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: cm.Size, Root: cm.Root}}}))
	}
	txs = append(txs, c.sign(idOf(holder), &attest.Prove{Epoch: chs[0].Epoch, Proofs: ps}))
	res := c.block(txs...)
	if r := res[3]; r.Code != 0 {
		t.Fatalf("honest holder's proofs, one custody of which the owner deleted in the same block: code %d (%s)", r.Code, r.Log)
	}
	hc := c.heldBy(honest, holder)
	if cu := c.custody(hc[0]); cu.Status != "fresh" {
		t.Fatalf("the honest owner's custody after its proof: %+v", cu)
	}
	c.until(epochStart(1) + testCustody.ProofWindow + 1)
	if cu := c.custody(hc[0]); cu.Status != "fresh" {
		t.Fatalf("the honest owner's custody after the window: %+v", cu)
	}
}

// TestAttackOwnerDrillsAChallengedCustody (an active node gone bad, as an
// owner): a failed drill fails the custody, and a holder drops the copy of a
// failed custody (node.reconcileHeld). An owner that posts a failing drill
// of the custody its holder was just challenged on, in the epoch's first
// block, leaves the holder a challenge it no longer has the copy to answer,
// and the chain counted it as missed: twice in a row (one drill per
// DrillInterval is plenty) and a holder challenged only on that owner's
// custodies failed as a whole — all its custodies, of every owner. Seen
// failing before the fix. Now a challenge left open on a custody its owner
// failed by a drill is not counted against the holder (it may still answer
// it, and that counts).
func TestAttackOwnerDrillsAChallengedCustody(t *testing.T) {
	g := testGenesis()
	g.Strategy = attest.StrategyVault // owner 0's holders are 1, 2, 3
	c := newChain(t, g)
	const size = 700
	victim := addr(1)
	x := c.commit(0, testVaultIdx, size)
	c.attestAll(x)
	for e := int64(1); e <= 2; e++ {
		c.until(epochStart(e) - 1)
		slot := c.heldBy(x, victim)[0].Slot
		drill := c.sign(testIDs[0], &attest.Drill{Custody: attest.CustodyID{Commitment: x, Slot: slot}, Result: attest.DrillMismatch})
		if r := c.block(drill)[0]; r.Code != 0 {
			t.Fatalf("epoch %d: the owner's drill: code %d (%s)", e, r.Code, r.Log)
		}
		if len(c.challenges(victim)) == 0 {
			t.Fatalf("epoch %d: the victim was not challenged", e)
		}
		// The other holders answer; the victim dropped the failed copy.
		c.prove(addr(2), addr(3))
		if e == 1 {
			x = c.commit(0, testVaultIdx, size) // a new version: the victim holds it too
			c.attestAll(x)
		}
	}
	c.until(epochStart(2) + testCustody.ProofWindow + 1)
	var nodes struct{ Nodes []attest.Node }
	c.query("/nodes", &nodes)
	for _, n := range nodes.Nodes {
		if n.Address == victim && n.FailedHeight != 0 {
			t.Fatalf("the holder whose challenged custodies its owner failed by drills failed as a whole at block %d", n.FailedHeight)
		}
		if (n.Address == addr(2) || n.Address == addr(3)) && n.FailedHeight != 0 {
			t.Fatalf("honest holder %s failed", n.Address)
		}
	}
}
