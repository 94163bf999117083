package attest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/ksb-project/ksb/attest"
)

// sixNodeGenesis registers nodes 0..5 and testVault with them all as
// members.
func sixNodeGenesis() attest.Genesis {
	g := attest.Genesis{Authority: authority().PubKeyHex(), Replication: 2}
	var members []string
	for i := range 6 {
		g.Nodes = append(g.Nodes, nodeSpec(i))
		members = append(members, addr(i))
	}
	g.Vaults = []attest.VaultSpec{{PubKey: testVault, Members: members, Threshold: 4}}
	return g
}

// fullAttest is an Attest of MaxEntries entries of owner for testVault,
// distinct per tag.
func fullAttest(owner int, tag string) *attest.Attest {
	es := make([]attest.Entry, attest.MaxEntries)
	for i := range es {
		es[i] = entry(owner, testVault, fmt.Sprint(tag, "/", i))
	}
	return &attest.Attest{Entries: es}
}

// TestAttackBlockSpaceIsShared (finding 6, active nodes gone bad): each
// active node may keep MaxPendingPerSigner (16) transactions in the mempool,
// and a full Attest is MaxEntries (1024) items: one node's allowance fills
// four blocks (MaxBlockItems = 4096). PrepareProposal took the mempool in
// its order and stopped at the first transaction that did not fit, so an
// honest holder's attestation that arrived after the transactions of k
// nodes gone bad waited for up to 4k blocks of theirs; and a node could fill
// a block with transactions at one sequence, of which only one executes
// (here: a proposal of 4 transactions, 3 failing, the honest one left out). Now
// PrepareProposal keeps, per signer, only transactions at consecutive
// sequences from its committed one, takes signers in turns (each signer's
// first transaction, smallest first, then each one's second …) and skips a
// transaction that does not fit (and its signer's later ones) instead of
// stopping: the honest attestation is in the next block.
func TestAttackBlockSpaceIsShared(t *testing.T) {
	c := newChain(t, sixNodeGenesis())
	var mempool [][]byte
	// Each bad node's mempool allowance (MaxPendingPerSigner = 16): eight
	// full Attests at its next sequence, of which only one can execute, and
	// eight at the following sequences.
	const half = attest.MaxPendingPerSigner / 2
	for b := 1; b <= 5; b++ {
		for i := range half {
			mempool = append(mempool, signAt(t, testIDs[b], 0, fullAttest((b+1)%6, fmt.Sprint(b, "-dup-", i))))
		}
		for seq := 1; seq <= half; seq++ {
			mempool = append(mempool, signAt(t, testIDs[b], uint64(seq), fullAttest((b+1)%6, fmt.Sprint(b, "-", seq))))
		}
	}
	honest := signAt(t, testIDs[0], 0, &attest.Attest{Entries: []attest.Entry{entry(1, testVault, "honest")}})
	mempool = append(mempool, honest)

	prep, err := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: mempool, MaxTxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	included := false
	for _, tx := range prep.Txs {
		included = included || bytes.Equal(tx, honest)
	}
	// Execute the proposal: every transaction in it must succeed (none at
	// a used or skipped sequence), within MaxBlockItems.
	res := c.block(prep.Txs...)
	failed := 0
	for _, r := range res {
		if r.Code != 0 {
			failed++
		}
	}
	t.Logf("mempool of %d transactions (5 nodes × 16 full Attests, then 1 honest): proposal of %d, %d of them failing, honest included: %v",
		len(mempool), len(prep.Txs), failed, included)
	if !included {
		t.Fatal("the honest attestation is not in the block: five nodes' transactions took it all")
	}
	if failed > 0 {
		t.Fatalf("%d transactions of the proposal failed: block space went to transactions that cannot execute", failed)
	}
}

