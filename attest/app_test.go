package attest_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
)

// TestNodesVaultsAndChurn: accounts, nodes, vaults and the churn's effects
// on coverage and signers.
func TestNodesVaultsAndChurn(t *testing.T) {
	c := newChain(t, testGenesis())
	var nodes struct{ Nodes []attest.Node }
	c.query("/nodes", &nodes)
	if len(nodes.Nodes) != nGenesis {
		t.Fatalf("nodes = %+v, want %d", nodes.Nodes, nGenesis)
	}
	accounts := map[uint64]bool{}
	for _, n := range nodes.Nodes {
		if !strings.HasPrefix(n.PeerID, "16Uiu2") || len(n.Multiaddrs) != 2 || n.Account == 0 || accounts[n.Account] {
			t.Errorf("node %+v: want a secp256k1 peer ID, 2 multiaddrs, its own account", n)
		}
		accounts[n.Account] = true
	}
	var acc attest.Account
	c.query("/sequence/"+authority().Address(testHRP), &acc)
	if acc.Account != attest.AuthorityAccount {
		t.Fatalf("authority's account %+v", acc)
	}
	if cov := c.coverage(testVault); cov.Vaults[0].Safe || cov.Vaults[0].Covered != 0 || cov.Vaults[0].Index != testVaultIdx {
		t.Fatalf("fresh vault coverage = %+v, want unsafe and nothing covered", cov)
	}
	ids := setupVault(t, c)

	// A churned-out node may no longer sign; a re-added node gets its
	// account and sequence back.
	out := c.commitment(ids[0]).Custodies[0].Holder
	c.mustExec(authority(), &attest.Churn{RemoveNodes: []string{out}})
	if r := c.exec(idOf(out), &attest.UpdateNode{Multiaddrs: []string{"/ip4/10.0.0.1/tcp/1"}}); r.Code != attest.CodeUnauthorized {
		t.Fatalf("tx by a churned-out node: code %d (%s), want %d", r.Code, r.Log, attest.CodeUnauthorized)
	}
	before := c.account(idOf(out))
	var nspec attest.NodeSpec
	for i := range testIDs {
		if addr(i) == out {
			nspec = nodeSpec(i)
		}
	}
	c.mustExec(authority(), &attest.Churn{
		AddNodes:     []attest.NodeSpec{nspec, nodeSpec(spare)},
		CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(0), addr(spare)}, Threshold: 2}},
	})
	var again attest.Account
	c.query("/sequence/"+out, &again)
	if again.Account != before || again.Sequence != c.seq[out] {
		t.Fatalf("re-added node's account %+v, want account %d sequence %d", again, before, c.seq[out])
	}
	c.mustExec(testIDs[spare], &attest.UpdateNode{Multiaddrs: []string{"/ip4/10.0.0.1/tcp/6540"}})
	c.query("/nodes", &nodes)
	for _, n := range nodes.Nodes {
		if n.Address == addr(spare) && !slices.Equal(n.Multiaddrs, []string{"/ip4/10.0.0.1/tcp/6540"}) {
			t.Errorf("node %d multiaddrs %v after UpdateNode", spare, n.Multiaddrs)
		}
	}
	var vaults struct{ Vaults []attest.Vault }
	c.query("/vaults", &vaults)
	if len(vaults.Vaults) != 2 {
		t.Fatalf("vaults = %+v", vaults.Vaults)
	}
	if all := c.coverage(""); len(all.Vaults) != 2 {
		t.Fatalf("coverage of all vaults: %d vaults", len(all.Vaults))
	}

	// Retiring a vault drops it from /coverage, keeps it in /vaults until
	// the retention grace is over, and stops its commitments counting.
	c.mustExec(authority(), &attest.Churn{RetireVaults: []string{testVault}})
	retired := c.height
	if all := c.coverage(""); len(all.Vaults) != 1 || all.Vaults[0].PubKey != otherVault {
		t.Fatalf("coverage after retiring: %+v", all.Vaults)
	}
	if cm := c.commitment(ids[1]); cm.Live || cm.RetiredHeight != retired {
		t.Fatalf("commitment of a retired vault: %+v", cm.CommitmentInfo)
	}
	if r := c.exec(testIDs[1], &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: 10, Root: [32]byte{9}}}}); r.Code != attest.CodeInvalid {
		t.Fatalf("commit to a retired vault: code %d (%s)", r.Code, r.Log)
	}
	c.until(retired + testCustody.RetentionBlocks)
	c.query("/vaults", &vaults)
	if len(vaults.Vaults) != 1 {
		t.Fatalf("vaults after the grace = %+v", vaults.Vaults)
	}
	if r := c.query("/commitment/"+itoa(ids[1]), nil); r.Code != attest.CodeNotFound {
		t.Fatalf("retired commitment after the grace: code %d", r.Code)
	}
	var held struct{ Custodies []attest.HeldCustody }
	c.query("/custodies/holder/"+out, &held)
	if len(held.Custodies) != 0 {
		t.Fatalf("custodies of the retired vault remain: %+v", held.Custodies)
	}

	var params attest.Params
	c.query("/params", &params)
	if params.ChainID != testChainID || params.Replication != 3 || params.HRP != testHRP || params.AuthorityAddress != authority().Address(testHRP) ||
		params.CustodyParams != testCustody {
		t.Errorf("params = %+v", params)
	}
}

