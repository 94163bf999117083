package main_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/ksb-project/ksb/attest"
)

// lyingProxy passes CometBFT JSON-RPC calls to upstream and lets lie
// rewrite the decoded result of each answer; it counts the answers changed.
func lyingProxy(t *testing.T, upstream string, lie func(method string, params, result map[string]any) bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var lies atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		resp, err := http.Post(upstream+r.URL.RequestURI(), "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var call struct {
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		var answer map[string]any
		if json.Unmarshal(body, &call) == nil && json.Unmarshal(out, &answer) == nil {
			if res, ok := answer["result"].(map[string]any); ok && lie(call.Method, call.Params, res) {
				lies.Add(1)
				out, _ = json.Marshal(answer)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv, &lies
}

// lieStateValues flips the last byte of every proven /state value.
func lieStateValues(method string, params, res map[string]any) bool {
	r, _ := res["response"].(map[string]any)
	v, _ := r["value"].(string)
	if method != "abci_query" || params["path"] != attest.StateQueryPath || v == "" {
		return false
	}
	b, _ := base64.StdEncoding.DecodeString(v)
	b[len(b)-1] ^= 1
	r["value"] = base64.StdEncoding.EncodeToString(b)
	return true
}

// lieAppHashes alters the app hash of every header above 1.
func lieAppHashes(method string, _, res map[string]any) bool {
	sh, _ := res["signed_header"].(map[string]any)
	hd, _ := sh["header"].(map[string]any)
	if method != "commit" || hd == nil || hd["height"] == "1" {
		return false
	}
	b, _ := hex.DecodeString(hd["app_hash"].(string))
	b[0] ^= 1
	hd["app_hash"] = hex.EncodeToString(b)
	return true
}

// checkVerifiedCoverage runs `ksb coverage --verify` against validators
// given as processes: from the genesis file with the first RPC as primary
// and the others as witnesses, and from a trusted height and hash, it must
// print the plain coverage's answer with the height and app hash it is
// proven at; through a proxy lying about values, or with a witness lying
// about app hashes, it must exit 3 and print nothing.
func checkVerifiedCoverage(t *testing.T, ctx context.Context, genesis string, rpcs []string) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("the --verify checks took %v", time.Since(start).Round(time.Millisecond)) }()
	args := []string{"coverage", "--verify", "--json", "--exit-zero", "--genesis", genesis}
	for _, r := range rpcs {
		args = append(args, "--rpc", r)
	}
	var got struct {
		coverageJSON
		Proven struct {
			Height     int64    `json:"height"`
			AppHash    string   `json:"app_hash"`
			Witnesses  []string `json:"witnesses"`
			Keys       int      `json:"keys"`
			ProofBytes int      `json:"proof_bytes"`
		} `json:"proven"`
	}
	out := mustRun(t, args...)
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Proven.Height < 2 || len(got.Proven.AppHash) != 64 || len(got.Proven.Witnesses) != len(rpcs)-1 || got.Proven.Keys == 0 {
		t.Fatalf("ksb coverage --verify: proven %+v", got.Proven)
	}
	// The application's own answer at the proven height, from another
	// validator: the same, field for field.
	rpc, err := rpchttp.New(rpcs[1])
	if err != nil {
		t.Fatal(err)
	}
	res, err := rpc.ABCIQueryWithOptions(ctx, "/coverage", nil, rpcclient.ABCIQueryOptions{Height: got.Proven.Height})
	if err != nil || res.Response.Code != 0 {
		t.Fatalf("/coverage at %d: %v %+v", got.Proven.Height, err, res)
	}
	var want coverageJSON
	if err := json.Unmarshal(res.Response.Value, &want); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.coverageJSON) != fmt.Sprint(want) {
		t.Fatalf("verified coverage at %d:\n%s\nthe app's:\n%s", got.Proven.Height, out, res.Response.Value)
	}
	t.Logf("coverage --verify with %d validators: proven at height %d, app hash %s, %d keys, %d proof bytes",
		len(rpcs), got.Proven.Height, got.Proven.AppHash, got.Proven.Keys, got.Proven.ProofBytes)

	// A trusted height and header hash instead of the genesis.
	h := got.Proven.Height
	cm, err := rpc.Commit(ctx, &h)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "coverage", "--verify", "--exit-zero", "--trust-height", fmt.Sprint(h), "--trust-hash", cm.SignedHeader.Hash().String(), "--rpc", rpcs[2], "--rpc", rpcs[3])

	liar, lies := lyingProxy(t, rpcs[0], lieStateValues)
	r := runKSB(t, nil, "coverage", "--verify", "--genesis", genesis, "--rpc", liar.URL, "--rpc", rpcs[1], "--rpc", rpcs[2])
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "value does not match its proof") || lies.Load() == 0 {
		t.Fatalf("coverage --verify through a lying primary: exit %d, %d lies\n%s\n%s", r.code, lies.Load(), r.stdout, r.stderr)
	}
	witness, wlies := lyingProxy(t, rpcs[1], lieAppHashes)
	r = runKSB(t, nil, "coverage", "--verify", "--genesis", genesis, "--rpc", rpcs[0], "--rpc", witness.URL)
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, "witness conflict") || wlies.Load() == 0 {
		t.Fatalf("coverage --verify with a lying witness: exit %d, %d lies\n%s\n%s", r.code, wlies.Load(), r.stdout, r.stderr)
	}
	// Witnesses only make sense with --verify.
	if r := runKSB(t, nil, "coverage", "--rpc", rpcs[0], "--rpc", rpcs[1]); r.code != 1 || !strings.Contains(r.stderr, "go with --verify") {
		t.Fatalf("several --rpc without --verify: exit %d %s", r.code, r.stderr)
	}
}
