package attest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest"
)

// TestProvenQueriesOverRPC queries a real validator over CometBFT's RPC with
// prove=true at the height that committed a commitment, takes the app hash
// from the signed header of the next height (RPC commit), and checks the
// ICS23 proofs against it: the commitment record's membership, an absent
// key's non-membership, every key of a coverage answer. A tampered value or
// proof, or the app hash of the queried height's own header, fails.
func TestProvenQueriesOverRPC(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _ := attest.NewClient(e.RPCURL())
	res, err := attest.NewSender(c, testIDs[1]).Commit(ctx, fakeShare("proven share"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Commitments()) != 1 {
		t.Fatalf("commit result names commitments %v", res.Commitments())
	}
	id := res.Commitments()[0]
	h := res.Height
	rpc, err := rpchttp.New(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, c, h+1)
	next := h + 1
	commit, err := rpc.Commit(ctx, &next)
	if err != nil {
		t.Fatal(err)
	}
	appHash := []byte(commit.SignedHeader.Header.AppHash)
	prev, err := rpc.Commit(ctx, &h)
	if err != nil {
		t.Fatal(err)
	}

	key := attest.KeyCommitment(id)
	q, err := rpc.ABCIQueryWithOptions(ctx, "/state/"+key, nil, rpcclient.ABCIQueryOptions{Height: h, Prove: true})
	if err != nil {
		t.Fatal(err)
	}
	r := q.Response
	if r.Code != 0 || r.Height != h || r.Value == nil || r.ProofOps == nil || len(r.ProofOps.Ops) != 1 {
		t.Fatalf("/state at %d: code %d (%s) height %d value %q", h, r.Code, r.Log, r.Height, r.Value)
	}
	var p ics23.CommitmentProof
	if err := p.Unmarshal(r.ProofOps.Ops[0].Data); err != nil {
		t.Fatal(err)
	}
	if !ics23.VerifyMembership(ics23.IavlSpec, appHash, &p, []byte(key), r.Value) {
		t.Fatalf("membership of %s does not verify against header %d's app hash", key, next)
	}
	tampered := bytes.Clone(r.Value)
	tampered[0] ^= 1
	if ics23.VerifyMembership(ics23.IavlSpec, appHash, &p, []byte(key), tampered) {
		t.Fatal("a tampered value verified")
	}
	bad := bytes.Clone(r.ProofOps.Ops[0].Data)
	bad[len(bad)-4] ^= 1
	var pb ics23.CommitmentProof
	if pb.Unmarshal(bad) == nil && ics23.VerifyMembership(ics23.IavlSpec, appHash, &pb, []byte(key), r.Value) {
		t.Fatal("a tampered proof verified")
	}
	if ics23.VerifyMembership(ics23.IavlSpec, []byte(prev.SignedHeader.Header.AppHash), &p, []byte(key), r.Value) {
		t.Fatalf("the proof verified against header %d, which holds the app hash of %d", h, h-1)
	}

	// Absent: the next commitment id, not made yet.
	absent := attest.KeyCommitment(id + 1)
	q, err = rpc.ABCIQueryWithOptions(ctx, "/state/"+absent, nil, rpcclient.ABCIQueryOptions{Height: h, Prove: true})
	if err != nil || q.Response.Code != 0 || q.Response.Value != nil {
		t.Fatalf("absent key: %v %+v", err, q.Response)
	}
	var np ics23.CommitmentProof
	if err := np.Unmarshal(q.Response.ProofOps.Ops[0].Data); err != nil {
		t.Fatal(err)
	}
	if !ics23.VerifyNonMembership(ics23.IavlSpec, appHash, &np, []byte(absent)) {
		t.Fatal("non-membership does not verify")
	}
	if ics23.VerifyNonMembership(ics23.IavlSpec, appHash, &np, []byte(key)) {
		t.Fatal("an absence proof showed a present key absent")
	}

	// A JSON answer: every key it read, proven at h.
	q, err = rpc.ABCIQueryWithOptions(ctx, "/coverage/"+testVault, nil, rpcclient.ABCIQueryOptions{Height: h, Prove: true})
	if err != nil || q.Response.Code != 0 || q.Response.ProofOps == nil {
		t.Fatalf("/coverage proven: %v %+v", err, q.Response)
	}
	found := false
	for _, op := range q.Response.ProofOps.Ops {
		if err := attest.VerifyStateProof(op, appHash, string(op.Key), opValue(t, op)); err != nil {
			t.Fatal(err)
		}
		found = found || string(op.Key) == attest.KeyLatest(addr(1), testVaultIdx)
	}
	if !found {
		t.Fatal("the coverage answer's proofs do not include the member's latest commitment key")
	}

	// As curl sees it: prove=true, the height, base64 fields, proofOps.ops.
	u := e.RPCURL() + "/abci_query?path=" + url.QueryEscape(`"/state/`+key+`"`) + "&prove=true&height=" + url.QueryEscape(`"`) + jsonInt(h) + url.QueryEscape(`"`)
	hr, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	var raw struct {
		Result struct {
			Response struct {
				Value    string `json:"value"`
				Height   string `json:"height"`
				ProofOps struct {
					Ops []struct {
						Type string `json:"type"`
						Key  string `json:"key"`
						Data string `json:"data"`
					} `json:"ops"`
				} `json:"proofOps"`
			} `json:"response"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	rr := raw.Result.Response
	v, _ := base64.StdEncoding.DecodeString(rr.Value)
	if rr.Height != jsonInt(h) || !bytes.Equal(v, r.Value) || len(rr.ProofOps.Ops) != 1 || rr.ProofOps.Ops[0].Type != "ics23:iavl" {
		t.Fatalf("curl-style answer: %s", body)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
