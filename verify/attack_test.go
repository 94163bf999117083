package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/ksb-project/ksb/verify"
)

// hugeAnswer is what the flooding RPC sends for a proven query: more than
// any legitimate answer and more than verify.MaxResponseBytes.
const hugeAnswer = 96 << 20

// floodingRPC proxies every call to upstream except abci_query, which it
// answers with hugeAnswer bytes of a JSON string that never ends. written
// counts the bytes the client accepted.
func floodingRPC(t *testing.T, upstream string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if bytes.Contains(body, []byte(`"abci_query"`)) {
			w.Header().Set("Content-Type", "application/json")
			n, _ := io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"response":{"value":"`)
			written.Add(int64(n))
			chunk := []byte(strings.Repeat("A", 64<<10))
			for written.Load() < hugeAnswer {
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return // the client hung up
				}
			}
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, &written
}

// staleRPC proxies every call to upstream, but asks for the commit of
// height stuck where the client asks for the latest (no height).
func staleRPC(t *testing.T, upstream string, stuck int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var call map[string]any
		if json.Unmarshal(body, &call) == nil && call["method"] == "commit" {
			p, _ := call["params"].(map[string]any)
			if p == nil || p["height"] == nil {
				call["params"] = map[string]any{"height": strconv.FormatInt(stuck, 10)}
				body, _ = json.Marshal(call)
			}
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// headerTime is the time of header h on the node at rpcURL.
func headerTime(t *testing.T, rpcURL string, h int64) time.Time {
	t.Helper()
	rpc, err := rpchttp.New(rpcURL)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := rpc.Commit(context.Background(), &h)
	if err != nil {
		t.Fatal(err)
	}
	return cm.SignedHeader.Time
}

// TestAttacks: attacks on the verifying client that are not lies about
// content (TestLyingRPC) — an RPC that floods, a fork presented as the
// chain of the user's genesis file — refused, the honest path intact.
func TestAttacks(t *testing.T) {
	net := newTestNet(t, 2)
	up := net.e.RPCURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("huge answer", func(t *testing.T) {
		// A primary whose proven query answer never ends: the client must
		// stop reading at verify.MaxResponseBytes (io.ReadAll inside the
		// CometBFT RPC client has no cap of its own), not buffer it all.
		srv, written := floodingRPC(t, up)
		c, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: srv.URL, Anchor: net.anchor})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Coverage(ctx, "")
		if err == nil {
			t.Fatal("coverage from a flooding RPC succeeded")
		}
		if !errors.Is(err, verify.ErrResponseTooLarge) {
			t.Errorf("flooded: %v, want ErrResponseTooLarge", err)
		}
		if n := written.Load(); n > 4*verify.MaxResponseBytes {
			t.Fatalf("the client read %d MiB of one answer; the cap is %d MiB", n>>20, verify.MaxResponseBytes>>20)
		}
		t.Logf("refused after %d MiB sent: %v", written.Load()>>20, err)
		// The honest node through the same client code gives an answer.
		hc, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: up, Anchor: net.anchor})
		if err != nil {
			t.Fatal(err)
		}
		hs, err := hc.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cov, err := hs.Coverage(ctx, "")
		if err != nil || len(cov.Vaults) != 1 || len(cov.Vaults[0].Members) != 2 {
			t.Fatalf("honest coverage: %v %s", err, mustJSON(t, cov))
		}
	})

	t.Run("primary hides newer blocks", func(t *testing.T) {
		// A primary that answers "the latest commit" with header 2's, a
		// real, signed, old header: every witness has the same header 2,
		// so the light client finds no conflict. Latest must not present
		// the state of height 1 as the latest.
		srv := staleRPC(t, up, 2)
		hdr2 := headerTime(t, up, 2)
		const maxAge = 2 * time.Second
		if wait := maxAge - time.Since(hdr2); wait > 0 {
			time.Sleep(wait + 100*time.Millisecond) // header 2 must be older than maxAge
		}
		c, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: srv.URL, Witnesses: []string{up}, Anchor: net.anchor, MaxHeaderAge: maxAge})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Latest(ctx)
		if !errors.Is(err, verify.ErrStaleHeader) {
			h := int64(-1)
			if s != nil {
				h = s.Height
			}
			t.Fatalf("latest through a primary stuck at header 2: %v (state of height %d), want ErrStaleHeader", err, h)
		}
		t.Logf("refused: %v", err)
		// The honest node as primary, same age limit: the latest header
		// is a block interval old.
		hc, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: up, Witnesses: []string{srv.URL}, Anchor: net.anchor, MaxHeaderAge: maxAge})
		if err != nil {
			t.Fatal(err)
		}
		// Under -race on a loaded machine the chain can go longer than
		// maxAge without a block (seen: "header 8 … 3s ago"), and the
		// honest answer is then rightly refused too: ask again until a
		// block within maxAge is the latest.
		for {
			hs, err := hc.Latest(ctx)
			if err == nil && hs.Height >= 2 && time.Since(hs.HeaderTime) <= maxAge {
				break
			}
			if err != nil && !errors.Is(err, verify.ErrStaleHeader) || ctx.Err() != nil {
				t.Fatalf("honest latest: %v %+v", err, hs)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})

	t.Run("fork with the user's genesis file", func(t *testing.T) {
		// Another chain with the same chain ID, genesis state and app, but
		// its own validator: as primary, from the honest chain's genesis
		// file, its first block is not signed by the genesis validators.
		fork, _ := startChain(t, net.genesis)
		_, err := verify.New(ctx, verify.Config{ChainID: testChainID, Primary: fork.RPCURL(), Genesis: net.home + "/config/genesis.json"})
		if !errors.Is(err, verify.ErrHeaderVerification) {
			t.Fatalf("a fork as primary from the honest genesis: %v, want ErrHeaderVerification", err)
		}
		t.Logf("refused: %v", err)
	})
}
