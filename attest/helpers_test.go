package attest_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
)

// Published BIP39 reference mnemonics (trezor/python-mnemonic vectors): test
// keys only.
var testMnemonics = []string{
	"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
	"legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title",
	"letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless",
	"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote",
	"hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length",
	"panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside",
	"all hour make first leader extend hole alien behind guard gospel lava path output census museum junior mass reopen famous sing advance salt reform",
	"void come effort suffer camp survey warrior heavy shoot primary clutch crush open amazing screen patrol group space point ten exist slush involve unfold",
	"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
	"legal winner thank year wave sausage worth useful legal winner thank yellow",
	"letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
	"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
}

const (
	testChainID = "ksb-test"
	testHRP     = "thor"
	testVault   = "thorpub1addwnpepqtestvault0"
	otherVault  = "thorpub1addwnpepqothervault"
	// nGenesis nodes (testIDs 0..nGenesis-1) are registered at genesis;
	// testIDs[nGenesis] and [nGenesis+1] are spare keys; the last is the
	// authority.
	nGenesis = 9
	spare    = nGenesis
	// testVault has index 1 (the first vault created).
	testVaultIdx = 1
)

var testIDs = func() []*identity.Identity {
	ids := make([]*identity.Identity, len(testMnemonics))
	for i, m := range testMnemonics {
		id, err := identity.New(m)
		if err != nil {
			panic(err)
		}
		ids[i] = id
	}
	return ids
}()

func authority() *identity.Identity { return testIDs[len(testIDs)-1] }

// testAddrs are the addresses of testIDs, computed once: deriving one parses
// the public key, which is slow under the race detector.
var testAddrs = func() []string {
	a := make([]string, len(testIDs))
	for i, id := range testIDs {
		a[i] = id.Address(testHRP)
	}
	return a
}()

func addr(i int) string { return testAddrs[i] }

func idOf(a string) *identity.Identity {
	for i, x := range testAddrs {
		if x == a {
			return testIDs[i]
		}
	}
	panic("no test identity for " + a)
}

func nodeSpec(i int) attest.NodeSpec {
	return attest.NodeSpec{
		PubKey:     testIDs[i].PubKeyHex(),
		Multiaddrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 7000+i), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", 7000+i)},
	}
}

// testCustody are short custody parameters: epochs of 10 blocks (epoch e
// starts at 10e+1) and proof windows of 4, so a test reaches its epochs in
// tens of blocks.
var testCustody = attest.CustodyParams{
	Strategy: attest.StrategyRandom, EpochBlocks: 10, RoundEpochs: 1, ProofWindow: 4,
	AttestWindow: 30, RepairWindow: 5, RetentionBlocks: 20, DrillInterval: 5,
}

// testGenesis registers nodes 0..nGenesis-1 and testVault (index 1) with
// members 0..3, threshold 3, r = 3.
func testGenesis() attest.Genesis {
	g := attest.Genesis{Authority: authority().PubKeyHex(), Replication: 3, CustodyParams: testCustody}
	for i := range nGenesis {
		g.Nodes = append(g.Nodes, nodeSpec(i))
	}
	g.Vaults = []attest.VaultSpec{{PubKey: testVault, Members: []string{addr(0), addr(1), addr(2), addr(3)}, Threshold: 3}}
	return g
}

// chain drives an App through its ABCI methods, one block per call, and
// plays the owners and holders: it keeps the copies each commitment was
// made of, so it can prove any custody.
type chain struct {
	t      testing.TB
	app    *attest.App
	dir    string
	height int64
	seq    map[string]uint64
	acct   map[string]uint64
	rng    *rand.Rand
	copies map[uint64][][]byte // commitment id → its copies
	last   *abci.FinalizeBlockResponse
	salt   string // changes the block hashes from here on
}

func newChain(t testing.TB, g attest.Genesis) *chain {
	t.Helper()
	dir := t.TempDir()
	app, err := attest.NewApp(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	gb, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChainID, AppStateBytes: gb}); err != nil {
		t.Fatalf("InitChain: %v", err)
	}
	c := &chain{t: t, app: app, dir: dir, seq: map[string]uint64{}, acct: map[string]uint64{},
		rng: rand.New(rand.NewPCG(1, 2)), copies: map[uint64][][]byte{}}
	c.block() // commit genesis state at height 1
	return c
}

// blockHash is the stand-in for CometBFT's block hash at height h: the
// randomness of assignments, repairs and challenges.
func blockHash(h int64) []byte { return saltedHash("", h) }

func saltedHash(salt string, h int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(h))
	s := sha256.Sum256(append([]byte("block "+salt), b[:]...))
	return s[:]
}

