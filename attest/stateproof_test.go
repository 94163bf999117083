package attest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ics23 "github.com/cosmos/ics23/go"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"google.golang.org/protobuf/proto"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/attest/attestpb"
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

// fakeShare is a share of testVault whose root the chain takes on trust
// (it never sees copies): enough for tests of state, not of proofs of
// possession.
func fakeShare(tag string) attest.ShareCommit {
	return attest.ShareCommit{Vault: testVaultIdx, Size: 4096, Root: sha256.Sum256([]byte(tag))}
}

// commitFake makes owner commit fakeShare(tag) and returns the commitment id.
func (c *chain) commitFake(owner int, tag string) uint64 {
	c.t.Helper()
	res := c.mustExec(testIDs[owner], &attest.Commit{Shares: []attest.ShareCommit{fakeShare(tag)}})
	ids := (&attest.TxResult{Events: res.Events}).Commitments()
	if len(ids) != 1 {
		c.t.Fatalf("commit: events name commitments %v", ids)
	}
	return ids[0]
}

// TestStateQueryProofs: /state returns a key's raw value with a proof that
// verifies against the app hash of the queried height — membership for a
// present key, non-membership for an absent one — and a tampered value,
// key, proof or app hash fails.
func TestStateQueryProofs(t *testing.T) {
	c := newChain(t, testGenesis())
	id := c.commitFake(0, "a")
	h, appHash := c.app.AppHash()

	key := attest.KeyNode(addr(1))
	res := c.proven("/state/"+key, 0, nil)
	if res.Code != 0 || res.Height != h || string(res.Key) != key || res.ProofOps == nil || len(res.ProofOps.Ops) != 1 {
		t.Fatalf("/state/%s: code %d (%s), height %d, ops %v", key, res.Code, res.Log, res.Height, res.ProofOps)
	}
	var rec attestpb.NodeRecord
	if err := proto.Unmarshal(res.Value, &rec); err != nil || hexOf(rec.Pubkey) != testIDs[1].PubKeyHex() {
		t.Fatalf("node record %x: %v", res.Value, err)
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
		"key":      attest.VerifyStateProof(op, appHash, attest.KeyNode(addr(2)), res.Value),
		"proof":    attest.VerifyStateProof(bad, appHash, key, res.Value),
		"app hash": attest.VerifyStateProof(op, otherHash, key, res.Value),
	} {
		if !errors.Is(err, attest.ErrStateProof) {
			t.Errorf("tampered %s: %v, want ErrStateProof", name, err)
		}
		if errors.Is(err, attest.ErrBadProof) {
			t.Errorf("tampered %s: %v is the custody proof error ErrBadProof", name, err)
		}
	}

	// The same key in the query's data; an absent key: no value, a
	// non-membership proof.
	byData := c.proven("/state", 0, []byte(key))
	if byData.Code != 0 || !bytes.Equal(byData.Value, res.Value) {
		t.Fatalf("/state with the key in data: code %d value %x", byData.Code, byData.Value)
	}
	absent := attest.KeyCommitment(id + 1)
	res = c.proven("/state/"+absent, 0, nil)
	if res.Code != 0 || res.Value != nil || len(res.ProofOps.Ops) != 1 {
		t.Fatalf("absent key: code %d value %q", res.Code, res.Value)
	}
	if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, absent, nil); err != nil {
		t.Fatal(err)
	}
	if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, absent, []byte{8, 1}); !errors.Is(err, attest.ErrStateProof) {
		t.Fatalf("absence proof accepted for a value: %v", err)
	}
	// Without prove: the value, no proof.
	plain, _ := c.app.Query(context.Background(), &abci.QueryRequest{Path: "/state/" + key})
	if plain.Code != 0 || plain.ProofOps != nil || plain.Value == nil {
		t.Fatalf("unproven /state: %+v", plain)
	}
	// An empty state value (the owner's index of its commitments) is held
	// as one zero byte, and proven as that byte.
	owned := "s/owned/" + addr(0) + "/" + fmt.Sprintf("%016x", id)
	res = c.proven("/state/"+owned, 0, nil)
	if res.Code != 0 || !bytes.Equal(res.Value, []byte{0}) {
		t.Fatalf("index key %s: code %d (%s) value %x, want 00", owned, res.Code, res.Log, res.Value)
	}
	if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, owned, res.Value); err != nil {
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

// TestProvenJSONQueries: a JSON answer with prove=true carries one proof per
// state key it read; a client re-checks each against the app hash, and the
// values the proofs carry are the ones the answer was built from. A vault's
// coverage reads exactly the no-scan key chain (params, vault, each member's
// latest commitment, its record, its custodies, their holders' node keys).
func TestProvenJSONQueries(t *testing.T) {
	c := newChain(t, testGenesis())
	ids := map[int]uint64{}
	for m := range 3 { // member 3 commits nothing
		ids[m] = c.commit(m, testVaultIdx, 2048)
		c.attestAll(ids[m])
	}
	_, appHash := c.app.AppHash()
	for _, path := range []string{"/params", "/nodes", "/vaults", "/coverage/" + testVault, "/coverage",
		"/commitments/owner/" + addr(0), fmt.Sprintf("/commitment/%d", ids[1]), "/custodies/holder/" + addr(1),
		"/sequence/" + addr(1), "/epoch"} {
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
		switch path {
		case "/params":
			if len(seen) != 1 || !seen[attest.KeyParams()] {
				t.Errorf("/params proofs: %v", seen)
			}
		case "/coverage/" + testVault:
			want := map[string]bool{attest.KeyParams(): true, attest.KeyVault(testVault): true}
			for m := range 4 {
				want[attest.KeyLatest(addr(m), testVaultIdx)] = true // member 3's proven absent
			}
			for m := range 3 {
				want[attest.KeyCommitment(ids[m])] = true
				for _, cu := range c.commitment(ids[m]).Custodies {
					want[attest.KeyCustody(attest.CustodyID{Commitment: ids[m], Slot: cu.Slot})] = true
					want[attest.KeyNode(cu.Holder)] = true
				}
			}
			if !maps.Equal(seen, want) {
				t.Errorf("%s proves %v,\nwant the key chain %v", path, slices.Sorted(maps.Keys(seen)), slices.Sorted(maps.Keys(want)))
			}
			for _, op := range res.ProofOps.Ops {
				if string(op.Key) == attest.KeyLatest(addr(3), testVaultIdx) && opValue(t, op) != nil {
					t.Errorf("member 3's latest commitment is not proven absent")
				}
			}
		}
	}
	// An address without an account is a refusal, not a proven answer:
	// its absence is proven through /state.
	if res := c.proven("/sequence/"+addr(spare), 0, nil); res.Code != attest.CodeNotFound || res.ProofOps != nil {
		t.Errorf("unknown signer's sequence: code %d, ops %v", res.Code, res.ProofOps)
	}
}

// TestCoverageFromProvenReads: ComputeVaultCoverage run on a StateGetter
// that fetches every key from /state with its proof and verifies it against
// the app hash gives the app's own /coverage answer — what `ksb coverage
// --verify` does over RPC — and a getter fed one lying value fails.
func TestCoverageFromProvenReads(t *testing.T) {
	c := newChain(t, testGenesis())
	for m := range 4 {
		c.attestAll(c.commit(m, testVaultIdx, 1024))
	}
	h, appHash := c.app.AppHash()
	var params attest.Params
	c.query("/params", &params)
	reads := 0
	verified := func(lie string) attest.StateGetter {
		return func(key string) ([]byte, error) {
			reads++
			res := c.proven("/state/"+key, h, nil)
			if res.Code != 0 || res.ProofOps == nil || len(res.ProofOps.Ops) != 1 {
				return nil, fmt.Errorf("/state/%s: code %d %s", key, res.Code, res.Log)
			}
			v := res.Value
			if key == lie && v != nil {
				v = bytes.Clone(v)
				v[len(v)-1] ^= 1
			}
			if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, key, v); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	vc, err := attest.ComputeVaultCoverage(verified(""), &params, testVault)
	if err != nil {
		t.Fatal(err)
	}
	want := c.coverage(testVault).Vaults[0]
	if !equalJSON(t, vc, want) || !vc.Safe {
		t.Fatalf("coverage from proven reads %s,\nthe app's %s", mustJSON(t, vc), mustJSON(t, want))
	}
	t.Logf("coverage of 4 members from %d proven reads", reads)
	cm := c.commitment(c.coverage(testVault).Vaults[0].Members[2].Commitment)
	lie := attest.KeyCustody(attest.CustodyID{Commitment: cm.ID, Slot: 1})
	if _, err := attest.ComputeVaultCoverage(verified(lie), &params, testVault); !errors.Is(err, attest.ErrStateProof) {
		t.Fatalf("a lying custody record: %v, want ErrStateProof", err)
	}
}

// TestQueryAtHeight: a query at a recent height answers from that block's
// state, with proofs against that block's app hash; a height not committed
// yet, or a negative one, is refused.
func TestQueryAtHeight(t *testing.T) {
	c := newChain(t, testGenesis())
	gone := addr(nGenesis - 1) // no vault member
	hOld, hashOld := c.app.AppHash()
	c.mustExec(authority(), &attest.Churn{RemoveNodes: []string{gone}})
	c.block()
	key := attest.KeyNode(gone)

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
	var nodes struct{ Nodes []attest.Node }
	res, _ := c.app.Query(context.Background(), &abci.QueryRequest{Path: "/nodes", Height: hOld})
	if json.Unmarshal(res.Value, &nodes); res.Code != 0 || res.Height != hOld || len(nodes.Nodes) != nGenesis {
		t.Fatalf("nodes at %d: code %d, %d nodes", hOld, res.Code, len(nodes.Nodes))
	}
	c.query("/nodes", &nodes)
	if len(nodes.Nodes) != nGenesis-1 {
		t.Fatalf("nodes now: %d", len(nodes.Nodes))
	}
	for h, code := range map[int64]uint32{hOld + 3: attest.CodeNotFound, 1000: attest.CodeNotFound, -1: attest.CodeInvalid} {
		if res := c.proven("/params", h, nil); res.Code != code || res.Log == "" {
			t.Errorf("height %d: code %d (%s), want %d", h, res.Code, res.Log, code)
		}
	}
}

// TestProvenAnswerCap: an answer that would need more than MaxProvenKeys
// proofs is refused with CodeTooLarge, not built; the unproven answer is
// still given.
func TestProvenAnswerCap(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 4,096 nodes")
	}
	c := newChain(t, testGenesis())
	// /nodes reads one key per active node: nGenesis + 4 × 1024 of them.
	for b := range 4 {
		var add []attest.NodeSpec
		for i := range attest.MaxChurnNodes {
			seed := sha256.Sum256([]byte(fmt.Sprintf("cap node %d/%d", b, i)))
			pub := secp256k1.PrivKeyFromBytes(seed[:]).PubKey().SerializeCompressed()
			add = append(add, attest.NodeSpec{PubKey: hexOf(pub), Multiaddrs: []string{fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/1", b, i/250, i%250+1)}})
		}
		c.mustExec(authority(), &attest.Churn{AddNodes: add})
	}
	res := c.proven("/nodes", 0, nil)
	if res.Code != attest.CodeTooLarge || res.ProofOps != nil {
		t.Fatalf("code %d (%s), want %d", res.Code, res.Log, attest.CodeTooLarge)
	}
	if plain := c.query("/nodes", nil); plain.Code != 0 {
		t.Fatalf("the unproven answer: code %d", plain.Code)
	}
}

// TestFailedBlockLeavesNothing: a storage failure at any write of a block —
// in the chain's own work at its start (an epoch's challenges), in a
// transaction, or in its own work at its end (timers) — fails FinalizeBlock,
// and the block executed again gives the hash of a chain where it never
// failed: nothing of the failed run is left, including in block 1, which
// holds the genesis state.
func TestFailedBlockLeavesNothing(t *testing.T) {
	ref, c := newChain(t, testGenesis()), newChain(t, testGenesis())
	// Block 2 commits and block 3 attests (challenged from epoch 1), block
	// 11 commits without attestations (custodies time out at 11 + 30): the
	// block at 41 starts epoch 4 and ends with those timers.
	for _, ch := range []*chain{ref, c} {
		ch.attestAll(ch.commitFake(0, "a"))
		ch.until(10)
		ch.commitFake(1, "b")
		ch.until(epochStart(4) - 1)
	}
	txs := [][]byte{
		c.sign(testIDs[2], &attest.Commit{Shares: []attest.ShareCommit{fakeShare("c")}}),
		c.sign(testIDs[3], update(3)),
	}
	want := ref.block(txs...)
	_, wantHash := ref.app.AppHash()
	var events []string
	for _, ev := range ref.last.Events {
		events = append(events, ev.Type)
	}
	if !slices.Contains(events, "ksb.epoch") || !slices.Contains(events, "ksb.fail") {
		t.Fatalf("block %d's own events %v: want an epoch's start and timed-out custodies", ref.height, events)
	}

	req := &abci.FinalizeBlockRequest{Height: c.height + 1, Hash: blockHash(c.height + 1), Txs: txs}
	writes, err := attest.BlockWrites(c.app, req)
	if err != nil {
		t.Fatal(err)
	}
	var inBegin, inTx, inEnd bool
	for at := 1; at <= writes; at++ {
		_, err := attest.FinalizeBlockFailingAt(c.app, req, at)
		if !errors.Is(err, attest.ErrInternal) {
			t.Fatalf("failing at write %d of %d: %v", at, writes, err)
		}
		if h, hash := c.app.AppHash(); h != c.height || bytes.Equal(hash, wantHash) {
			t.Fatalf("failing at write %d: committed state moved to %d", at, h)
		}
		tx := strings.Contains(err.Error(), "transaction ")
		inTx = inTx || tx
		inBegin = inBegin || (!tx && !inTx)
		inEnd = inEnd || (!tx && inTx)
	}
	if !inBegin || !inTx || !inEnd {
		t.Fatalf("%d writes: failures at the block's start %v, in a transaction %v, at its end %v", writes, inBegin, inTx, inEnd)
	}
	got := c.block(txs...)
	if _, h := c.app.AppHash(); !bytes.Equal(h, wantHash) || got[0].Code != want[0].Code || got[1].Code != want[1].Code {
		t.Fatalf("block after failed runs: hash %x codes %d %d, want %x %d %d", h, got[0].Code, got[1].Code, wantHash, want[0].Code, want[1].Code)
	}
	t.Logf("block %d: a failure injected at each of its %d writes left nothing", c.height, writes)

	// Block 1, on top of InitChain's uncommitted writes.
	ref1, app := newChainAt0(t), newChainAt0(t)
	want1, err := ref1.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 1, Hash: blockHash(1)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := attest.SignTx(testIDs[1], testChainID, testHRP, 2, 0, update(1))
	if _, err := attest.FinalizeBlockFailingAt(app, &abci.FinalizeBlockRequest{Height: 1, Hash: blockHash(1), Txs: [][]byte{raw}}, 2); err == nil {
		t.Fatal("injected failure in block 1 not reported")
	}
	got1, err := app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 1, Hash: blockHash(1)})
	if err != nil || !bytes.Equal(got1.AppHash, want1.AppHash) {
		t.Fatalf("block 1 after a failed run: %v, hash %x want %x", err, got1.AppHash, want1.AppHash)
	}
	// Finalized twice without a commit (CometBFT never does; a restart of
	// the app does): the second run starts from the last commit too.
	again, err := app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 1, Hash: blockHash(1)})
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
	if _, err := app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 5, Hash: blockHash(5)}); err == nil {
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

// TestNamedReads: over a verified StateGetter, ComputeCoverage of every
// live vault, ReadOwnerCommitments and ReadNodes give what the app's JSON
// queries give, reading named keys only; a listing is ErrNotNamed. A
// second vault, and a superseded version, are in state.
func TestNamedReads(t *testing.T) {
	g := testGenesis()
	g.Vaults = append(g.Vaults, attest.VaultSpec{PubKey: otherVault, Members: []string{addr(1), addr(4), addr(5)}, Threshold: 2})
	c := newChain(t, g)
	for m := range 4 {
		c.attestAll(c.commit(m, testVaultIdx, 1024))
	}
	c.attestAll(c.commit(1, testVaultIdx, 2048)) // supersedes member 1's first
	c.attestAll(c.commit(1, 2, 512))
	h, appHash := c.app.AppHash()
	verified := func(key string) ([]byte, error) {
		res := c.proven("/state/"+key, h, nil)
		if res.Code != 0 || res.ProofOps == nil || len(res.ProofOps.Ops) != 1 {
			return nil, fmt.Errorf("/state/%s: code %d %s", key, res.Code, res.Log)
		}
		if err := attest.VerifyStateProof(res.ProofOps.Ops[0], appHash, key, res.Value); err != nil {
			return nil, err
		}
		return attest.DecodeStateValue(res.Value), nil
	}
	p, err := attest.ReadParams(verified)
	if err != nil {
		t.Fatal(err)
	}
	cov, err := attest.ComputeCoverage(verified, p, "")
	if err != nil {
		t.Fatal(err)
	}
	want := c.coverage("")
	want.Height = 0
	if !equalJSON(t, cov, want) || len(cov.Vaults) != 2 {
		t.Fatalf("coverage of every vault from named reads:\n%s\nthe app's:\n%s", mustJSON(t, cov), mustJSON(t, want))
	}

	got, err := attest.ReadOwnerCommitments(verified, addr(1))
	if err != nil {
		t.Fatal(err)
	}
	var owned struct{ Commitments []attest.Commitment }
	c.query("/commitments/owner/"+addr(1), &owned)
	var live []attest.Commitment
	for _, cm := range owned.Commitments {
		if cm.Live {
			live = append(live, cm)
		}
	}
	if len(owned.Commitments) != 3 || !equalJSON(t, got, live) {
		t.Fatalf("owner's newest commitments from named reads:\n%s\nthe app's live ones:\n%s", mustJSON(t, got), mustJSON(t, live))
	}
	var holders []string
	for _, cm := range got {
		for _, cu := range cm.Custodies {
			holders = append(holders, cu.Holder)
		}
	}
	nodes, err := attest.ReadNodes(verified, append(holders, testAddrs[spare]))
	if err != nil || len(nodes) != len(holders) {
		t.Fatalf("ReadNodes: %v, %d nodes for %d holders (and one non-node)", err, len(nodes), len(holders))
	}
	var all struct{ Nodes []attest.Node }
	c.query("/nodes", &all)
	for _, n := range nodes {
		found := false
		for _, a := range all.Nodes {
			found = found || equalJSON(t, n, a)
		}
		if !found {
			t.Fatalf("node %+v is not as /nodes has it", n)
		}
	}

	// A getter that refuses one key: the answer fails, it is not computed
	// without it.
	lying := func(key string) ([]byte, error) {
		if key == attest.KeyVaultIndex(2) {
			return nil, attest.ErrStateProof
		}
		return verified(key)
	}
	if _, err := attest.ComputeCoverage(lying, p, ""); !errors.Is(err, attest.ErrStateProof) {
		t.Fatalf("coverage with a refused vault index: %v", err)
	}
}
