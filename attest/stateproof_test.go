package attest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest"
)

func (c *chain) proven(path string, height int64, data []byte) *abci.QueryResponse {
	c.t.Helper()
	res, err := c.app.Query(context.Background(), &abci.QueryRequest{Path: path, Height: height, Data: data, Prove: true})
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

// opValue returns the value an op's membership proof carries (nil for a
// non-membership proof).
func opValue(t testing.TB, op cmtcrypto.ProofOp) []byte {
	t.Helper()
	var p ics23.CommitmentProof
	if err := p.Unmarshal(op.Data); err != nil {
		t.Fatal(err)
	}
	if e := p.GetExist(); e != nil {
		return e.Value
	}
	return nil
}

// TestStateQueryProofs: /state returns a key's raw value with a proof that
// verifies against the app hash of the queried height — membership for a
// present key, non-membership for an absent one — and a tampered value,
// key, proof or app hash fails.
func TestStateQueryProofs(t *testing.T) {
	c := newChain(t, testGenesis())
	c.mustExec(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}})
	h, appHash := c.app.AppHash()

	key := "s/node/" + addr(1)
	res := c.proven("/state/"+key, 0, nil)
	if res.Code != 0 || res.Height != h || string(res.Key) != key || res.ProofOps == nil || len(res.ProofOps.Ops) != 1 {
		t.Fatalf("/state/%s: code %d (%s), height %d, ops %v", key, res.Code, res.Log, res.Height, res.ProofOps)
	}
	var rec map[string]any
	if err := json.Unmarshal(res.Value, &rec); err != nil || rec["pubkey"] != testIDs[1].PubKeyHex() {
		t.Fatalf("node record %s: %v", res.Value, err)
	}
	op := res.ProofOps.Ops[0]
	if op.Type != attest.StateProofOpType || attest.StateProofOpType != "ics23:iavl" {
		t.Fatalf("op type %q", op.Type)
	}
	if err := attest.VerifyStateProof(op, appHash, key, res.Value); err != nil {
		t.Fatal(err)
	}
	var p ics23.CommitmentProof
	if err := p.Unmarshal(op.Data); err != nil || !ics23.VerifyMembership(attest.StateProofSpec, appHash, &p, []byte(key), res.Value) {
		t.Fatalf("ics23.VerifyMembership with IavlSpec: %v", err)
	}
	tampered := bytes.Clone(res.Value)
	tampered[len(tampered)/2] ^= 1
	data := bytes.Clone(op.Data)
	data[len(data)-2] ^= 1
	bad := op
	bad.Data = data
	otherHash := bytes.Clone(appHash)
	otherHash[0] ^= 1
	for name, err := range map[string]error{
		"value":    attest.VerifyStateProof(op, appHash, key, tampered),
		"absent":   attest.VerifyStateProof(op, appHash, key, nil),
		"key":      attest.VerifyStateProof(op, appHash, "s/node/"+addr(2), res.Value),
		"proof":    attest.VerifyStateProof(bad, appHash, key, res.Value),
		"app hash": attest.VerifyStateProof(op, otherHash, key, res.Value),
	} {
		if !errors.Is(err, attest.ErrBadProof) {
			t.Errorf("tampered %s: %v, want ErrBadProof", name, err)
		}
	}

	// The same key in the query's data; an absent key: no value, a
	// non-membership proof.
	byData := c.proven("/state", 0, []byte(key))
	if byData.Code != 0 || !bytes.Equal(byData.Value, res.Value) {
		t.Fatalf("/state with the key in data: code %d value %s", byData.Code, byData.Value)
	}
	absent := "s/node/" + addr(5)
	res = c.proven("/state/"+absent, 0, nil)
	if res.Code != 0 || res.Value != nil || len(res.ProofOps.Ops) != 1 {
		t.Fatalf("absent key: code %d value %q", res.Code, res.Value)
	}
	if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, absent, nil); err != nil {
		t.Fatal(err)
	}
	if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, absent, []byte("{}")); !errors.Is(err, attest.ErrBadProof) {
		t.Fatalf("absence proof accepted for a value: %v", err)
	}
	// Without prove: the value, no proof.
	plain, _ := c.app.Query(context.Background(), &abci.QueryRequest{Path: "/state/" + key})
	if plain.Code != 0 || plain.ProofOps != nil || plain.Value == nil {
		t.Fatalf("unproven /state: %+v", plain)
	}
	// An empty state value (the owner index) is held as one zero byte.
	own := "s/own/" + addr(0) + "/" + addr(1) + "/" + testVault + "/" + hexOf(digestOf("a"))
	res = c.proven("/state/"+own, 0, nil)
	if res.Code != 0 || !bytes.Equal(res.Value, []byte{0}) {
		t.Fatalf("index key %s: code %d (%s) value %x, want 00", own, res.Code, res.Log, res.Value)
	}
	if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, own, res.Value); err != nil {
		t.Fatal(err)
	}

	for path, code := range map[string]uint32{
		"/state":                              attest.CodeInvalid,
		"/state/":                             attest.CodeInvalid,
		"/state/" + strings.Repeat("k", 1025): attest.CodeInvalid,
	} {
		if res := c.proven(path, 0, nil); res.Code != code || res.Log == "" {
			t.Errorf("%.40s: code %d (%s), want %d", path, res.Code, res.Log, code)
		}
	}
	if res := c.proven("/state/"+key, 0, []byte(key)); res.Code != attest.CodeInvalid {
		t.Errorf("key in path and data: code %d", res.Code)
	}
}