func itoa(x uint64) string { return strconv.FormatUint(x, 10) }

// TestRejections feeds every kind of refused transaction and checks the code
// and that the observable state did not change.
func TestRejections(t *testing.T) {
	g := testGenesis()
	// Nothing happens by itself during the test: no epoch, deadline or
	// prune comes due.
	g.CustodyParams = attest.CustodyParams{EpochBlocks: 10_000, AttestWindow: 10_000, RepairWindow: 10_000, RetentionBlocks: 10_000}
	c := newChain(t, g)
	id := c.commit(0, testVaultIdx, 500)
	c.mustExec(authority(), &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(0), addr(1)}, Threshold: 1}}})
	c.mustExec(authority(), &attest.Churn{RetireVaults: []string{otherVault}})
	holder := idOf(c.commitment(id).Custodies[0].Holder)

	signed := c.sign(testIDs[2], &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: 10, Root: [32]byte{1}}}})
	c.seq[addr(2)]-- // not executed: reuse below
	flipped := bytes.Clone(signed)
	flipped[len(flipped)-5] ^= 1
	wrongChain, err := attest.SignTx(testIDs[2], "other-chain", testHRP, c.account(testIDs[2]), c.seq[addr(2)], &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}})
	if err != nil {
		t.Fatal(err)
	}
	asOther, err := attest.SignTx(testIDs[2], testChainID, testHRP, c.account(testIDs[3]), c.seq[addr(3)], &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(vault uint64) attest.Msg {
		return &attest.Commit{Shares: []attest.ShareCommit{{Vault: vault, Size: 10, Root: [32]byte{1}}}}
	}
	tests := []struct {
		name string
		id   *identity.Identity
		msg  attest.Msg
		raw  []byte // instead of id/msg
		code uint32
	}{
		{name: "garbage", raw: []byte("not a transaction"), code: attest.CodeMalformed},
		{name: "empty", raw: []byte{}, code: attest.CodeMalformed},
		{name: "truncated", raw: signed[:len(signed)-10], code: attest.CodeMalformed},
		{name: "trailing byte", raw: append(bytes.Clone(signed), 0), code: attest.CodeMalformed},
		{name: "unknown field", raw: append(bytes.Clone(signed), 0x60, 0x01), code: attest.CodeMalformed},
		{name: "over size", raw: make([]byte, attest.MaxTxSize+1), code: attest.CodeTooLarge},
		{name: "bad signature", raw: flipped, code: attest.CodeBadSignature},
		{name: "signed for another chain", raw: wrongChain, code: attest.CodeBadSignature},
		{name: "signed as another account", raw: asOther, code: attest.CodeBadSignature},
		{name: "replayed sequence", raw: forceSign(t, testIDs[0], c.account(testIDs[0]), 0, &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}}), code: attest.CodeBadSequence},
		{name: "future sequence", raw: forceSign(t, testIDs[3], c.account(testIDs[3]), 5, &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}}), code: attest.CodeBadSequence},
		{name: "no such account", raw: forceSign(t, testIDs[spare], 500, 0, &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}}), code: attest.CodeUnauthorized},
		{name: "churn by a node account", raw: forceSign(t, testIDs[0], c.account(testIDs[0]), c.seq[addr(0)], &attest.Churn{RemoveNodes: []string{addr(1)}}), code: attest.CodeUnauthorized},
		{name: "commit by the authority", raw: forceSign(t, authority(), 0, c.seq[authority().Address(testHRP)], commit(testVaultIdx)), code: attest.CodeUnauthorized},
		{name: "unknown vault", id: testIDs[2], msg: commit(9), code: attest.CodeNotFound},
		{name: "retired vault", id: testIDs[0], msg: commit(2), code: attest.CodeInvalid},
		{name: "not a member", id: testIDs[5], msg: commit(testVaultIdx), code: attest.CodeInvalid},
		{name: "phantom attestation", id: testIDs[8], msg: &attest.Attest{Custodies: []attest.CustodyID{{Commitment: id, Slot: 0}}}, code: attest.CodeNotAssigned},
		{name: "attest unknown custody", id: holder, msg: &attest.Attest{Custodies: []attest.CustodyID{{Commitment: id + 9, Slot: 0}}}, code: attest.CodeNotFound},
		{name: "prove without challenge", id: holder, msg: &attest.Prove{Epoch: 0, Proofs: []attest.SegmentProof{c.proof(attest.CustodyID{Commitment: id}, 0)}}, code: attest.CodeNoChallenge},
		{name: "drill of another's commitment", id: testIDs[1], msg: &attest.Drill{Custody: attest.CustodyID{Commitment: id}, Result: attest.DrillOK}, code: attest.CodeNotAssigned},
		{name: "add active node", id: authority(), msg: &attest.Churn{AddNodes: []attest.NodeSpec{nodeSpec(spare), nodeSpec(0)}}, code: attest.CodeExists},
		{name: "add the authority", id: authority(), msg: &attest.Churn{AddNodes: []attest.NodeSpec{nodeSpec(len(testIDs) - 1)}}, code: attest.CodeInvalid},
		{name: "remove unknown node", id: authority(), msg: &attest.Churn{RemoveNodes: []string{addr(0), addr(spare)}}, code: attest.CodeNotFound},
		{name: "create existing vault", id: authority(), msg: &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(0)}, Threshold: 1}}}, code: attest.CodeExists},
		{name: "member not active", id: authority(), msg: &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v2", Members: []string{addr(0), addr(spare)}, Threshold: 1}}}, code: attest.CodeInvalid},
		{name: "member removed in same churn", id: authority(), msg: &attest.Churn{RemoveNodes: []string{addr(3)}, CreateVaults: []attest.VaultSpec{{PubKey: "v3", Members: []string{addr(3)}, Threshold: 1}}}, code: attest.CodeInvalid},
		{name: "retire unknown vault", id: authority(), msg: &attest.Churn{RetireVaults: []string{"nope"}}, code: attest.CodeNotFound},
		{name: "retire twice", id: authority(), msg: &attest.Churn{RetireVaults: []string{otherVault}}, code: attest.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			signer := ""
			if raw == nil {
				signer = tt.id.Address(testHRP)
				raw = c.sign(tt.id, tt.msg)
			}
			before := c.snapshot()
			_, hashBefore := c.app.AppHash()
			res := c.block(raw)[0]
			if res.Code != tt.code || res.Log == "" || res.Codespace != attest.Codespace {
				t.Fatalf("code %d (%s) log %q, want code %d", res.Code, res.Codespace, res.Log, tt.code)
			}
			if after := c.snapshot(); after != before {
				t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
			}
			_, hashAfter := c.app.AppHash()
			// Refusals before the sequence is used leave the app hash alone.
			unused := tt.raw != nil && (tt.code != attest.CodeUnauthorized || tt.name == "no such account")
			if unused && !bytes.Equal(hashBefore, hashAfter) {
				t.Fatalf("app hash changed on a transaction refused before its sequence was used")
			}
			if signer != "" {
				// A state refusal uses the sequence, so it cannot be replayed.
				var acc attest.Account
				c.query("/sequence/"+signer, &acc)
				if acc.Sequence != c.seq[signer] {
					t.Fatalf("sequence of %s = %d after the refusal, want %d", signer, acc.Sequence, c.seq[signer])
				}
				if res := c.block(raw)[0]; res.Code != attest.CodeBadSequence {
					t.Fatalf("replay of the refused transaction: code %d (%s), want %d", res.Code, res.Log, attest.CodeBadSequence)
				}
			}
		})
	}
}

