package attest_test

import (
	"bytes"
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest"
)

// FuzzProve feeds mutated proofs of one open challenge through the app's
// Prove handler (a FinalizeBlock that is never committed, so every input
// meets the same state). The handler must never fail as a block (an error
// or a panic), must refuse with one of the proof codes, and must accept
// only the genuine proof: another segment, path or copy verifying would be
// a SHA-256 collision.
func FuzzProve(f *testing.F) {
	g := testGenesis()
	g.EpochBlocks, g.ProofWindow = 1000, 900
	c := newChain(f, g)
	id := c.commit(0, testVaultIdx, 5000)
	c.attestAll(id)
	c.until(1001) // epoch 1: the custody is challenged
	cid := attest.CustodyID{Commitment: id, Slot: 0}
	holder := idOf(c.custody(cid).Holder)
	chs := c.challenges(c.custody(cid).Holder)
	if len(chs) != 1 {
		f.Fatalf("challenges %+v", chs)
	}
	good := c.proof(cid, chs[0].Segment)
	acct, seq := c.account(holder), c.seq[holder.Address(testHRP)]
	join := func(p [][]byte) []byte { return bytes.Join(p, nil) }
	f.Add(good.Segment, good.Data, join(good.CopyPath), join(good.CommitPath), uint64(1), uint8(0))
	f.Add(good.Segment+1, good.Data, join(good.CopyPath), join(good.CommitPath), uint64(1), uint8(1))
	f.Add(good.Segment, good.Data[:10], join(good.CopyPath[1:]), join(good.CommitPath), uint64(0), uint8(2))
	split := func(b []byte) [][]byte {
		var out [][]byte
		for len(b) >= 32 {
			out = append(out, b[:32])
			b = b[32:]
		}
		if len(b) > 0 {
			out = append(out, b) // a short hash: refused
		}
		return out
	}
	f.Fuzz(func(t *testing.T, segment uint64, data, copyPath, commitPath []byte, epoch uint64, slot uint8) {
		p := attest.SegmentProof{
			Custody: attest.CustodyID{Commitment: id, Slot: uint64(slot % 4)}, Segment: segment, Data: data,
			CopyPath: split(copyPath), CommitPath: split(commitPath),
		}
		raw, err := attest.SignTx(holder, testChainID, testHRP, acct, seq, &attest.Prove{Epoch: epoch, Proofs: []attest.SegmentProof{p}})
		if err != nil {
			return // refused before signing: the chain would refuse it statelessly too
		}
		res, err := c.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: c.height + 1, Hash: blockHash(c.height + 1), Txs: [][]byte{raw}})
		if err != nil {
			t.Fatalf("FinalizeBlock failed: %v", err)
		}
		code := res.TxResults[0].Code
		genuine := epoch == 1 && p.Custody == cid && segment == good.Segment && bytes.Equal(data, good.Data) &&
			bytes.Equal(copyPath, join(good.CopyPath)) && bytes.Equal(commitPath, join(good.CommitPath))
		switch {
		case code == attest.CodeOK && !genuine:
			t.Fatalf("accepted a proof that is not the genuine one: %+v", p)
		case code != attest.CodeOK && genuine:
			t.Fatalf("refused the genuine proof: code %d (%s)", code, res.TxResults[0].Log)
		case code != attest.CodeOK && code != attest.CodeBadProof && code != attest.CodeWrongSegment &&
			code != attest.CodeNoChallenge && code != attest.CodeNotFound:
			t.Fatalf("refused with code %d (%s)", code, res.TxResults[0].Log)
		}
	})
}