// block finalizes and commits one block of txs and returns the results.
func (c *chain) block(txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.height++
	res, err := c.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: c.height, Hash: saltedHash(c.salt, c.height), Txs: txs})
	if err != nil {
		c.t.Fatalf("FinalizeBlock %d: %v", c.height, err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		c.t.Fatalf("Commit %d: %v", c.height, err)
	}
	c.last = res
	return res.TxResults
}

// until runs empty blocks until the last committed height is h.
func (c *chain) until(h int64) {
	c.t.Helper()
	for c.height < h {
		c.block()
	}
}

// account returns id's account number, from the chain (cached).
func (c *chain) account(id *identity.Identity) uint64 {
	c.t.Helper()
	a := id.Address(testHRP)
	if n, ok := c.acct[a]; ok {
		return n
	}
	var acc attest.Account
	if r := c.query("/sequence/"+a, &acc); r.Code != 0 {
		return 1 << 40 // no account: any number the chain refuses
	}
	c.acct[a] = acc.Account
	return acc.Account
}

// sign signs msg with id at its next sequence (as tracked by the test).
func (c *chain) sign(id *identity.Identity, msg attest.Msg) []byte {
	c.t.Helper()
	a := id.Address(testHRP)
	tx, err := attest.SignTx(id, testChainID, testHRP, c.account(id), c.seq[a], msg)
	if err != nil {
		c.t.Fatalf("SignTx: %v", err)
	}
	c.seq[a]++
	return tx
}

// exec runs one signed transaction in its own block and returns its result.
func (c *chain) exec(id *identity.Identity, msg attest.Msg) *abci.ExecTxResult {
	c.t.Helper()
	return c.block(c.sign(id, msg))[0]
}

func (c *chain) mustExec(id *identity.Identity, msg attest.Msg) *abci.ExecTxResult {
	c.t.Helper()
	r := c.exec(id, msg)
	if r.Code != 0 {
		c.t.Fatalf("%s by %s: code %d: %s", msg.Type(), id.Address(testHRP), r.Code, r.Log)
	}
	return r
}

// query runs an ABCI query and decodes a successful answer into v.
func (c *chain) query(path string, v any) *abci.QueryResponse {
	c.t.Helper()
	res, err := c.app.Query(context.Background(), &abci.QueryRequest{Path: path})
	if err != nil {
		c.t.Fatalf("Query %s: %v", path, err)
	}
	if res.Code == 0 && v != nil {
		if err := json.Unmarshal(res.Value, v); err != nil {
			c.t.Fatalf("Query %s: %v\n%s", path, err, res.Value)
		}
	}
	return res
}

func (c *chain) coverage(vault string) attest.Coverage {
	c.t.Helper()
	var cov attest.Coverage
	path := "/coverage"
	if vault != "" {
		path += "/" + vault
	}
	if r := c.query(path, &cov); r.Code != 0 {
		c.t.Fatalf("%s: code %d: %s", path, r.Code, r.Log)
	}
	return cov
}

// member returns the coverage of testVault's member i.
func (c *chain) member(i int) attest.MemberCoverage {
	c.t.Helper()
	for _, m := range c.coverage(testVault).Vaults[0].Members {
		if m.Address == addr(i) {
			return m
		}
	}
	c.t.Fatalf("member %d not in coverage", i)
	return attest.MemberCoverage{}
}

// newShare makes r random copies of size bytes and their commitment.
func (c *chain) newShare(size int) ([][]byte, custody.Commitment) {
	c.t.Helper()
	copies := make([][]byte, 3)
	for i := range copies {
		copies[i] = make([]byte, size)
		for j := range copies[i] {
			copies[i][j] = byte(c.rng.Uint32())
		}
	}
	cm, err := custody.NewCommitment(copies)
	if err != nil {
		c.t.Fatal(err)
	}
	return copies, cm
}

// commit makes owner commit a new share version of size bytes for the
// vault with index vault, and returns the commitment id.
func (c *chain) commit(owner int, vault uint64, size int) uint64 {
	c.t.Helper()
	copies, cm := c.newShare(size)
	res := c.mustExec(testIDs[owner], &attest.Commit{Shares: []attest.ShareCommit{{Vault: vault, Size: cm.Size, Root: cm.Root}}})
	ids := (&attest.TxResult{Events: res.Events}).Commitments()
	if len(ids) != 1 {
		c.t.Fatalf("commit: events name commitments %v", ids)
	}
	c.copies[ids[0]] = copies
	return ids[0]
}

func (c *chain) commitment(id uint64) attest.Commitment {
	c.t.Helper()
	var cm attest.Commitment
	if r := c.query(fmt.Sprintf("/commitment/%d", id), &cm); r.Code != 0 {
		c.t.Fatalf("/commitment/%d: code %d: %s", id, r.Code, r.Log)
	}
	return cm
}

func (c *chain) custody(id attest.CustodyID) attest.HeldCustody {
	c.t.Helper()
	var hc attest.HeldCustody
	if r := c.query(fmt.Sprintf("/custody/%d/%d", id.Commitment, id.Slot), &hc); r.Code != 0 {
		c.t.Fatalf("/custody/%d/%d: code %d: %s", id.Commitment, id.Slot, r.Code, r.Log)
	}
	return hc
}

// attestAll makes every holder of commitment id that has not attested yet
// attest its custody, in one block.
func (c *chain) attestAll(id uint64) {
	c.t.Helper()
	var txs [][]byte
	for _, cu := range c.commitment(id).Custodies {
		if !cu.Attested && cu.Status != "failed" {
			txs = append(txs, c.sign(idOf(cu.Holder), &attest.Attest{Custodies: []attest.CustodyID{{Commitment: id, Slot: cu.Slot}}}))
		}
	}
	for _, r := range c.block(txs...) {
		if r.Code != 0 {
			c.t.Fatalf("attest: code %d: %s", r.Code, r.Log)
		}
	}
}

// challenges returns holder's open challenges.
func (c *chain) challenges(holder string) []attest.Challenge {
	c.t.Helper()
	var a struct{ Challenges []attest.Challenge }
	if r := c.query("/challenges/holder/"+holder, &a); r.Code != 0 {
		c.t.Fatalf("challenges: code %d: %s", r.Code, r.Log)
	}
	return a.Challenges
}

// proof builds the proof of segment seg of custody id from the copy its
// holder holds.
func (c *chain) proof(id attest.CustodyID, seg uint64) attest.SegmentProof {
	c.t.Helper()
	return c.proofFromCopy(id, seg, int(c.custody(id).CopyIndex))
}

// proofFromCopy builds the proof of segment seg from copy copyIndex of id's
// commitment, whichever copy the custody holds.
func (c *chain) proofFromCopy(id attest.CustodyID, seg uint64, copyIndex int) attest.SegmentProof {
	c.t.Helper()
	copies := c.copies[id.Commitment]
	cm, err := custody.NewCommitment(copies)
	if err != nil {
		c.t.Fatal(err)
	}
	p, err := custody.Prove(copies[copyIndex], cm.CopyRoots, copyIndex, seg)
	if err != nil {
		c.t.Fatal(err)
	}
	return attest.NewSegmentProof(id, p)
}

// proveTxs returns one Prove per holder in holders answering all its open
// challenges (holders without any are skipped).
func (c *chain) proveTxs(holders ...string) [][]byte {
	c.t.Helper()
	var txs [][]byte
	for _, h := range holders {
		chs := c.challenges(h)
		if len(chs) == 0 {
			continue
		}
		var ps []attest.SegmentProof
		for _, ch := range chs {
			ps = append(ps, c.proof(attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}, ch.Segment))
		}
		txs = append(txs, c.sign(idOf(h), &attest.Prove{Epoch: chs[0].Epoch, Proofs: ps}))
	}
	return txs
}

// prove makes holders answer their open challenges, in one block.
func (c *chain) prove(holders ...string) {
	c.t.Helper()
	for _, r := range c.block(c.proveTxs(holders...)...) {
		if r.Code != 0 {
			c.t.Fatalf("prove: code %d: %s", r.Code, r.Log)
		}
	}
}

// epochStart returns the first block of epoch e under testCustody.
func epochStart(e int64) int64 { return e*testCustody.EpochBlocks + 1 }

// snapshot is the observable state apart from sequences: nodes, vaults,
// coverage, and every node's custodies and commitments.
func (c *chain) snapshot() string {
	c.t.Helper()
	out := ""
	for _, p := range []string{"/nodes", "/vaults"} {
		out += string(c.query(p, nil).Value)
	}
	cov := c.coverage("")
	cov.Height = 0 // the only thing an empty block changes
	b, _ := json.Marshal(cov)
	out += string(b)
	for i := range testIDs {
		out += string(c.query("/custodies/holder/"+addr(i), nil).Value)
		out += string(c.query("/commitments/owner/"+addr(i), nil).Value)
	}
	return out
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }

// custodyIDs returns the ids of commitment id's custodies held by holder.
func (c *chain) heldBy(id uint64, holder string) []attest.CustodyID {
	var out []attest.CustodyID
	for _, cu := range c.commitment(id).Custodies {
		if cu.Holder == holder {
			out = append(out, attest.CustodyID{Commitment: id, Slot: cu.Slot})
		}
	}
	return out
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func equalJSON(t testing.TB, a, b any) bool { return mustJSON(t, a) == mustJSON(t, b) }