// forceSign signs a transaction SignTx would refuse, by signing a valid twin
// and swapping the message: only for feeding the app bad input.
func forceSign(t *testing.T, id *identity.Identity, account, seq uint64, msg attest.Msg) []byte {
	t.Helper()
	tx := &attest.Tx{Signer: account, Sequence: seq, Msg: msg}
	tx.Signature = id.Sign(tx.SignBytes(testChainID))
	return tx.Encode()
}

// TestRestart closes the app between blocks and after a block that was
// finalized but not committed: Info reports the last commit, and replaying
// the block gives the same app hash.
func TestRestart(t *testing.T) {
	c := newChain(t, testGenesis())
	id := c.commit(0, testVaultIdx, 900)
	height, hash := c.app.AppHash()
	if height != c.height || len(hash) != 32 {
		t.Fatalf("AppHash = %d %x", height, hash)
	}
	covBefore := c.coverage(testVault)

	// A block finalized, then a crash before Commit.
	cu := c.commitment(id).Custodies[0]
	pending := c.sign(idOf(cu.Holder), &attest.Attest{Custodies: []attest.CustodyID{{Commitment: id, Slot: 0}}})
	res, err := c.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: c.height + 1, Hash: blockHash(c.height + 1), Txs: [][]byte{pending}})
	if err != nil || res.TxResults[0].Code != 0 {
		t.Fatalf("FinalizeBlock: %v %+v", err, res)
	}
	if err := c.app.Close(); err != nil {
		t.Fatal(err)
	}
	app, err := attest.NewApp(c.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	c.app = app
	info, err := app.Info(context.Background(), &abci.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.LastBlockHeight != height || !bytes.Equal(info.LastBlockAppHash, hash) {
		t.Fatalf("Info after restart = %d %x, want %d %x", info.LastBlockHeight, info.LastBlockAppHash, height, hash)
	}
	if got := c.coverage(testVault); !equalJSON(t, got, covBefore) {
		t.Fatalf("coverage after restart = %+v, want %+v", got, covBefore)
	}
	// CometBFT replays the uncommitted block: same result, same hash.
	replayed := c.block(pending)
	if replayed[0].Code != 0 {
		t.Fatalf("replayed tx: %d %s", replayed[0].Code, replayed[0].Log)
	}
	if _, h := app.AppHash(); !bytes.Equal(h, res.AppHash) {
		t.Fatalf("replayed block hash %x, first run %x", h, res.AppHash)
	}
	if _, err := app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChainID}); err == nil {
		t.Fatal("InitChain accepted on a running chain")
	}
}

