package attest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
)

// testBlockInterval keeps embedded chains fast in tests.
const testBlockInterval = 100 * time.Millisecond

func startEmbedded(t *testing.T, home string) *attest.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home: home, ChainID: testChainID, Genesis: testGenesis(), BlockInterval: testBlockInterval,
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
	if err != nil || len(nodes) != 4 {
		t.Fatalf("Nodes = %v, %v", nodes, err)
	}
	vaults, err := c.Vaults(ctx)
	if err != nil || len(vaults) != 1 || vaults[0].Threshold != 3 {
		t.Fatalf("Vaults = %+v, %v", vaults, err)
	}

	// Every node holds the shares of the next two, concurrently, through one
	// Sender per node; node 1 sends three transactions at once through its
	// Sender.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	senders := make([]*attest.Sender, 4)
	for h := range senders {
		senders[h] = attest.NewSender(c, testIDs[h])
	}
	s1 := senders[1]
	for h, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Send(ctx, &attest.Attest{Entries: []attest.Entry{entry((h+3)%4, testVault, "s"), entry((h+2)%4, testVault, "s")}})
			errs <- err
		}()
	}
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s1.Send(ctx, &attest.Attest{Entries: []attest.Entry{entry(3, testVault, string(rune('x'+i)))}})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	cov, err := c.Coverage(ctx, testVault)
	if err != nil {
		t.Fatal(err)
	}
	if vc := cov.Vaults[0]; !vc.Safe || vc.Covered != 4 {
		t.Fatalf("coverage %+v, want safe with 4 covered", vc)
	}
	// A holder has one attestation per owner and vault: node 1's four of
	// owner 3 (one with node 1's batch, three alone) leave the last one
	// committed.
	byOwner, err := c.AttestationsByOwner(ctx, addr(3))
	if err != nil || len(byOwner) != 2 {
		t.Fatalf("AttestationsByOwner(3) = %+v, %v; want 2 (nodes 0 and 1)", byOwner, err)
	}
	byHolder, err := c.AttestationsByHolder(ctx, addr(1))
	if err != nil || len(byHolder) != 2 {
		t.Fatalf("AttestationsByHolder(1) = %+v, %v; want 2 (owners 0 and 3)", byHolder, err)
	}
	if seq, err := c.Sequence(ctx, addr(1)); err != nil || seq != 4 {
		t.Fatalf("Sequence(1) = %d, %v; want 4", seq, err)
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
	seq, err := c.Sequence(ctx, addr(2))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := attest.SignTx(testIDs[2], testChainID, "thor", seq, &attest.UpdateNode{Multiaddrs: []string{"/ip4/127.0.0.1/tcp/9997"}})
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
	_, err = attest.NewSender(c, testIDs[2]).Send(ctx, &attest.Attest{Entries: []attest.Entry{entry(0, "thorpub1nosuchvault", "q")}})
	if !errors.As(err, &te) || te.Code != attest.CodeNotFound || te.Height == 0 || !errors.Is(err, attest.ErrNotFound) {
		t.Fatalf("attest to unknown vault = %v, want a block TxError", err)
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
