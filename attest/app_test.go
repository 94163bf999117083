package attest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest"
)

func TestHappyPath(t *testing.T) {
	c := newChain(t, testGenesis())

	var nodes struct{ Nodes []attest.Node }
	c.query("/nodes", &nodes)
	if len(nodes.Nodes) != 4 {
		t.Fatalf("nodes = %+v, want 4", nodes.Nodes)
	}
	for _, n := range nodes.Nodes {
		if !strings.HasPrefix(n.PeerID, "16Uiu2") || len(n.Multiaddrs) != 2 {
			t.Errorf("node %+v: want a secp256k1 peer ID and 2 multiaddrs", n)
		}
	}
	if cov := c.coverage(testVault); cov.Vaults[0].Safe || cov.Vaults[0].Covered != 0 {
		t.Fatalf("fresh vault coverage = %+v, want unsafe and nothing covered", cov)
	}

	// Each member's share is held by the next two members (r = 2).
	for h := range 4 {
		c.mustExec(testIDs[h], &attest.Attest{Entries: []attest.Entry{
			entry((h+3)%4, testVault, "share of "+addr((h+3)%4)),
			entry((h+2)%4, testVault, "share of "+addr((h+2)%4)),
		}})
	}
	cov := c.coverage(testVault)
	vc := cov.Vaults[0]
	if !vc.Safe || vc.Covered != 4 || vc.Threshold != 3 || vc.Replication != 2 || cov.Replication != 2 {
		t.Fatalf("coverage = %+v, want all 4 members covered and safe", vc)
	}
	for _, m := range vc.Members {
		if len(m.Holders) != 2 || slices.Contains(m.Holders, m.Address) {
			t.Errorf("member %s holders %v: want 2 others", m.Address, m.Holders)
		}
	}

	var byOwner struct{ Attestations []attest.Attestation }
	c.query("/attestations/owner/"+addr(0), &byOwner)
	if len(byOwner.Attestations) != 2 {
		t.Fatalf("attestations of owner 0 = %+v, want 2", byOwner.Attestations)
	}
	d := digest("share of " + addr(0))
	for _, a := range byOwner.Attestations {
		if a.Owner != addr(0) || a.Vault != testVault || a.Size != 4096 || a.Height < 2 || a.Digest != hexOf(d[:]) {
			t.Errorf("attestation %+v", a)
		}
		if a.Holder != addr(1) && a.Holder != addr(2) {
			t.Errorf("holder %s, want node 1 or 2", a.Holder)
		}
	}
	var byHolder struct{ Attestations []attest.Attestation }
	c.query("/attestations/holder/"+addr(1), &byHolder)
	if len(byHolder.Attestations) != 2 || byHolder.Attestations[0].Holder != addr(1) {
		t.Fatalf("attestations of holder 1 = %+v", byHolder.Attestations)
	}

	// Node 1 releases owner 0's blob: owner 0 drops to one holder.
	c.mustExec(testIDs[1], &attest.Release{Entries: []attest.EntryKey{entry(0, testVault, "share of "+addr(0)).Key()}})
	vc = c.coverage(testVault).Vaults[0]
	if vc.Covered != 3 || !vc.Safe {
		t.Fatalf("after one release: %+v, want 3 covered, still safe", vc)
	}

	// The authority churns node 2 out: its attestations stop counting, so
	// owners 0 and 1 lose a holder and the vault is no longer safe.
	c.mustExec(authority(), &attest.Churn{RemoveNodes: []string{addr(2)}})
	vc = c.coverage(testVault).Vaults[0]
	if vc.Covered != 2 || vc.Safe {
		t.Fatalf("after churning node 2 out: %+v, want 2 covered, unsafe", vc)
	}
	for _, m := range vc.Members {
		if slices.Contains(m.Holders, addr(2)) {
			t.Errorf("churned-out node 2 still counted for %s", m.Address)
		}
	}
	// A churned-out node may no longer attest.
	if r := c.exec(testIDs[2], &attest.Attest{Entries: []attest.Entry{entry(3, testVault, "x")}}); r.Code != attest.CodeUnauthorized {
		t.Fatalf("attest by churned-out node: code %d (%s), want %d", r.Code, r.Log, attest.CodeUnauthorized)
	}

	// A new node joins, a new vault is created with it, and it holds shares
	// of a non-member owner that is an active node.
	c.mustExec(authority(), &attest.Churn{
		AddNodes:     []attest.NodeSpec{nodeSpec(4)},
		CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(0), addr(4)}, Threshold: 2}},
	})
	c.mustExec(testIDs[4], &attest.Attest{Entries: []attest.Entry{entry(3, otherVault, "non-member share")}})
	c.mustExec(testIDs[4], &attest.UpdateNode{Multiaddrs: []string{"/ip4/10.0.0.1/tcp/6540"}})
	c.query("/nodes", &nodes)
	for _, n := range nodes.Nodes {
		if n.Address == addr(4) && !slices.Equal(n.Multiaddrs, []string{"/ip4/10.0.0.1/tcp/6540"}) {
			t.Errorf("node 4 multiaddrs %v after UpdateNode", n.Multiaddrs)
		}
	}
	all := c.coverage("")
	if len(all.Vaults) != 2 {
		t.Fatalf("coverage of all vaults: %d vaults", len(all.Vaults))
	}

	// Retiring a vault drops it from /coverage but keeps it in /vaults.
	c.mustExec(authority(), &attest.Churn{RetireVaults: []string{otherVault}})
	if all := c.coverage(""); len(all.Vaults) != 1 || all.Vaults[0].PubKey != testVault {
		t.Fatalf("coverage after retiring: %+v", all.Vaults)
	}
	var vaults struct{ Vaults []attest.Vault }
	c.query("/vaults", &vaults)
	if len(vaults.Vaults) != 2 {
		t.Fatalf("vaults = %+v", vaults.Vaults)
	}
	for _, v := range vaults.Vaults {
		if v.PubKey == otherVault && (!v.Retired || v.RetiredHeight == 0) {
			t.Errorf("retired vault %+v", v)
		}
	}

	var seq attest.Sequence
	c.query("/sequence/"+addr(4), &seq)
	if seq.Sequence != 2 || seq.Address != addr(4) {
		t.Errorf("sequence of node 4 = %+v, want 2", seq)
	}
	var params attest.Params
	c.query("/params", &params)
	if params.ChainID != testChainID || params.Replication != 2 || params.HRP != testHRP || params.AuthorityAddress != authority().Address(testHRP) {
		t.Errorf("params = %+v", params)
	}
}