// TestAppHashIsAStateCommitment: two apps fed the same blocks agree; a
// different block hash (other holders drawn) gives a different state and
// hash; empty blocks between epochs do not change it.
func TestAppHashIsAStateCommitment(t *testing.T) {
	a, b := newChain(t, testGenesis()), newChain(t, testGenesis())
	_, ha := a.app.AppHash()
	_, hb := b.app.AppHash()
	if !bytes.Equal(ha, hb) {
		t.Fatal("same genesis, different hash")
	}
	a.block()
	b.block()
	if _, h := a.app.AppHash(); !bytes.Equal(h, ha) {
		t.Fatal("an empty block changed the app hash")
	}
	share := &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: 100, Root: [32]byte{4}}}}
	a.mustExec(testIDs[0], share)
	b.mustExec(testIDs[0], share)
	_, ha = a.app.AppHash()
	_, hb = b.app.AppHash()
	if !bytes.Equal(ha, hb) {
		t.Fatal("same blocks, different hash")
	}
	// The same commit in a block with another hash draws other holders.
	a.mustExec(testIDs[1], share)
	b.salt = "other" // b's next block has another hash
	b.mustExec(testIDs[1], share)
	_, ha = a.app.AppHash()
	_, hb = b.app.AppHash()
	if bytes.Equal(ha, hb) {
		t.Fatal("different blocks, same app hash")
	}
}