// TestAttackMempoolReapStarvesHonestTx (finding 6, active nodes gone bad):
// with CometBFT's default block.max_bytes (4 MiB), CometBFT hands
// PrepareProposal only the first 4 MiB of the mempool, in arrival order.
// Active nodes that fill their mempool allowance with full Attests (16 ×
// ~200 KB each) put an honest holder's later attestation out of
// PrepareProposal's sight — and of its turn-taking between signers — until
// the blocks had worked through all but the last 4 MiB of theirs: with five
// such nodes (16 MB) it committed 10-18 blocks (4.3-5.2 s) after it was
// sent, instead of 0.1 s; the test runs three.
// The chain's block.max_bytes is now -1 (CometBFT hands over the whole
// mempool, which CheckTx bounds) and the application keeps blocks within
// MaxBlockBytes itself: 2 blocks (0.75 s).
func TestAttackMempoolReapStarvesHonestTx(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{Home: t.TempDir(), ChainID: testChainID, Genesis: sixNodeGenesis(), BlockInterval: testBlockInterval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	c, err := attest.NewClient(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	rpc, err := rpchttp.New(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	honest := attest.NewSender(c, testIDs[0])
	var flood [][]byte
	for b := 1; b <= 3; b++ {
		for seq := range attest.MaxPendingPerSigner {
			flood = append(flood, signAt(t, testIDs[b], uint64(seq), fullAttest((b+1)%6, fmt.Sprint(b, "-", seq))))
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // a few at a time: see TestNonNodeFloodNeverReachesABlock
	for _, raw := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rpc.BroadcastTxSync(ctx, raw)
		}()
	}
	wg.Wait()
	h0, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := honest.Send(ctx, &attest.Attest{Entries: []attest.Entry{entry(1, testVault, "honest")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("honest attestation committed after %v, at height %d (%d blocks after it was sent)", time.Since(start), res.Height, res.Height-h0)
	if res.Height-h0 > 3 {
		t.Fatalf("honest attestation committed %d blocks after it was sent, behind three nodes' full mempool allowances", res.Height-h0)
	}
}

// TestProcessProposalRejectsOverMaxBlockBytes: with block.max_bytes -1,
// CometBFT no longer bounds a proposal's size; the application rejects a
// block whose transactions are over MaxBlockBytes, even if each is valid and
// the block is within MaxBlockItems, and PrepareProposal keeps within it.
func TestProcessProposalRejectsOverMaxBlockBytes(t *testing.T) {
	c := newChain(t, sixNodeGenesis())
	// Churns of the authority adding nodes with MaxMultiaddrs long
	// addresses: ~2 KB an item.
	var addrs []string
	for i := range attest.MaxMultiaddrs {
		host := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + ".example"
		addrs = append(addrs, fmt.Sprintf("/dns4/%s/tcp/%d", host, 1000+i))
	}
	// The same nodes in every churn: ProcessProposal checks each
	// transaction alone.
	var ch attest.Churn
	for range 200 {
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		ch.AddNodes = append(ch.AddNodes, attest.NodeSpec{PubKey: fmt.Sprintf("%x", k.PubKey().SerializeCompressed()), Multiaddrs: addrs})
	}
	var txs [][]byte
	size, items := 0, 0
	for seq := uint64(0); size <= attest.MaxBlockBytes; seq++ {
		raw := signAt(t, authority(), seq, &ch)
		txs = append(txs, raw)
		size += len(raw)
		items += ch.Items()
	}
	if items > attest.MaxBlockItems {
		t.Fatalf("%d items: over MaxBlockItems, the test would not isolate the byte cap", items)
	}
	res, err := c.app.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: txs, Height: 2})
	if err != nil || res.Status != abci.PROCESS_PROPOSAL_STATUS_REJECT {
		t.Fatalf("ProcessProposal of %d transactions, %d bytes, %d items = %v, %v; want REJECT", len(txs), size, items, res.Status, err)
	}
	res, err = c.app.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: txs[:len(txs)/2], Height: 2})
	if err != nil || res.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
		t.Fatalf("ProcessProposal of half of them = %v, %v; want ACCEPT", res.Status, err)
	}
	prep, err := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: txs, MaxTxBytes: 100 << 20})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, tx := range prep.Txs {
		kept += len(tx)
	}
	if kept > attest.MaxBlockBytes || kept == 0 {
		t.Fatalf("PrepareProposal kept %d bytes, want 1 to %d", kept, attest.MaxBlockBytes)
	}
}