func hexOf(b []byte) string { return strings.ToLower(strings.TrimSpace(fmtHex(b))) }

func fmtHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

// TestRejections feeds every kind of refused transaction and checks the code
// and that no node, vault or attestation changed.
func TestRejections(t *testing.T) {
	c := newChain(t, testGenesis())
	c.mustExec(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "held")}})
	c.mustExec(authority(), &attest.Churn{
		CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(0), addr(1)}, Threshold: 1}},
		RetireVaults: nil,
	})
	c.mustExec(authority(), &attest.Churn{RetireVaults: []string{otherVault}})

	signed := c.sign(testIDs[2], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "fresh")}})
	c.seq[addr(2)]-- // not executed: reuse below
	flipped := bytes.Clone(signed)
	flipped[len(flipped)-5] ^= 1

	wrongChain, err := attest.SignTx(testIDs[2], "other-chain", testHRP, 0, &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}})
	if err != nil {
		t.Fatalf("SignTx for another chain: %v", err)
	}

	tests := []struct {
		name string
		id   int // signer; -1: authority
		msg  attest.Msg
		raw  []byte // instead of id/msg
		code uint32
	}{
		{name: "garbage", raw: []byte("not a transaction"), code: attest.CodeMalformed},
		{name: "empty", raw: []byte{}, code: attest.CodeMalformed},
		{name: "truncated", raw: signed[:len(signed)-10], code: attest.CodeMalformed},
		{name: "trailing byte", raw: append(bytes.Clone(signed), 0), code: attest.CodeMalformed},
		{name: "unknown field", raw: append(bytes.Clone(signed), 0x40, 0x01), code: attest.CodeMalformed},
		{name: "over size", raw: make([]byte, attest.MaxTxSize+1), code: attest.CodeTooLarge},
		{name: "bad signature", raw: flipped, code: attest.CodeBadSignature},
		{name: "wrong chain", raw: wrongChain, code: attest.CodeWrongChain},
		{name: "holder is owner", raw: forceSign(t, testIDs[1], 1, &attest.Attest{Entries: []attest.Entry{entry(1, testVault, "own")}}), code: attest.CodeInvalid},
		{name: "replayed sequence", raw: replay(t, testIDs[1], 0, &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "held")}}), code: attest.CodeBadSequence},
		{name: "future sequence", raw: replay(t, testIDs[3], 5, &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "z")}}), code: attest.CodeBadSequence},
		{name: "signer not a node", id: 5, msg: &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}}, code: attest.CodeUnauthorized},
		{name: "update by non-node", id: 5, msg: &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}}, code: attest.CodeUnauthorized},
		{name: "release by non-node", id: 5, msg: &attest.Release{Entries: []attest.EntryKey{entry(0, testVault, "held").Key()}}, code: attest.CodeUnauthorized},
		{name: "churn by a node", id: 0, msg: &attest.Churn{RemoveNodes: []string{addr(1)}}, code: attest.CodeUnauthorized},
		{name: "unknown vault", id: 2, msg: &attest.Attest{Entries: []attest.Entry{entry(0, "thorpub1unknown", "a")}}, code: attest.CodeNotFound},
		{name: "retired vault", id: 2, msg: &attest.Attest{Entries: []attest.Entry{entry(0, otherVault, "a")}}, code: attest.CodeInvalid},
		{name: "owner neither active nor member", id: 2, msg: &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "ok"), entry(5, testVault, "a")}}, code: attest.CodeInvalid},
		{name: "release of nothing held", id: 2, msg: &attest.Release{Entries: []attest.EntryKey{entry(0, testVault, "held").Key()}}, code: attest.CodeNotFound},
		{name: "add active node", id: -1, msg: &attest.Churn{AddNodes: []attest.NodeSpec{nodeSpec(5), nodeSpec(0)}}, code: attest.CodeExists},
		{name: "remove unknown node", id: -1, msg: &attest.Churn{RemoveNodes: []string{addr(0), addr(6)}}, code: attest.CodeNotFound},
		{name: "create existing vault", id: -1, msg: &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: otherVault, Members: []string{addr(0)}, Threshold: 1}}}, code: attest.CodeExists},
		{name: "member not active", id: -1, msg: &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v2", Members: []string{addr(0), addr(6)}, Threshold: 1}}}, code: attest.CodeInvalid},
		{name: "member removed in same churn", id: -1, msg: &attest.Churn{RemoveNodes: []string{addr(3)}, CreateVaults: []attest.VaultSpec{{PubKey: "v3", Members: []string{addr(3)}, Threshold: 1}}}, code: attest.CodeInvalid},
		{name: "retire unknown vault", id: -1, msg: &attest.Churn{RetireVaults: []string{"nope"}}, code: attest.CodeNotFound},
		{name: "retire twice", id: -1, msg: &attest.Churn{RetireVaults: []string{otherVault}}, code: attest.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			signer := ""
			if raw == nil {
				id := authority()
				if tt.id >= 0 {
					id = testIDs[tt.id]
				}
				signer = id.Address(testHRP)
				raw = c.sign(id, tt.msg)
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
			stateless := tt.code < attest.CodeBadSequence || tt.code == attest.CodeInvalid && tt.raw != nil
			unused := stateless || tt.code == attest.CodeBadSequence
			if unused && !bytes.Equal(hashBefore, hashAfter) {
				t.Fatalf("app hash changed on a transaction refused before its sequence was used")
			}
			if signer != "" {
				// A state refusal uses the sequence, so it cannot be replayed.
				var seq attest.Sequence
				c.query("/sequence/"+signer, &seq)
				if seq.Sequence != c.seq[signer] {
					t.Fatalf("sequence of %s = %d after the refusal, want %d", signer, seq.Sequence, c.seq[signer])
				}
				if res := c.block(raw)[0]; res.Code != attest.CodeBadSequence {
					t.Fatalf("replay of the refused transaction: code %d (%s), want %d", res.Code, res.Log, attest.CodeBadSequence)
				}
			}
			// CheckTx, against the state after that block, agrees for the
			// stateless refusals and for signers without a role; any other
			// transaction's sequence is used by the block, so it is behind;
			// only the future sequence may wait in the mempool.
			want := tt.code
			switch {
			case stateless, tt.code == attest.CodeUnauthorized:
			case tt.name == "future sequence":
				want = attest.CodeOK
			default:
				want = attest.CodeBadSequence
			}
			ct, err := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: raw})
			if err != nil {
				t.Fatal(err)
			}
			if ct.Code != want {
				t.Fatalf("CheckTx code %d (%s), want %d", ct.Code, ct.Log, want)
			}
		})
	}
}

// forceSign signs a transaction SignTx would refuse, by signing a valid twin
// and swapping the message: only for feeding the app bad input.
func forceSign(t *testing.T, id interface {
	PubKey() []byte
	Sign([]byte) []byte
}, seq uint64, msg attest.Msg) []byte {
	t.Helper()
	tx := &attest.Tx{ChainID: testChainID, Signer: id.PubKey(), Sequence: seq, Msg: msg}
	tx.Signature = id.Sign(tx.SignBytes())
	return tx.Encode()
}

func replay(t *testing.T, id interface {
	PubKey() []byte
	Sign([]byte) []byte
}, seq uint64, msg attest.Msg) []byte {
	return forceSign(t, id, seq, msg)
}

func TestSignTxRefuses(t *testing.T) {
	id := testIDs[0]
	long := strings.Repeat("a", attest.MaxVaultKeyLen+1)
	many := make([]attest.Entry, attest.MaxEntries+1)
	for i := range many {
		many[i] = entry(1, testVault, string(rune('a'+i%26))+strings.Repeat("x", i))
	}
	tests := []struct {
		name string
		msg  attest.Msg
		want error
	}{
		{"no entries", &attest.Attest{}, attest.ErrInvalid},
		{"too many entries", &attest.Attest{Entries: many}, attest.ErrTooLarge},
		{"own blob", &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}}, attest.ErrInvalid},
		{"zero size", &attest.Attest{Entries: []attest.Entry{{Owner: addr(1), Vault: testVault, Size: 0}}}, attest.ErrInvalid},
		{"huge size", &attest.Attest{Entries: []attest.Entry{{Owner: addr(1), Vault: testVault, Size: attest.MaxBlobSize + 1}}}, attest.ErrInvalid},
		{"bad owner", &attest.Attest{Entries: []attest.Entry{{Owner: "thor1notanaddress", Vault: testVault, Size: 1}}}, attest.ErrInvalid},
		{"other hrp", &attest.Attest{Entries: []attest.Entry{{Owner: testIDs[1].Address("tthor"), Vault: testVault, Size: 1}}}, attest.ErrInvalid},
		{"upper-case owner", &attest.Attest{Entries: []attest.Entry{{Owner: strings.ToUpper(addr(1)), Vault: testVault, Size: 1}}}, attest.ErrInvalid},
		{"vault key too long", &attest.Attest{Entries: []attest.Entry{{Owner: addr(1), Vault: long, Size: 1}}}, attest.ErrInvalid},
		{"vault key with slash", &attest.Attest{Entries: []attest.Entry{{Owner: addr(1), Vault: "a/b", Size: 1}}}, attest.ErrInvalid},
		{"duplicate entry", &attest.Attest{Entries: []attest.Entry{entry(1, testVault, "a"), entry(1, testVault, "a")}}, attest.ErrInvalid},
		{"empty release", &attest.Release{}, attest.ErrInvalid},
		{"empty churn", &attest.Churn{}, attest.ErrInvalid},
		{"bad node key", &attest.Churn{AddNodes: []attest.NodeSpec{{PubKey: "02ab", Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1"}}}}, attest.ErrInvalid},
		{"node without multiaddr", &attest.Churn{AddNodes: []attest.NodeSpec{{PubKey: testIDs[5].PubKeyHex()}}}, attest.ErrInvalid},
		{"multiaddr with p2p", &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/1/p2p/" + id.PeerID().String()}}, attest.ErrInvalid},
		{"bad multiaddr", &attest.UpdateNode{Multiaddrs: []string{"/ip4/999.1.1.1/tcp/1"}}, attest.ErrInvalid},
		{"non-canonical multiaddr", &attest.UpdateNode{Multiaddrs: []string{"/ip4/1.2.3.4/tcp/01"}}, attest.ErrInvalid},
		{"too many multiaddrs", &attest.UpdateNode{Multiaddrs: strings.Split(strings.Repeat("/ip4/1.2.3.4/tcp/1,", 9), ",")[:9]}, attest.ErrTooLarge},
		{"threshold zero", &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Members: []string{addr(1)}, Threshold: 0}}}, attest.ErrInvalid},
		{"threshold over members", &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Members: []string{addr(1)}, Threshold: 2}}}, attest.ErrInvalid},
		{"member twice", &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Members: []string{addr(1), addr(1)}, Threshold: 1}}}, attest.ErrInvalid},
		{"vault without members", &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Threshold: 1}}}, attest.ErrInvalid},
		{"node added and removed", &attest.Churn{AddNodes: []attest.NodeSpec{nodeSpec(5)}, RemoveNodes: []string{addr(5)}}, attest.ErrInvalid},
		{"vault created and retired", &attest.Churn{CreateVaults: []attest.VaultSpec{{PubKey: "v", Members: []string{addr(1)}, Threshold: 1}}, RetireVaults: []string{"v"}}, attest.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := attest.SignTx(id, testChainID, testHRP, 0, tt.msg)
			if !errorsIs(err, tt.want) || tx != nil {
				t.Fatalf("SignTx = %x, %v; want %v", tx, err, tt.want)
			}
		})
	}
}

// TestRestart closes the app between blocks and after a block that was
// finalized but not committed: Info reports the last commit, and replaying
// the block gives the same app hash.
func TestRestart(t *testing.T) {
	c := newChain(t, testGenesis())
	c.mustExec(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}})
	height, hash := c.app.AppHash()
	if height != c.height || len(hash) != 32 {
		t.Fatalf("AppHash = %d %x", height, hash)
	}
	covBefore := c.coverage(testVault)

	// A block finalized, then a crash before Commit.
	pending := c.sign(testIDs[2], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "b")}})
	res, err := c.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: c.height + 1, Txs: [][]byte{pending}})
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
// different state gives a different hash; empty blocks do not change it.
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
	a.mustExec(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}})
	b.mustExec(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "b")}})
	_, ha = a.app.AppHash()
	_, hb = b.app.AppHash()
	if bytes.Equal(ha, hb) {
		t.Fatal("different attestations, same app hash")
	}
}

func TestProposals(t *testing.T) {
	c := newChain(t, testGenesis())
	good := c.sign(testIDs[1], &attest.Attest{Entries: []attest.Entry{entry(0, testVault, "a")}})
	bad := []byte("junk")
	prep, err := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: [][]byte{bad, good}, MaxTxBytes: 1 << 20})
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
	for _, tc := range []struct {
		txs  [][]byte
		want abci.ProcessProposalStatus
	}{
		{[][]byte{good}, abci.PROCESS_PROPOSAL_STATUS_ACCEPT},
		{[][]byte{good, bad}, abci.PROCESS_PROPOSAL_STATUS_REJECT},
	} {
		res, err := c.app.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: tc.txs, Height: 2})
		if err != nil || res.Status != tc.want {
			t.Fatalf("ProcessProposal(%d txs) = %v, %v; want %v", len(tc.txs), res.Status, err, tc.want)
		}
	}
	// A block over MaxBlockItems is rejected even if each tx is fine.
	var big [][]byte
	for i := 0; i*attest.MaxEntries <= attest.MaxBlockItems; i++ {
		entries := make([]attest.Entry, attest.MaxEntries)
		for j := range entries {
			entries[j] = entry(0, testVault, string(rune(i))+strings.Repeat("y", j))
		}
		// At consecutive sequences from the committed one: PrepareProposal
		// keeps no other.
		big = append(big, signAt(t, testIDs[1], uint64(i), &attest.Attest{Entries: entries}))
	}
	res, _ := c.app.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Txs: big, Height: 2})
	if res.Status != abci.PROCESS_PROPOSAL_STATUS_REJECT {
		t.Fatalf("ProcessProposal of %d items accepted", len(big)*attest.MaxEntries)
	}
	prep, _ = c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: big, MaxTxBytes: 64 << 20})
	if len(prep.Txs)*attest.MaxEntries > attest.MaxBlockItems || len(prep.Txs) == 0 {
		t.Fatalf("PrepareProposal kept %d full txs", len(prep.Txs))
	}
}

func TestQueryRefusals(t *testing.T) {
	c := newChain(t, testGenesis())
	for path, code := range map[string]uint32{
		"/nope":                          attest.CodeBadQuery,
		"":                               attest.CodeBadQuery,
		"/coverage/unknownvault":         attest.CodeNotFound,
		"/coverage/bad!key":              attest.CodeInvalid,
		"/attestations/owner/thor1bad":   attest.CodeInvalid,
		"/attestations/holder/":          attest.CodeInvalid,
		"/attestations/other/" + addr(0): attest.CodeBadQuery,
		"/sequence/" + testIDs[0].Address("tthor"): attest.CodeInvalid,
	} {
		res := c.query(path, nil)
		if res.Code != code || res.Log == "" || res.Value != nil {
			t.Errorf("query %q: code %d log %q value %q, want code %d", path, res.Code, res.Log, res.Value, code)
		}
	}
}

func TestInitChainRefusesBadGenesis(t *testing.T) {
	g := testGenesis()
	g.Vaults[0].Members = append(g.Vaults[0].Members, addr(5))
	for name, state := range map[string]string{
		"not json":          "{",
		"unknown field":     `{"authority":"` + authority().PubKeyHex() + `","bogus":1}`,
		"no authority":      `{}`,
		"member not a node": mustJSON(t, g),
		"replication":       `{"authority":"` + authority().PubKeyHex() + `","replication":65}`,
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

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func equalJSON(t *testing.T, a, b any) bool { return mustJSON(t, a) == mustJSON(t, b) }