func TestProposals(t *testing.T) {
	c := newChain(t, testGenesis())
	good := c.sign(testIDs[1], &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}})
	bad := []byte("junk")
	badSig := bytes.Clone(good)
	badSig[len(badSig)-3] ^= 1
	prep, err := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: [][]byte{bad, badSig, good}, MaxTxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(prep.Txs) != 1 || !bytes.Equal(prep.Txs[0], good) {
		t.Fatalf("PrepareProposal kept %d txs, want only the good one", len(prep.Txs))
	}
	small, _ := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: [][]byte{good}, MaxTxBytes: int64(len(good) - 1)})
	if len(small.Txs) != 0 {
		t.Fatal("PrepareProposal went over MaxTxBytes")
	}
	unknown := forceSign(t, testIDs[spare], 77, 0, &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}})
	for _, tc := range []struct {
		name string
		txs  [][]byte
		want abci.ProcessProposalStatus
	}{
		{"good", [][]byte{good}, abci.PROCESS_PROPOSAL_STATUS_ACCEPT},
		{"junk", [][]byte{good, bad}, abci.PROCESS_PROPOSAL_STATUS_REJECT},
		{"bad signature of a known account", [][]byte{badSig}, abci.PROCESS_PROPOSAL_STATUS_REJECT},
		{"unknown account: FinalizeBlock decides", [][]byte{unknown}, abci.PROCESS_PROPOSAL_STATUS_ACCEPT},
	} {
		res, err := c.app.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: tc.txs, Height: 2})
		if err != nil || res.Status != tc.want {
			t.Fatalf("%s: ProcessProposal = %v, %v; want %v", tc.name, res.Status, err, tc.want)
		}
	}
	// A block over MaxBlockWrites is rejected even if each tx is fine:
	// full Attests write 2 keys per custody.
	var big [][]byte
	for i := 0; i*attest.MaxEntries*2 <= attest.MaxBlockWrites; i++ {
		ids := make([]attest.CustodyID, attest.MaxEntries)
		for j := range ids {
			ids[j] = attest.CustodyID{Commitment: uint64(i*attest.MaxEntries + j + 1)}
		}
		big = append(big, c.sign(testIDs[1], &attest.Attest{Custodies: ids}))
	}
	res, _ := c.app.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: big, Height: 2})
	if res.Status != abci.PROCESS_PROPOSAL_STATUS_REJECT {
		t.Fatalf("ProcessProposal of %d full Attests accepted", len(big))
	}
	prep, _ = c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: big, MaxTxBytes: 64 << 20})
	if len(prep.Txs) == 0 || len(prep.Txs) >= len(big) {
		t.Fatalf("PrepareProposal kept %d of %d full txs", len(prep.Txs), len(big))
	}
}

