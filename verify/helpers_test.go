package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cosmos/go-bip39"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/verify"
)

const (
	testChainID = "ksb-verify-test"
	testHRP     = "thor"
	testVault   = "thorpub1addwnpepqverifyvault"
	// blockInterval: short blocks keep the setup's transactions quick.
	blockInterval = 100 * time.Millisecond
)

// testIdentity derives test key i from fixed entropy (test keys only; the
// mnemonic is never written anywhere).
func testIdentity(t testing.TB, i int) *identity.Identity {
	t.Helper()
	e := sha256.Sum256([]byte(fmt.Sprintf("ksb verify test key %d", i)))
	m, err := bip39.NewMnemonic(e[:])
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testNet is a real single-validator chain with one vault of n members,
// every member's share committed and every custody attested.
type testNet struct {
	e       *attest.Embedded
	home    string
	genesis attest.Genesis
	anchor  verify.Anchor
	members []string
}

func testGenesis(t testing.TB, n int) (attest.Genesis, []*identity.Identity) {
	ids := make([]*identity.Identity, n+1)
	for i := range ids {
		ids[i] = testIdentity(t, i)
	}
	g := attest.Genesis{
		Authority: ids[n].PubKeyHex(), Replication: 3, HRP: testHRP,
		// Nothing comes due during a test: no epoch, deadline or prune.
		CustodyParams: attest.CustodyParams{EpochBlocks: 100_000, AttestWindow: 100_000, RepairWindow: 100_000, RetentionBlocks: 100_000},
	}
	var members []string
	for i := range n {
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: ids[i].PubKeyHex(), Multiaddrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 7000+i)}})
		members = append(members, ids[i].Address(testHRP))
	}
	g.Vaults = []attest.VaultSpec{{PubKey: testVault, Members: members, Threshold: uint32((2*n + 2) / 3)}}
	return g, ids[:n]
}

// startChain starts an embedded validator for genesis g.
func startChain(t testing.TB, g attest.Genesis) (*attest.Embedded, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	home := t.TempDir()
	e, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{Home: home, ChainID: testChainID, Genesis: g, BlockInterval: blockInterval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop() })
	return e, home
}

// newTestNet starts a chain with an n-member vault, commits a share of
// every member and attests every custody.
func newTestNet(t testing.TB, n int) *testNet {
	t.Helper()
	g, ids := testGenesis(t, n)
	e, home := startChain(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := attest.NewClient(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	byAddr := map[string]*identity.Identity{}
	for _, id := range ids {
		byAddr[id.Address(testHRP)] = id
	}
	var (
		mu   sync.Mutex
		held = map[string][]attest.CustodyID{}
		wg   sync.WaitGroup
		errs = make(chan error, 2*n)
	)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := attest.NewSender(c, id).Commit(ctx, attest.ShareCommit{Vault: 1, Size: 4096, Root: sha256.Sum256([]byte(fmt.Sprint("share", i)))})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			for _, a := range res.Assignments() {
				held[a.Holder] = append(held[a.Holder], a.Custody)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for h, cs := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := attest.NewSender(c, byAddr[h]).Attest(ctx, cs...); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rpc, err := rpchttp.New(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	one := int64(1)
	cm, err := rpc.Commit(ctx, &one)
	if err != nil {
		t.Fatal(err)
	}
	// Header h+1 must exist for the last attestation's state h.
	h, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if hh, err := c.Height(ctx); err == nil && hh > h+1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(blockInterval / 2):
		}
	}
	var members []string
	for _, id := range ids {
		members = append(members, id.Address(testHRP))
	}
	return &testNet{e: e, home: home, genesis: g, anchor: verify.Anchor{Height: 1, Hash: cm.SignedHeader.Hash()}, members: members}
}

// appCoverage is the application's own /coverage answer at height h (what
// a trusted node would say), for comparison.
func appCoverage(t testing.TB, rpcURL string, h int64, vault string) *attest.Coverage {
	t.Helper()
	rpc, err := rpchttp.New(rpcURL)
	if err != nil {
		t.Fatal(err)
	}
	path := "/coverage"
	if vault != "" {
		path += "/" + vault
	}
	res, err := rpc.ABCIQueryWithOptions(context.Background(), path, nil, rpcclientOpts(h))
	if err != nil || res.Response.Code != 0 {
		t.Fatalf("%s at %d: %v %+v", path, h, err, res)
	}
	var cov attest.Coverage
	if err := json.Unmarshal(res.Response.Value, &cov); err != nil {
		t.Fatal(err)
	}
	return &cov
}

// mutator rewrites one JSON-RPC answer in place: method and params of the
// request, result of the answer (decoded JSON). It returns whether it
// changed anything.
type mutator func(method string, params map[string]any, result map[string]any) bool

// lyingRPC is an HTTP proxy in front of a real CometBFT RPC that passes
// every request through and rewrites answers with mut. It speaks what the
// CometBFT HTTP client sends: JSON-RPC 2.0 POSTs of one call.
type lyingRPC struct {
	*httptest.Server
	mu      sync.Mutex
	changed int           // answers mut changed
	delay   time.Duration // added to every answer (a network's latency)
}

func newLyingRPC(t testing.TB, upstream string, mut mutator) *lyingRPC {
	t.Helper()
	l := &lyingRPC{}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var call struct {
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		var answer map[string]any
		if mut != nil && json.Unmarshal(body, &call) == nil && json.Unmarshal(out, &answer) == nil {
			if res, ok := answer["result"].(map[string]any); ok && mut(call.Method, call.Params, res) {
				l.mu.Lock()
				l.changed++
				l.mu.Unlock()
				out, _ = json.Marshal(answer)
			}
		}
		if l.delay > 0 {
			time.Sleep(l.delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	}))
	t.Cleanup(l.Close)
	return l
}

// lies returns how many answers were altered.
func (l *lyingRPC) lies() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}
