package attest_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/ksb-project/ksb/attest"
)

// TestCommitAssignsHolders: a Commit gets a commitment id and r distinct
// holders drawn by the chain, none the owner, each holding copy = slot;
// the tx result's events name them, and the owner's query agrees.
func TestCommitAssignsHolders(t *testing.T) {
	c := newChain(t, testGenesis())
	_, cm := c.newShare(2000)
	res := c.mustExec(testIDs[0], &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: cm.Size, Root: cm.Root}}})
	tr := &attest.TxResult{Events: res.Events}
	ids := tr.Commitments()
	as := tr.Assignments()
	if len(ids) != 1 || len(as) != 3 {
		t.Fatalf("commitments %v, assignments %+v", ids, as)
	}
	var owned struct{ Commitments []attest.Commitment }
	c.query("/commitments/owner/"+addr(0), &owned)
	if len(owned.Commitments) != 1 {
		t.Fatalf("owner's commitments: %+v", owned.Commitments)
	}
	got := owned.Commitments[0]
	if got.ID != ids[0] || got.Owner != addr(0) || got.Vault != testVault || got.VaultIndex != testVaultIdx ||
		got.Size != 2000 || got.Root != hexOf(cm.Root[:]) || got.Copies != 3 || !got.Live || got.CommitHeight != c.height {
		t.Fatalf("commitment %+v", got)
	}
	seen := map[string]bool{}
	for i, cu := range got.Custodies {
		a := as[i]
		if cu.Slot != uint64(i) || cu.CopyIndex != uint32(i) || cu.Holder != a.Holder || a.Custody != (attest.CustodyID{Commitment: ids[0], Slot: uint64(i)}) ||
			a.CopyIndex != uint32(i) || a.Source != "" || cu.Status != "pending" || cu.Attested || cu.ID != attest.PackCustody(a.Custody) {
			t.Errorf("custody %d %+v, event %+v", i, cu, a)
		}
		if cu.Holder == addr(0) || seen[cu.Holder] {
			t.Errorf("holder %s: the owner, or twice", cu.Holder)
		}
		seen[cu.Holder] = true
	}
	// Nothing attested yet: the member is not covered.
	if m := c.member(0); len(m.Holders) != 0 || m.Covered || len(m.Custody) != 3 || m.Commitment != ids[0] {
		t.Fatalf("member 0 before attestations: %+v", m)
	}
	c.attestAll(ids[0])
	m := c.member(0)
	if len(m.Holders) != 3 || !m.Covered {
		t.Fatalf("member 0 after attestations: %+v", m)
	}
	for _, cu := range m.Custody {
		if !cu.Attested || !cu.Counted || cu.Status != "pending" || cu.CommitHeight != got.CommitHeight {
			t.Errorf("custody coverage %+v", cu)
		}
	}
}

// TestPhantomAttestationsRefused: a node attests a custody it is not
// assigned, or of a commitment that does not exist: refused with a code,
// coverage unchanged.
func TestPhantomAttestationsRefused(t *testing.T) {
	c := newChain(t, testGenesis())
	id := c.commit(0, testVaultIdx, 1000)
	cm := c.commitment(id)
	var stranger int
	for i := 1; i < nGenesis; i++ {
		if len(c.heldBy(id, addr(i))) == 0 {
			stranger = i
			break
		}
	}
	holder := idOf(cm.Custodies[0].Holder)
	before := c.coverage(testVault)
	for _, tc := range []struct {
		name string
		by   int
		ids  []attest.CustodyID
		code uint32
	}{
		{"not assigned", stranger, []attest.CustodyID{{Commitment: id, Slot: 0}}, attest.CodeNotAssigned},
		{"a slot that does not exist", stranger, []attest.CustodyID{{Commitment: id, Slot: 7}}, attest.CodeNotFound},
		{"a commitment that does not exist", stranger, []attest.CustodyID{{Commitment: id + 100, Slot: 0}}, attest.CodeNotFound},
		{"the owner its own", 0, []attest.CustodyID{{Commitment: id, Slot: 1}}, attest.CodeNotAssigned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.exec(testIDs[tc.by], &attest.Attest{Custodies: tc.ids})
			if r.Code != tc.code {
				t.Fatalf("code %d (%s), want %d", r.Code, r.Log, tc.code)
			}
			if after := c.coverage(testVault); !equalJSON(t, after.Vaults, before.Vaults) {
				t.Fatalf("coverage changed: %+v", after)
			}
		})
	}
	// A batch with one phantom entry is refused whole.
	r := c.exec(holder, &attest.Attest{Custodies: []attest.CustodyID{{Commitment: id, Slot: 0}, {Commitment: id, Slot: 1}}})
	if r.Code != attest.CodeNotAssigned {
		t.Fatalf("batch with another holder's custody: code %d (%s)", r.Code, r.Log)
	}
	if m := c.member(0); len(m.Holders) != 0 {
		t.Fatalf("a refused batch counted: %+v", m)
	}
	// The assigned holder's own attestation counts.
	c.mustExec(holder, &attest.Attest{Custodies: []attest.CustodyID{{Commitment: id, Slot: 0}}})
	if m := c.member(0); !slices.Equal(m.Holders, []string{cm.Custodies[0].Holder}) {
		t.Fatalf("holders %v", m.Holders)
	}
}

