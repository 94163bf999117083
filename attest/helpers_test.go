package attest_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/attest"
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
}

const (
	testChainID = "ksb-test"
	testHRP     = "thor"
	testVault   = "thorpub1addwnpepqtestvault0"
	otherVault  = "thorpub1addwnpepqothervault"
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

// authority is testIDs[7]; nodes are testIDs[0..nNodes-1].
func authority() *identity.Identity { return testIDs[7] }

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

func nodeSpec(i int) attest.NodeSpec {
	return attest.NodeSpec{
		PubKey:     testIDs[i].PubKeyHex(),
		Multiaddrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 7000+i), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", 7000+i)},
	}
}

// testGenesis registers nodes 0..3 and testVault with all four as members,
// threshold 3, replication 2.
func testGenesis() attest.Genesis {
	g := attest.Genesis{Authority: authority().PubKeyHex(), Replication: 2}
	for i := range 4 {
		g.Nodes = append(g.Nodes, nodeSpec(i))
	}
	g.Vaults = []attest.VaultSpec{{PubKey: testVault, Members: []string{addr(0), addr(1), addr(2), addr(3)}, Threshold: 3}}
	return g
}

func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// chain drives an App through its ABCI methods, one block per call.
type chain struct {
	t      testing.TB
	app    *attest.App
	dir    string
	height int64
	seq    map[string]uint64
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
	c := &chain{t: t, app: app, dir: dir, seq: map[string]uint64{}}
	c.block() // commit genesis state at height 1
	return c
}

// block finalizes and commits one block of txs and returns the results.
func (c *chain) block(txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.height++
	res, err := c.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: c.height, Txs: txs})
	if err != nil {
		c.t.Fatalf("FinalizeBlock %d: %v", c.height, err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		c.t.Fatalf("Commit %d: %v", c.height, err)
	}
	return res.TxResults
}

// sign signs msg with id at its next sequence (as tracked by the test).
func (c *chain) sign(id *identity.Identity, msg attest.Msg) []byte {
	c.t.Helper()
	a := id.Address(testHRP)
	tx, err := attest.SignTx(id, testChainID, testHRP, c.seq[a], msg)
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

func (c *chain) mustExec(id *identity.Identity, msg attest.Msg) {
	c.t.Helper()
	if r := c.exec(id, msg); r.Code != 0 {
		c.t.Fatalf("%s by %s: code %d: %s", msg.Type(), id.Address(testHRP), r.Code, r.Log)
	}
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

// snapshot is the observable state apart from sequences: nodes, vaults and
// every node's attestations as holder.
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
		out += string(c.query("/attestations/holder/"+addr(i), nil).Value)
	}
	return out
}

func entry(owner int, vault, blob string) attest.Entry {
	return attest.Entry{Owner: addr(owner), Vault: vault, Digest: digest(blob), Size: 4096}
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }
