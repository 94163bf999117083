package attest_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
)

func checkTx(t *testing.T, c *chain, raw []byte, recheck bool) *abci.CheckTxResponse {
	t.Helper()
	typ := abci.CHECK_TX_TYPE_CHECK
	if recheck {
		typ = abci.CHECK_TX_TYPE_RECHECK
	}
	res, err := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: raw, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantCheck(t *testing.T, c *chain, what string, raw []byte, recheck bool, code uint32) {
	t.Helper()
	res := checkTx(t, c, raw, recheck)
	if res.Code != code {
		t.Errorf("%s: CheckTx code %d (%s), want %d", what, res.Code, res.Log, code)
	}
	if code != attest.CodeOK && (res.Log == "" || res.Codespace != attest.Codespace) {
		t.Errorf("%s: refusal without log or codespace: %+v", what, res)
	}
}

// signAt signs msg by id as account acct at sequence seq, without touching
// the chain's sequence bookkeeping.
func signAt(t *testing.T, id *identity.Identity, acct, seq uint64, msg attest.Msg) []byte {
	t.Helper()
	raw, err := attest.SignTx(id, testChainID, testHRP, acct, seq, msg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func update(tag int) *attest.UpdateNode {
	return &attest.UpdateNode{Multiaddrs: []string{fmt.Sprintf("/ip4/10.0.%d.%d/tcp/1", tag/250, tag%250+1)}}
}

// TestCheckTxChecksSignerAgainstCommittedState: CheckTx and its recheck
// refuse a transaction whose signer account does not exist or has no role
// in the committed state (not an active node; not the authority for a
// Churn) or whose sequence is behind the account's committed one, so that
// such transactions never enter the mempool, nor stay in it once a block
// made them stale. (Issue 8, item 3.)
func TestCheckTxChecksSignerAgainstCommittedState(t *testing.T) {
	c := newChain(t, testGenesis())
	stranger := testIDs[spare]
	n1, n2 := c.account(testIDs[1]), c.account(testIDs[2])

	wantCheck(t, c, "update by an unknown account", signAt(t, stranger, 99, 0, update(0)), false, attest.CodeUnauthorized)
	wantCheck(t, c, "attest by an unknown account", signAt(t, stranger, 99, 0, &attest.Attest{Custodies: []attest.CustodyID{{Commitment: 1}}}), false, attest.CodeUnauthorized)
	wantCheck(t, c, "churn by a node", forceSign(t, testIDs[0], c.account(testIDs[0]), 0, &attest.Churn{RemoveNodes: []string{addr(1)}}), false, attest.CodeUnauthorized)
	wantCheck(t, c, "commit by the authority", forceSign(t, authority(), 0, 0, &attest.Commit{Shares: []attest.ShareCommit{{Vault: 1, Size: 1, Root: [32]byte{1}}}}), false, attest.CodeUnauthorized)
	// A stranger is refused before its content is looked at.
	wantCheck(t, c, "invalid content by an unknown account", forceSign(t, stranger, 99, 0, &attest.Attest{}), false, attest.CodeUnauthorized)
	// A stranger claiming a node's account fails its signature.
	wantCheck(t, c, "a stranger as node 1's account", signAt(t, stranger, n1, 0, update(1)), false, attest.CodeBadSignature)
	wantCheck(t, c, "churn by the authority", signAt(t, authority(), 0, 0, &attest.Churn{RetireVaults: []string{testVault}}), false, attest.CodeOK)
	wantCheck(t, c, "update by a node", signAt(t, testIDs[1], n1, 0, update(2)), false, attest.CodeOK)

	// Node 1's sequence 0 is used by a block: a second transaction at 0 is
	// behind, in CheckTx and on recheck.
	pending := signAt(t, testIDs[1], n1, 0, update(3))
	wantCheck(t, c, "node 1 at sequence 0 before the block", pending, false, attest.CodeOK)
	c.mustExec(testIDs[1], update(4))
	wantCheck(t, c, "recheck of node 1 at sequence 0 after the block", pending, true, attest.CodeBadSequence)
	wantCheck(t, c, "node 1 at sequence 0 after the block", signAt(t, testIDs[1], n1, 0, update(5)), false, attest.CodeBadSequence)
	wantCheck(t, c, "node 1 at sequence 1 after the block", signAt(t, testIDs[1], n1, 1, update(6)), false, attest.CodeOK)

	// Node 2 is churned out while its transaction waits: the recheck
	// refuses it.
	waiting := signAt(t, testIDs[2], n2, 0, update(7))
	wantCheck(t, c, "node 2 before its removal", waiting, false, attest.CodeOK)
	c.mustExec(authority(), &attest.Churn{RemoveNodes: []string{addr(2)}})
	wantCheck(t, c, "recheck of node 2 after its removal", waiting, true, attest.CodeUnauthorized)

	// A node added by a committed churn may send at once.
	c.mustExec(authority(), &attest.Churn{AddNodes: []attest.NodeSpec{nodeSpec(spare)}})
	wantCheck(t, c, "the new node after it is added", signAt(t, stranger, c.account(stranger), 0, update(8)), false, attest.CodeOK)

	// Stateless refusals keep their codes.
	wantCheck(t, c, "garbage", []byte("junk"), false, attest.CodeMalformed)
	bad := signAt(t, testIDs[1], n1, 1, update(9))
	bad[len(bad)-3] ^= 1
	wantCheck(t, c, "bad signature of a node", bad, false, attest.CodeBadSignature)
}

// TestCheckTxBoundsPendingPerSigner: one signer, even an active node, holds at
// most MaxPendingPerSigner transactions in the mempool, and none further
// ahead than that of its committed sequence. The bound is counted again from
// the committed state after every block (on recheck).
func TestCheckTxBoundsPendingPerSigner(t *testing.T) {
	c := newChain(t, testGenesis())
	node := testIDs[0]
	acct := c.account(node)
	var txs [][]byte
	for seq := range uint64(attest.MaxPendingPerSigner) {
		raw := signAt(t, node, acct, seq, update(int(seq)))
		wantCheck(t, c, fmt.Sprintf("sequence %d", seq), raw, false, attest.CodeOK)
		txs = append(txs, raw)
	}
	wantCheck(t, c, "one more at sequence 0 (a different body)", signAt(t, node, acct, 0, update(100)), false, attest.CodeMempoolFull)
	wantCheck(t, c, "the next sequence", signAt(t, node, acct, attest.MaxPendingPerSigner, update(101)), false, attest.CodeBadSequence)
	wantCheck(t, c, "far ahead", signAt(t, node, acct, 1<<40, update(102)), false, attest.CodeBadSequence)
	// Another signer is not affected.
	wantCheck(t, c, "another node", signAt(t, testIDs[1], c.account(testIDs[1]), 0, update(103)), false, attest.CodeOK)

	// A block commits the first two; the mempool rechecks the rest, which
	// fit again, and leaves room for two more.
	for i, r := range c.block(txs[0], txs[1]) {
		if r.Code != 0 {
			t.Fatalf("tx %d: code %d (%s)", i, r.Code, r.Log)
		}
	}
	for i, raw := range txs[2:] {
		wantCheck(t, c, fmt.Sprintf("recheck of sequence %d", i+2), raw, true, attest.CodeOK)
	}
	for seq := uint64(attest.MaxPendingPerSigner); seq < attest.MaxPendingPerSigner+2; seq++ {
		wantCheck(t, c, fmt.Sprintf("sequence %d after the block", seq), signAt(t, node, acct, seq, update(int(seq))), false, attest.CodeOK)
	}
	wantCheck(t, c, "one over the bound after the block", signAt(t, node, acct, 2, update(104)), false, attest.CodeMempoolFull)
}

// TestNonNodeFloodNeverReachesABlock runs a real CometBFT validator, submits
// 100 full Attest transactions (1024 entries each, the most a block holds 4
// of) signed by keys that are not nodes, then an honest attestation. The
// flood is refused in CheckTx — none of it is ever in a block — and the
// honest attestation commits. The honest latency with and without the flood
// is logged (speed is measured, not asserted). (Issue 8, item 3: the flood
// used to delay an honest attestation from 1 s to 13 s.)
func TestNonNodeFloodNeverReachesABlock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	e := startEmbedded(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := attest.NewClient(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	rpc, err := rpchttp.New(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	honest := attest.NewSender(c, testIDs[1])
	send := func(tag int) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := honest.Send(ctx, update(tag)); err != nil {
			t.Fatalf("honest transaction: %v", err)
		}
		return time.Since(start)
	}
	quiet := send(1)

	// 100 full Attests (1024 custodies each) by the keys of the test set
	// that are neither nodes nor the authority, as accounts that do not
	// exist.
	const floodTxs = 100
	strangers := []*identity.Identity{testIDs[4], testIDs[5], testIDs[6]}
	flood := make([][]byte, floodTxs)
	for i := range flood {
		ids := make([]attest.CustodyID, attest.MaxEntries)
		for j := range ids {
			ids[j] = attest.CustodyID{Commitment: uint64(i*attest.MaxEntries + j + 1)}
		}
		flood[i] = signAt(t, strangers[i%len(strangers)], uint64(1000+i%len(strangers)), uint64(i/len(strangers)), &attest.Attest{Custodies: ids})
	}
	codes := make([]string, floodTxs)
	var wg sync.WaitGroup
	// A few at a time: a hundred 270 KB requests at once outrun the RPC
	// server's read timeout under the race detector.
	sem := make(chan struct{}, 8)
	for i, raw := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := rpc.BroadcastTxSync(ctx, raw)
			switch {
			case err != nil:
				codes[i] = err.Error()
			default:
				codes[i] = fmt.Sprintf("code %d: %s", res.Code, res.Log)
			}
		}()
	}
	wg.Wait() // every flood transaction went through CheckTx
	loaded := send(2)
	t.Logf("honest transaction latency: %v without, %v after %d non-node transactions", quiet, loaded, floodTxs)

	for i, got := range codes {
		// BroadcastTxSync returns a CheckTx refusal as a result with its
		// code, or (CometBFT v1) as an RPC error that quotes "code=N".
		if !strings.Contains(got, fmt.Sprintf("code %d:", attest.CodeUnauthorized)) && !strings.Contains(got, fmt.Sprintf("code=%d,", attest.CodeUnauthorized)) {
			t.Errorf("flood tx %d: CheckTx answered %q, want code %d", i, got, attest.CodeUnauthorized)
		}
	}
	// None of them is in a block: the honest one committed after all were
	// submitted, and two more blocks pass.
	h, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, c, h+2)
	for i, raw := range flood {
		res, err := rpc.Tx(ctx, hashOf(raw), false)
		if err == nil {
			t.Errorf("flood tx %d is in block %d (code %d)", i, res.Height, res.TxResult.Code)
		}
	}
	var te *attest.TxError
	if _, err := c.Broadcast(ctx, flood[0]); !errors.As(err, &te) || te.Height != 0 || te.Code != attest.CodeUnauthorized {
		t.Fatalf("Broadcast of a non-node transaction = %v, want a CheckTx refusal with code %d", err, attest.CodeUnauthorized)
	}
}

func hashOf(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}