func digestOf(s string) []byte { d := digest(s); return d[:] }

// TestProvenJSONQueries: a JSON answer with prove=true carries one proof per
// state key it read; a client re-checks each against the app hash, and the
// values the proofs carry are the ones the answer was built from.
func TestProvenJSONQueries(t *testing.T) {
	c := newChain(t, testGenesis())
	for h := range 4 {
		c.mustExec(testIDs[h], &attest.Attest{Entries: []attest.Entry{
			entry((h+3)%4, testVault, "s"), entry((h+2)%4, testVault, "s"),
		}})
	}
	_, appHash := c.app.AppHash()
	for _, path := range []string{"/params", "/nodes", "/vaults", "/coverage/" + testVault, "/coverage",
		"/attestations/owner/" + addr(0), "/attestations/holder/" + addr(1), "/sequence/" + addr(1), "/sequence/" + addr(6)} {
		res := c.proven(path, 0, nil)
		if res.Code != 0 || res.ProofOps == nil || len(res.ProofOps.Ops) == 0 {
			t.Fatalf("%s: code %d (%s), no proofs", path, res.Code, res.Log)
		}
		seen := map[string]bool{}
		for _, op := range res.ProofOps.Ops {
			k := string(op.Key)
			if seen[k] {
				t.Errorf("%s: key %s proven twice", path, k)
			}
			seen[k] = true
			if err := attest.VerifyStateProof(op, appHash, k, opValue(t, op)); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		// The answer equals the unproven one.
		if plain := c.query(path, nil); !bytes.Equal(plain.Value, res.Value) {
			t.Errorf("%s: proven answer differs from the plain one", path)
		}
		switch {
		case path == "/params":
			if len(seen) != 1 || !seen["s/params"] {
				t.Errorf("/params proofs: %v", seen)
			}
		case strings.HasPrefix(path, "/coverage/"):
			// params, the vault list, the nodes, and each member's index.
			for _, k := range []string{"s/params", "s/vault/" + testVault, "s/node/" + addr(3)} {
				if !seen[k] {
					t.Errorf("%s: no proof of %s", path, k)
				}
			}
			own := 0
			for k := range seen {
				if strings.HasPrefix(k, "s/own/") {
					own++
				}
			}
			if own != 8 {
				t.Errorf("%s: %d index keys proven, want 8 (4 members × 2 holders)", path, own)
			}
		case path == "/sequence/"+addr(6):
			// An address never seen: proven absent.
			if k := "s/seq/" + addr(6); !seen[k] || opValue(t, res.ProofOps.Ops[len(res.ProofOps.Ops)-1]) != nil {
				t.Errorf("unknown signer's sequence: no absence proof")
			}
		}
	}
}

// TestQueryAtHeight: a query at a recent height answers from that block's
// state, with proofs against that block's app hash; a height not committed
// yet, or a negative one, is refused.
func TestQueryAtHeight(t *testing.T) {
	c := newChain(t, testGenesis())
	c.mustExec(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "old")}})
	hOld, hashOld := c.app.AppHash()
	c.mustExec(testIDs[1], &attest.Release{Entries: []attest.EntryKey{entry(0, testVault, "old").Key()}})
	c.block()
	key := "s/att/" + addr(1) + "/" + addr(0) + "/" + testVault + "/" + hexOf(digestOf("old"))

	then := c.proven("/state/"+key, hOld, nil)
	if then.Code != 0 || then.Height != hOld || then.Value == nil {
		t.Fatalf("at %d: code %d (%s) height %d value %q", hOld, then.Code, then.Log, then.Height, then.Value)
	}
	if err := attest.VerifyStateProof(then.ProofOps.Ops[0], hashOld, key, then.Value); err != nil {
		t.Fatal(err)
	}
	now := c.proven("/state/"+key, 0, nil)
	_, hashNow := c.app.AppHash()
	if now.Value != nil || now.Height != hOld+2 {
		t.Fatalf("latest: height %d value %q, want %d and absent", now.Height, now.Value, hOld+2)
	}
	if err := attest.VerifyStateProof(now.ProofOps.Ops[0], hashNow, key, nil); err != nil {
		t.Fatal(err)
	}
	// Proofs are tied to their height's hash.
	if err := attest.VerifyStateProof(then.ProofOps.Ops[0], hashNow, key, then.Value); err == nil {
		t.Fatal("a proof of the old state verified against the new app hash")
	}
	var atts struct{ Attestations []attest.Attestation }
	res, _ := c.app.Query(context.Background(), &abci.QueryRequest{Path: "/attestations/owner/" + addr(0), Height: hOld})
	if json.Unmarshal(res.Value, &atts); res.Code != 0 || res.Height != hOld || len(atts.Attestations) != 1 {
		t.Fatalf("attestations at %d: code %d, %+v", hOld, res.Code, atts)
	}
	for h, code := range map[int64]uint32{hOld + 3: attest.CodeNotFound, 1000: attest.CodeNotFound, -1: attest.CodeInvalid} {
		if res := c.proven("/params", h, nil); res.Code != code || res.Log == "" {
			t.Errorf("height %d: code %d (%s), want %d", h, res.Code, res.Log, code)
		}
	}
}

