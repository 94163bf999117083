package attest_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
)

// manyVaultsGenesis is testGenesis with m more nodes (random keys) and n
// vaults, each with the genesis nodes and the m others as members.
func manyVaultsGenesis(t testing.TB, n, m int) attest.Genesis {
	g := testGenesis()
	g.Vaults = nil
	var members []string
	for i := range nGenesis {
		members = append(members, addr(i))
	}
	for range m {
		k, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PubKey().SerializeCompressed()
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: hex.EncodeToString(pub), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/1"}})
		a, err := identity.AddressFromPubKey(pub, testHRP)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, a)
	}
	for i := range n {
		g.Vaults = append(g.Vaults, attest.VaultSpec{
			PubKey:    fmt.Sprintf("thorpub1addwnpepqvault%04d", i),
			Members:   members,
			Threshold: 3,
		})
	}
	return g
}

// TestAttackQueryFloodDoesNotStallBlocks (finding 2, anyone who can reach a
// validator's RPC): eight clients ask for /coverage over every vault in a
// loop while the chain makes blocks and an honest node sends a transaction.
// Both go on. Two things keep it so: each ABCI connection has its own lock
// (NewConnSyncLocalClientCreator; with CometBFT's NewLocalClientCreator a
// query held up PrepareProposal, FinalizeBlock and Commit while it ran), and
// the app computes /coverage once per state version (answerCache). Since
// coverage became point reads and is cached, this test no longer tells the
// per-connection lock apart (at 128 vaults of 100 members, no race
// detector: 5 blocks took 7.9 s with one lock, 4.1 s with one per
// connection; most of the remaining cost is CometBFT's RPC encoding a
// 1.9 MB answer per query); TestAnswerCacheComputesOncePerVersion covers
// the cache.
func TestAttackQueryFloodDoesNotStallBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	const vaults, members = 16, 20
	g := manyVaultsGenesis(t, vaults, members-nGenesis)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	e, err := attest.StartEmbedded(sctx, attest.EmbeddedConfig{
		Home: t.TempDir(), ChainID: testChainID, Genesis: g, BlockInterval: testBlockInterval,
	})
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	c, err := attest.NewClient(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cov, err := c.Coverage(ctx, "")
	if err != nil || len(cov.Vaults) != vaults {
		t.Fatalf("coverage: %d vaults, %v", len(cov.Vaults), err)
	}
	queryTime := time.Since(start)
	t.Logf("/coverage alone: %v", queryTime)

	honest := attest.NewSender(c, testIDs[1])
	start = time.Now()
	if _, err := honest.Send(ctx, update(1)); err != nil {
		t.Fatalf("honest transaction: %v", err)
	}
	quiet := time.Since(start)

	rpc, err := rpchttp.New(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	fctx, fstop := context.WithCancel(ctx)
	var (
		wg      sync.WaitGroup
		queries atomic.Int64
	)
	const flooders, maxQueries = 8, 100000
	for range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < maxQueries && fctx.Err() == nil; i++ {
				if _, err := rpc.ABCIQuery(fctx, "/coverage", nil); err == nil {
					queries.Add(1)
				}
			}
		}()
	}
	// The flood is on once every client has had an answer.
	waitUntilAttest(t, 60*time.Second, func() bool { return queries.Load() >= flooders })
	h0, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// While the flood goes on: the chain keeps making blocks (blocks are
	// 100 ms apart here), and an honest attestation commits.
	const blocks = 5
	start = time.Now()
	blocksErr := waitBlocks(ctx, c, h0+blocks, 10*time.Second)
	blocksTook := time.Since(start)
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	start = time.Now()
	_, lerr := honest.Send(lctx, update(2))
	loaded := time.Since(start)
	lcancel()
	fstop()
	wg.Wait()
	t.Logf("/coverage over %d vaults of %d members: %v alone; with %d clients asking for it in a loop (%d queries answered): %d blocks took %v (%v), an honest transaction %v (%v without the flood)",
		vaults, members, queryTime.Round(time.Millisecond), flooders, queries.Load(), blocks, blocksTook.Round(time.Millisecond), blocksErr, loaded.Round(time.Millisecond), quiet.Round(time.Millisecond))
	if blocksErr != nil {
		t.Fatalf("the chain made fewer than %d blocks in 10 s while clients asked for /coverage: queries hold up consensus", blocks)
	}
	if lerr != nil {
		t.Fatalf("honest transaction during the query flood: %v after %v", lerr, loaded)
	}
}

// waitBlocks polls c until its height reaches h, for at most d.
func waitBlocks(ctx context.Context, c *attest.Client, h int64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		qctx, cancel := context.WithTimeout(ctx, d)
		got, err := c.Height(qctx)
		cancel()
		if err == nil && got >= h {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("height %d after %v, want %d (%v)", got, d, h, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUntilAttest polls cond every 10 ms for at most d.
func waitUntilAttest(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