// TestProofsAndRefusals: at an epoch's first block every counted custody is
// challenged; the right proof makes it fresh; a proof with another holder's
// copy, a wrong path, a wrong segment, a wrong epoch and a replay are each
// refused with a code.
func TestProofsAndRefusals(t *testing.T) {
	g := testGenesis()
	g.EpochBlocks, g.ProofWindow = 20, 15 // room for a block per refusal
	c := newChain(t, g)
	id := c.commit(0, testVaultIdx, 3000)
	c.attestAll(id)
	c.until(21) // epoch 1 starts: challenges
	cm := c.commitment(id)
	h0 := cm.Custodies[0].Holder
	chs := c.challenges(h0)
	if len(chs) != 1 || chs[0].Epoch != 1 || chs[0].Commitment != id || chs[0].Slot != 0 || chs[0].Deadline != c.height+g.ProofWindow {
		t.Fatalf("challenges of %s: %+v", h0, chs)
	}
	ch := chs[0]
	cid := attest.CustodyID{Commitment: id, Slot: 0}
	good := c.proof(cid, ch.Segment)

	otherSeg := (ch.Segment + 1) % 47 // 3000 bytes: 47 segments
	wrongPath := c.proof(cid, ch.Segment)
	wrongPath.CopyPath[0] = bytes.Repeat([]byte{1}, 32)
	otherCopy := c.proofFromCopy(cid, ch.Segment, 1) // holder 1's copy
	flipped := c.proof(cid, ch.Segment)
	flipped.Data[0] ^= 1
	holder := idOf(h0)
	for _, tc := range []struct {
		name  string
		epoch uint64
		p     attest.SegmentProof
		code  uint32
	}{
		{"another holder's copy", 1, otherCopy, attest.CodeBadProof},
		{"wrong path", 1, wrongPath, attest.CodeBadProof},
		{"tampered segment", 1, flipped, attest.CodeBadProof},
		{"wrong segment", 1, c.proof(cid, otherSeg), attest.CodeWrongSegment},
		{"wrong epoch", 0, good, attest.CodeNoChallenge},
		{"future epoch", 2, good, attest.CodeNoChallenge},
		{"custody not challenged", 1, c.proof(attest.CustodyID{Commitment: id, Slot: 1}, ch.Segment), attest.CodeNoChallenge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := c.exec(holder, &attest.Prove{Epoch: tc.epoch, Proofs: []attest.SegmentProof{tc.p}}); r.Code != tc.code {
				t.Fatalf("code %d (%s), want %d", r.Code, r.Log, tc.code)
			}
			if cu := c.custody(cid); cu.Status != "pending" || cu.LastProofHeight != 0 {
				t.Fatalf("custody after a refused proof: %+v", cu)
			}
		})
	}
	r := c.exec(holder, &attest.Prove{Epoch: 1, Proofs: []attest.SegmentProof{good}})
	if r.Code != 0 {
		t.Fatalf("good proof: code %d (%s)", r.Code, r.Log)
	}
	if cu := c.custody(cid); cu.Status != "fresh" || cu.LastProofHeight != c.height {
		t.Fatalf("custody after its proof: %+v", cu)
	}
	if len(c.challenges(h0)) != 0 {
		t.Fatal("the answered challenge is still open")
	}
	if r := c.exec(holder, &attest.Prove{Epoch: 1, Proofs: []attest.SegmentProof{good}}); r.Code != attest.CodeNoChallenge {
		t.Fatalf("replayed proof: code %d (%s), want %d", r.Code, r.Log, attest.CodeNoChallenge)
	}
	m := c.member(0)
	for _, cu := range m.Custody {
		if cu.Holder == h0 && (cu.Status != "fresh" || cu.LastProofHeight == 0) {
			t.Errorf("coverage of the proven custody: %+v", cu)
		}
	}
}

