package attest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
)

// testBlockInterval keeps embedded chains fast in tests.
const testBlockInterval = 100 * time.Millisecond

// embeddedGenesis: epochs of 40 blocks (4 s) with proof windows of 30, so a
// test sees an epoch with real block hashes and has time to answer it.
func embeddedGenesis() attest.Genesis {
	g := testGenesis()
	g.CustodyParams = attest.CustodyParams{EpochBlocks: 40, ProofWindow: 30, AttestWindow: 10_000, RepairWindow: 10_000, RetentionBlocks: 10_000}
	return g
}

func startEmbedded(t *testing.T, home string) *attest.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home: home, ChainID: testChainID, Genesis: embeddedGenesis(), BlockInterval: testBlockInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	return e
}

func TestEmbeddedOverRPC(t *testing.T) {
	home := t.TempDir()
	e := startEmbedded(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := attest.NewClient(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := c.ChainID(ctx); err != nil || id != testChainID {
		t.Fatalf("ChainID = %q, %v", id, err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != nGenesis {
		t.Fatalf("Nodes = %v, %v", nodes, err)
	}
	vaults, err := c.Vaults(ctx)
	if err != nil || len(vaults) != 1 || vaults[0].Threshold != 3 || vaults[0].Index != testVaultIdx {
		t.Fatalf("Vaults = %+v, %v", vaults, err)
	}

	// Every member commits a share, concurrently, through one Sender per
	// node; the chain draws the holders from the real block hash and the
	// result's events name them. Member 1 sends two more transactions at
	// once through its Sender.
	senders := make([]*attest.Sender, nGenesis)
	for h := range senders {
		senders[h] = attest.NewSender(c, testIDs[h])
	}
	s1 := senders[1]
	copies := map[uint64][][]byte{}
	var (
		mu      sync.Mutex
		assigns []attest.Assignment
		wg      sync.WaitGroup
	)
	errs := make(chan error, 8)
	rc := &chain{t: t, rng: rand.New(rand.NewPCG(3, 4)), copies: copies}
	for m := range 4 {
		cps, cm := rc.newShare(900 + 100*m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := senders[m].Commit(ctx, attest.ShareCommit{Vault: testVaultIdx, Size: cm.Size, Root: cm.Root})
			if err == nil {
				mu.Lock()
				copies[res.Commitments()[0]] = cps
				assigns = append(assigns, res.Assignments()...)
				mu.Unlock()
			}
			errs <- err
		}()
	}
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s1.Send(ctx, update(i))
			errs <- err
		}()
	}
	wg.Wait()
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if len(assigns) != 12 {
		t.Fatalf("assignments %+v, want 3 for each of 4 commitments", assigns)
	}
	// Each holder attests what it was assigned, in one transaction.
	byHolder := map[string][]attest.CustodyID{}
	for _, a := range assigns {
		byHolder[a.Holder] = append(byHolder[a.Holder], a.Custody)
	}
	errs = make(chan error, len(byHolder)) // up to nGenesis holders
	for h, ids := range byHolder {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := senders[slices.Index(testAddrs, h)].Attest(ctx, ids...)
			errs <- err
		}()
	}
	wg.Wait()
	for range byHolder {
		if err := <-errs; err != nil {
			t.Fatalf("Attest: %v", err)
		}
	}
	cov, err := c.Coverage(ctx, testVault)
	if err != nil {
		t.Fatal(err)
	}
	if vc := cov.Vaults[0]; !vc.Safe || vc.Covered != 4 {
		t.Fatalf("coverage %+v, want safe with 4 covered", vc)
	}
	owned, err := c.CommitmentsByOwner(ctx, addr(3))
	if err != nil || len(owned) != 1 || len(owned[0].Custodies) != 3 || !owned[0].Live {
		t.Fatalf("CommitmentsByOwner(3) = %+v, %v", owned, err)
	}
	wantSeq := uint64(3) // a Commit and two updates, and an Attest if it holds any
	if len(byHolder[addr(1)]) > 0 {
		wantSeq++
	}
	if seq, err := c.Sequence(ctx, addr(1)); err != nil || seq != wantSeq {
		t.Fatalf("Sequence(1) = %d, %v; want %d", seq, err, wantSeq)
	}

	// The next epoch challenges every attested custody, from its first
	// block's real hash; each holder answers through the client.
	ep, err := c.Epoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, c, ep.NextStart)
	for h := range byHolder {
		chs, err := c.Challenges(ctx, h)
		if err != nil || len(chs) != len(byHolder[h]) {
			t.Fatalf("challenges of %s: %+v, %v; want %d", h, chs, err, len(byHolder[h]))
		}
		var ps []attest.SegmentProof
		for _, ch := range chs {
			id := attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}
			hc, err := c.Custody(ctx, id)
			if err != nil || hc.Holder != h {
				t.Fatalf("Custody(%v) = %+v, %v", id, hc, err)
			}
			ps = append(ps, rc.proofFromCopy(id, ch.Segment, int(hc.CopyIndex)))
		}
		if _, err := senders[slices.Index(testAddrs, h)].Prove(ctx, chs[0].Epoch, ps...); err != nil {
			t.Fatalf("Prove by %s: %v", h, err)
		}
	}
	cov, err = c.Coverage(ctx, testVault)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cov.Vaults[0].Members {
		for _, cu := range m.Custody {
			if cu.Status != "fresh" || cu.LastProofHeight < ep.NextStart {
				t.Errorf("member %s custody %+v, want fresh", m.Address, cu)
			}
		}
	}

	// A second Sender with the same key makes the first one's sequence
	// stale: the first retries once and succeeds.
	other := attest.NewSender(c, testIDs[1])
	if _, err := other.Send(ctx, &attest.UpdateNode{Multiaddrs: []string{"/ip4/127.0.0.1/tcp/9999"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Send(ctx, &attest.UpdateNode{Multiaddrs: []string{"/ip4/127.0.0.1/tcp/9998"}}); err != nil {
		t.Fatalf("Send after a stale sequence: %v", err)
	}

	// Broadcasting the same bytes again (a retry after a timed-out wait)
	// waits for the transaction already submitted instead of failing.
	acc, err := c.Account(ctx, addr(2))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := attest.SignTx(testIDs[2], testChainID, "thor", acc.Account, acc.Sequence, &attest.UpdateNode{Multiaddrs: []string{"/ip4/127.0.0.1/tcp/9997"}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Broadcast(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Broadcast(ctx, tx)
	if err != nil || again.Hash != first.Hash || again.Height != first.Height {
		t.Fatalf("second Broadcast of the same tx = %+v, %v; want %+v", again, err, first)
	}

	// Refusals come back as *TxError with code, log and sentinel.
	_, err = c.Broadcast(ctx, []byte("junk"))
	var te *attest.TxError
	if !errors.As(err, &te) || te.Code != attest.CodeMalformed || te.Height != 0 || te.Log == "" || !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("Broadcast(junk) = %v, want a CheckTx TxError", err)
	}
	_, err = attest.NewSender(c, testIDs[8]).Attest(ctx, attest.CustodyID{Commitment: 999})
	if !errors.As(err, &te) || te.Code != attest.CodeNotFound || te.Height == 0 || !errors.Is(err, attest.ErrNotFound) {
		t.Fatalf("attest of an unknown custody = %v, want a block TxError", err)
	}
	if _, err := c.Coverage(ctx, "thorpub1nosuchvault"); !errors.Is(err, attest.ErrNotFound) {
		t.Fatalf("Coverage(unknown) = %v", err)
	}

	// Plain HTTP, as curl would: GET /abci_query?path="/coverage".
	resp, err := http.Get(e.RPCURL() + `/abci_query?path=` + url.QueryEscape(`"/coverage"`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rpcRes struct {
		Result struct {
			Response struct {
				Code  uint32 `json:"code"`
				Value []byte `json:"value"` // base64 in CometBFT's JSON
			} `json:"response"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &rpcRes); err != nil {
		t.Fatalf("abci_query answer: %v\n%s", err, body)
	}
	var viaHTTP map[string]any
	if err := json.Unmarshal(rpcRes.Result.Response.Value, &viaHTTP); err != nil {
		t.Fatalf("coverage JSON: %v\n%s", err, rpcRes.Result.Response.Value)
	}
	vs, _ := viaHTTP["vaults"].([]any)
	if len(vs) != 1 || vs[0].(map[string]any)["safe"] != true || vs[0].(map[string]any)["pubkey"] != testVault {
		t.Fatalf("coverage over HTTP = %s", rpcRes.Result.Response.Value)
	}

	// Restart on the same home: same chain, state kept, blocks continue.
	h1, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	e2 := startEmbedded(t, home)
	c2, _ := attest.NewClient(e2.RPCURL())
	waitHeight(t, ctx, c2, h1+2)
	cov2, err := c2.Coverage(ctx, testVault)
	if err != nil || !cov2.Vaults[0].Safe {
		t.Fatalf("coverage after restart = %+v, %v", cov2, err)
	}
}

// waitHeight polls until the node at c reaches height h.
func waitHeight(t *testing.T, ctx context.Context, c *attest.Client, h int64) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := c.Height(ctx)
		if err == nil && got >= h {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("height %d not reached: last %d, %v", h, got, err)
		case <-tick.C:
		}
	}
}

func TestNewClientRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:26657", "ftp://x", "http://"} {
		if c, err := attest.NewClient(u); err == nil {
			t.Errorf("NewClient(%q) = %v", u, c)
		}
	}
}

func TestStartEmbeddedRefusesBadConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{}); err == nil {
		t.Error("no home accepted")
	}
	home := t.TempDir()
	if _, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{Home: home, ChainID: testChainID}); err == nil {
		t.Error("genesis without authority accepted")
	}
	if _, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{Home: home, Genesis: testGenesis()}); err == nil {
		t.Error("empty chain ID accepted")
	}
	if _, err := attest.LoadHomeConfig(home); err == nil {
		t.Error("a refused config left a home behind")
	}
}
