package testnet_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/attest/testnet"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	l, err := testnet.Init(testnet.Options{Dir: dir, Nodes: 4, Validators: 2, BasePort: 30000, Keyshares: "testdata/keyshares"})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Chains) != 2 || len(l.Nodes) != 4 || l.ChainID != testnet.DefaultChainID {
		t.Fatalf("layout %+v", l)
	}
	ports := map[string]bool{}
	addrs := map[string]bool{}
	for j, n := range l.Nodes {
		c, err := config.Load(filepath.Join(n.Dir, config.FileName))
		if err != nil {
			t.Fatalf("node%d config: %v", j, err)
		}
		if len(c.P2P.Listen) != 2 || !strings.HasPrefix(c.P2P.Listen[0], "/ip4/127.0.0.1/tcp/") || !strings.HasSuffix(c.P2P.Listen[1], "/quic-v1") {
			t.Errorf("node%d listen %v", j, c.P2P.Listen)
		}
		if c.Chain.RPC != l.Chains[j%2].RPC || c.Chain.ChainID != l.ChainID || !strings.HasPrefix(c.Admin.Listen, "127.0.0.1:") {
			t.Errorf("node%d chain %+v admin %q", j, c.Chain, c.Admin.Listen)
		}
		for _, p := range append(append([]string{}, c.P2P.Listen[0]), c.Admin.Listen) {
			port := p[strings.LastIndexAny(p, ":/")+1:]
			if ports[port] {
				t.Errorf("port %s used twice", port)
			}
			ports[port] = true
		}
		fi, err := os.Stat(filepath.Join(n.Dir, "mnemonic"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("node%d mnemonic: %v %v", j, fi.Mode(), err)
		}
		m, _ := os.ReadFile(filepath.Join(n.Dir, "mnemonic"))
		if err := envelope.CheckMnemonic(strings.TrimSpace(string(m))); err != nil || len(strings.Fields(string(m))) != 24 {
			t.Fatalf("node%d mnemonic fails the envelope checks: %v", j, err)
		}
		id, _ := identity.New(strings.TrimSpace(string(m)))
		if id.Address("thor") != n.Address || addrs[n.Address] {
			t.Errorf("node%d address %s", j, n.Address)
		}
		addrs[n.Address] = true
		for _, d := range []string{"keyshares", "data"} {
			if fi, err := os.Stat(filepath.Join(n.Dir, d)); err != nil || !fi.IsDir() {
				t.Errorf("node%d has no %s/", j, d)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "authority", "mnemonic")); err != nil {
		t.Fatal(err)
	}

	// Files a..e dealt round robin: node0 gets a and e, node1 b, node2 c,
	// node3 d. Vaults: the go-tss ECDSA one (node0, node1), the go-tss EdDSA
	// one (node2, node3) and the tss-lib EdDSA one (node0).
	var assign map[string][]string
	b, err := os.ReadFile(filepath.Join(dir, "assignments.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &assign); err != nil {
		t.Fatal(err)
	}
	if len(assign) != 4 || len(assign["node0"]) != 2 || len(assign["node3"]) != 1 ||
		!filepath.IsAbs(assign["node0"][0]) || filepath.Base(assign["node0"][1]) != "e-tss-lib-eddsa-0.json" {
		t.Fatalf("assignments = %v", assign)
	}
	if len(l.Vaults) != 3 {
		t.Fatalf("vaults = %+v", l.Vaults)
	}
	want := map[string][2]int{ // vault key prefix → members, threshold
		"thorpub1addwnpepq": {2, 2},
		"thorpub1zcjduepq":  {2, 2},
		"6339bfe9":          {1, 1},
	}
	for _, v := range l.Vaults {
		found := false
		for prefix, mt := range want {
			if strings.HasPrefix(v.PubKey, prefix) {
				found = true
				if len(v.Members) != mt[0] || int(v.Threshold) != mt[1] {
					t.Errorf("vault %s: %d members threshold %d, want %v", v.PubKey, len(v.Members), v.Threshold, mt)
				}
			}
		}
		if !found {
			t.Errorf("unexpected vault %s", v.PubKey)
		}
	}

	// Both validator homes share one genesis whose app state holds all this.
	var gens []string
	for _, c := range l.Chains {
		g, err := os.ReadFile(filepath.Join(c.Dir, "config", "genesis.json"))
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, string(g))
		hc, err := attest.LoadHomeConfig(c.Dir)
		if err != nil || len(hc.PersistentPeers) != 1 || "http://"+hc.RPCListen != c.RPC {
			t.Fatalf("home config %+v, %v", hc, err)
		}
	}
	if gens[0] != gens[1] {
		t.Fatal("validators have different genesis files")
	}
	var doc struct {
		ChainID  string          `json:"chain_id"`
		AppState json.RawMessage `json:"app_state"`
	}
	if err := json.Unmarshal([]byte(gens[0]), &doc); err != nil {
		t.Fatal(err)
	}
	g, err := attest.ParseGenesis(doc.AppState)
	if err != nil || len(g.Nodes) != 4 || len(g.Vaults) != 3 || doc.ChainID != l.ChainID {
		t.Fatalf("genesis app state %+v, %v", g, err)
	}
}

func TestInitRefuses(t *testing.T) {
	notShares := t.TempDir()
	os.WriteFile(filepath.Join(notShares, "a.json"), []byte(`{"hello":"world"}`), 0o644)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	for name, tc := range map[string]struct {
		o    testnet.Options
		want error
	}{
		"no dir":         {testnet.Options{Nodes: 1, Validators: 1, BasePort: 30000}, testnet.ErrBadOptions},
		"no nodes":       {testnet.Options{Nodes: 0, Validators: 1, BasePort: 30000}, testnet.ErrBadOptions},
		"no validators":  {testnet.Options{Nodes: 1, Validators: 0, BasePort: 30000}, testnet.ErrBadOptions},
		"port too low":   {testnet.Options{Nodes: 1, Validators: 1, BasePort: 80}, testnet.ErrBadOptions},
		"port too high":  {testnet.Options{Nodes: 4, Validators: 4, BasePort: 65530}, testnet.ErrBadOptions},
		"not keyshares":  {testnet.Options{Nodes: 1, Validators: 1, BasePort: 30000, Keyshares: notShares}, testnet.ErrBadKeyshares},
		"no such dir":    {testnet.Options{Nodes: 1, Validators: 1, BasePort: 30000, Keyshares: filepath.Join(notShares, "nope")}, testnet.ErrBadKeyshares},
		"empty keyshare": {testnet.Options{Nodes: 1, Validators: 1, BasePort: 30000, Keyshares: t.TempDir()}, testnet.ErrBadKeyshares},
		"dir not empty":  {testnet.Options{Dir: full, Nodes: 1, Validators: 1, BasePort: 30000}, testnet.ErrDirNotEmpty},
	} {
		t.Run(name, func(t *testing.T) {
			o := tc.o
			fresh := false
			if o.Dir == "" && name != "no dir" {
				o.Dir = filepath.Join(t.TempDir(), "net")
				fresh = true
			}
			l, err := testnet.Init(o)
			if !errors.Is(err, tc.want) || l != nil {
				t.Fatalf("Init = %v, %v; want %v", l, err, tc.want)
			}
			if fresh {
				if _, err := os.Stat(o.Dir); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("refused init left %s behind", o.Dir)
				}
			}
			if name == "dir not empty" {
				if entries, _ := os.ReadDir(full); len(entries) != 1 {
					t.Fatalf("refused init wrote into %s", full)
				}
			}
		})
	}
}