// TestProofOfADeletedCommitment: a challenge stays open after its
// commitment is superseded and deleted (retention shorter than the proof
// window); proving it is refused with a code, never a failed block.
func TestProofOfADeletedCommitment(t *testing.T) {
	g := testGenesis()
	g.EpochBlocks, g.ProofWindow, g.RetentionBlocks = 20, 15, 1
	c := newChain(t, g)
	id := c.commit(0, testVaultIdx, 700)
	c.attestAll(id)
	c.until(21)
	cid := attest.CustodyID{Commitment: id, Slot: 0}
	holder := c.custody(cid).Holder
	chs := c.challenges(holder)
	if len(chs) == 0 {
		t.Fatal("no challenge")
	}
	p := c.proof(cid, chs[0].Segment)
	c.commit(0, testVaultIdx, 700) // supersedes id; deleted a block later
	c.block()
	if r := c.query("/commitment/"+itoa(id), nil); r.Code != attest.CodeNotFound {
		t.Fatalf("superseded commitment still in state: code %d", r.Code)
	}
	if r := c.exec(idOf(holder), &attest.Prove{Epoch: 1, Proofs: []attest.SegmentProof{p}}); r.Code != attest.CodeNoChallenge {
		t.Fatalf("proof of a deleted commitment: code %d (%s)", r.Code, r.Log)
	}
	c.until(21 + g.ProofWindow + 1) // the window closes over the stale challenge
}

// TestRoundsOfChallenges: with rounds of 3 epochs the chain keeps, in
// state, which custodies were challenged this round (custody.Challenges'
// Challenged), so every counted custody is challenged in every round and
// every holder in every epoch; new custodies are challenged in the first
// epoch after their attestation.
func TestRoundsOfChallenges(t *testing.T) {
	g := testGenesis()
	g.RoundEpochs = 3
	c := newChain(t, g)
	ids := make([]uint64, 4)
	for i := range ids {
		ids[i] = c.commit(i, testVaultIdx, 640)
	}
	for _, id := range ids {
		c.attestAll(id)
	}
	holders := allHolders(c, ids)
	seen := map[int64]map[attest.CustodyID]bool{} // round → challenged custodies
	for e := int64(1); e <= 9; e++ {
		c.until(epochStart(e))
		round := e / 3
		if seen[round] == nil {
			seen[round] = map[attest.CustodyID]bool{}
		}
		for _, h := range holders {
			chs := c.challenges(h)
			if len(chs) == 0 {
				t.Errorf("epoch %d: holder %s not challenged", e, h)
			}
			for _, ch := range chs {
				seen[round][attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}] = true
			}
		}
		if e == 1 && len(seen[0]) != 12 {
			t.Fatalf("epoch 1 challenged %d custodies, want all 12 new ones", len(seen[0]))
		}
		c.prove(holders...)
	}
	for round := int64(1); round <= 2; round++ { // rounds 1 and 2 are whole: epochs 3-5, 6-8
		if len(seen[round]) != 12 {
			t.Errorf("round %d challenged %d of 12 custodies", round, len(seen[round]))
		}
	}
	for _, id := range ids {
		for _, cu := range c.commitment(id).Custodies {
			if cu.Status != "fresh" {
				t.Errorf("custody %d/%d: %s", id, cu.Slot, cu.Status)
			}
		}
	}
}