// TestProvenAnswerCap: an answer that would need more than MaxProvenKeys
// proofs is refused with CodeTooLarge, not built.
func TestProvenAnswerCap(t *testing.T) {
	c := newChain(t, testGenesis())
	var entries []attest.Entry
	for i := range attest.MaxEntries {
		entries = append(entries, entry(0, testVault, "blob "+string(rune('a'+i%26))+strings.Repeat("x", i/26)))
	}
	// Three holders of the same 1024 blobs: the owner's attestations read
	// 2 keys per entry, 6144 in all.
	for h := 1; h <= 3; h++ {
		c.mustExec(testIDs[h], &attest.Attest{Entries: entries})
	}
	res := c.proven("/attestations/owner/"+addr(0), 0, nil)
	if res.Code != attest.CodeTooLarge || res.ProofOps != nil {
		t.Fatalf("code %d (%s), want %d", res.Code, res.Log, attest.CodeTooLarge)
	}
	if plain := c.query("/attestations/owner/"+addr(0), nil); plain.Code != 0 {
		t.Fatalf("the unproven answer: code %d", plain.Code)
	}
}

// TestFailedBlockLeavesNothing: a storage failure in the middle of a block
// (after earlier transactions wrote) fails FinalizeBlock, and the block
// executed again gives the hash of a chain where it never failed — nothing
// of the failed run is left, including in block 1, which holds the genesis
// state.
func TestFailedBlockLeavesNothing(t *testing.T) {
	ref, c := newChain(t, testGenesis()), newChain(t, testGenesis())
	for _, ch := range []*chain{ref, c} {
		ch.mustExec(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}})
	}
	txs := [][]byte{
		c.sign(testIDs[2], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "b")}}),
		c.sign(testIDs[3], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "c")}}),
	}
	want := ref.block(txs...)
	_, wantHash := ref.app.AppHash()
	req := &abci.FinalizeBlockRequest{Height: c.height + 1, Txs: txs}
	for _, at := range []int{2, 5, 6} { // in the first transaction; the second's sequence; its entry
		if _, err := attest.FinalizeBlockFailingAt(c.app, req, at); !errors.Is(err, attest.ErrInternal) {
			t.Fatalf("failing at write %d: %v", at, err)
		}
	}
	got := c.block(txs...)
	if _, h := c.app.AppHash(); !bytes.Equal(h, wantHash) || got[0].Code != want[0].Code || got[1].Code != want[1].Code {
		t.Fatalf("block after failed runs: hash %x codes %d %d, want %x %d %d", h, got[0].Code, got[1].Code, wantHash, want[0].Code, want[1].Code)
	}

	// Block 1, on top of InitChain's uncommitted writes.
	ref1, app := newChainAt0(t), newChainAt0(t)
	want1, err := ref1.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := attest.SignTx(testIDs[1], testChainID, testHRP, 0, &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}})
	if _, err := attest.FinalizeBlockFailingAt(app, &abci.FinalizeBlockRequest{Height: 1, Txs: [][]byte{raw}}, 2); err == nil {
		t.Fatal("injected failure in block 1 not reported")
	}
	got1, err := app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 1})
	if err != nil || !bytes.Equal(got1.AppHash, want1.AppHash) {
		t.Fatalf("block 1 after a failed run: %v, hash %x want %x", err, got1.AppHash, want1.AppHash)
	}
	// Finalized twice without a commit (CometBFT never does; a restart of
	// the app does): the second run starts from the last commit too.
	again, err := app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 1})
	if err != nil || !bytes.Equal(again.AppHash, want1.AppHash) {
		t.Fatalf("block 1 finalized again: %v", err)
	}
	if _, err := app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		t.Fatal(err)
	}
	if h, hash := app.AppHash(); h != 1 || !bytes.Equal(hash, want1.AppHash) {
		t.Fatalf("committed block 1: %d %x", h, hash)
	}
	// A block of the wrong height is refused.
	if _, err := app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 5}); err == nil {
		t.Fatal("block 5 on a state at 1 accepted")
	}
}

// newChainAt0 returns an app after InitChain, before block 1.
func newChainAt0(t *testing.T) *attest.App {
	t.Helper()
	app, err := attest.NewApp(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	gb, _ := json.Marshal(testGenesis())
	if _, err := app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChainID, AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	return app
}
