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
// validator's RPC): ABCI queries are answered by the application under the
// same lock as consensus. The embedded node connected the application
// through CometBFT's NewLocalClientCreator, one mutex for all four ABCI
// connections, so a query — answered over public RPC (`abci_query`) to
// anyone — held up PrepareProposal, FinalizeBlock and Commit for as long as
// it ran. A chain of 256 vaults of 200 members makes /coverage cost tens
// of milliseconds (it reads each member's latest commitment of each vault);
// eight clients asking for it in a loop delayed an honest transaction's
// commit from 0.1 s to seconds. The application is safe for concurrent use
// (a query reads a committed version of the state, without the app's lock),
// so the node now gives each ABCI connection its own lock
// (NewConnSyncLocalClientCreator): queries no longer stop blocks.
func TestAttackQueryFloodDoesNotStallBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	const vaults, members = 64, 50
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