func TestQueryRefusals(t *testing.T) {
	c := newChain(t, testGenesis())
	for path, code := range map[string]uint32{
		"/nope":                        attest.CodeBadQuery,
		"":                             attest.CodeBadQuery,
		"/coverage/unknownvault":       attest.CodeNotFound,
		"/coverage/bad!key":            attest.CodeInvalid,
		"/commitments/owner/thor1x":    attest.CodeInvalid,
		"/custodies/holder/":           attest.CodeInvalid,
		"/challenges/other/" + addr(0): attest.CodeBadQuery,
		"/repairs/other/" + addr(0):    attest.CodeBadQuery,
		"/commitment/01":               attest.CodeInvalid,
		"/commitment/5":                attest.CodeNotFound,
		"/custody/1/256":               attest.CodeInvalid,
		"/custody/1/0":                 attest.CodeNotFound,
		"/sequence/" + testIDs[0].Address("tthor"): attest.CodeInvalid,
		"/sequence/" + addr(spare):                 attest.CodeNotFound,
	} {
		res := c.query(path, nil)
		if res.Code != code || res.Log == "" || res.Value != nil {
			t.Errorf("query %q: code %d log %q value %q, want code %d", path, res.Code, res.Log, res.Value, code)
		}
	}
}

func TestInitChainRefusesBadGenesis(t *testing.T) {
	g := testGenesis()
	g.Vaults[0].Members = append(g.Vaults[0].Members, addr(spare))
	auth := `{"authority":"` + authority().PubKeyHex() + `"`
	for name, state := range map[string]string{
		"not json":            "{",
		"unknown field":       auth + `,"bogus":1}`,
		"no authority":        `{}`,
		"member not a node":   mustJSON(t, g),
		"replication":         auth + `,"replication":65}`,
		"strategy":            auth + `,"strategy":"nearest"}`,
		"proof window":        auth + `,"epoch_blocks":10,"proof_window":10}`,
		"epoch of one block":  auth + `,"epoch_blocks":1}`,
		"negative window":     auth + `,"repair_window":-1}`,
		"huge retention":      auth + `,"retention_blocks":1099511627777}`,
		"round of no epochs?": auth + `,"round_epochs":1048577}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			app, err := attest.NewApp(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close()
			if _, err := app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChainID, AppStateBytes: []byte(state)}); err == nil {
				t.Fatal("InitChain accepted a bad genesis")
			}
			if res, _ := app.Query(context.Background(), &abci.QueryRequest{Path: "/params"}); res.Code == 0 {
				t.Fatal("params stored from a refused genesis")
			}
		})
	}
}

// TestGenesisDefaults: a genesis naming only the authority gets the
// reference network's defaults; --epoch-blocks alone scales the proof
// window and drill interval.
func TestGenesisDefaults(t *testing.T) {
	c := newChain(t, attest.Genesis{Authority: authority().PubKeyHex()})
	var p attest.Params
	c.query("/params", &p)
	want := attest.CustodyParams{
		Strategy: attest.StrategyRandom, EpochBlocks: attest.DefaultEpochBlocks, RoundEpochs: attest.DefaultRoundEpochs,
		ProofWindow: attest.DefaultProofWindow, AttestWindow: attest.DefaultAttestWindow, RepairWindow: attest.DefaultRepairWindow,
		RetentionBlocks: attest.DefaultRetentionBlocks, DrillInterval: attest.DefaultEpochBlocks / 2,
	}
	if p.CustodyParams != want || p.Replication != attest.DefaultReplication {
		t.Fatalf("default params %+v, want %+v", p, want)
	}
	g := attest.Genesis{Authority: authority().PubKeyHex(), CustodyParams: attest.CustodyParams{EpochBlocks: 20}}
	c = newChain(t, g)
	c.query("/params", &p)
	if p.EpochBlocks != 20 || p.ProofWindow != 10 || p.DrillInterval != 10 {
		t.Fatalf("params with epoch_blocks 20: %+v", p.CustodyParams)
	}
}
