package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ksb-project/ksb/internal/fixtures"
)

// processNet is a testnet of processes (startProcessNet): the chain and
// one `ksb node` per node, each node's dealt keyshares in its keyshares/.
type processNet struct {
	homes []testnetHome
	procs []*proc // procs[0] is the chain, procs[i+1] node i
	addrs []string
	index map[string]int // node index by address
	dealt [][]string     // the keyshare files copied into node i's keyshares/
}

// startProcessNet deals nodes the fixture keyshares of one keygen, node i
// party i (ECDSA, and EdDSA with eddsa: two vaults), runs the testnet with
// prep (may be nil) applied to each node home before its node starts
// (startTestnetWith), and copies each node's dealt files into its
// keyshares/, checking it got one file per vault.
func startProcessNet(t *testing.T, dir string, nodes int, eddsa bool, prep func(home string)) *processNet {
	t.Helper()
	shares := t.TempDir()
	// testnet init deals the files sorted by name round robin: these
	// names give node i the files of party i.
	for i := range nodes {
		e, err := fixtures.ECDSA(i)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(shares, fmt.Sprintf("a-ecdsa-%d.json", i)), e, 0o600)
		if eddsa {
			d, err := fixtures.EdDSA(i)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(shares, fmt.Sprintf("b-eddsa-%d.json", i)), d, 0o600)
		}
	}
	vaults := 1
	if eddsa {
		vaults = 2
	}
	pn := &processNet{index: map[string]int{}}
	pn.homes, pn.procs = startTestnetWith(t, dir, nodes, shares, prep)
	for i, h := range pn.homes {
		a := nodeAddress(t, h.Dir)
		pn.addrs = append(pn.addrs, a)
		pn.index[a] = i
		files := copyAssigned(t, dir, fmt.Sprintf("node%d", i))
		if len(files) != vaults {
			t.Fatalf("node%d was dealt %d files, want %d", i, len(files), vaults)
		}
		pn.dealt = append(pn.dealt, files)
	}
	return pn
}

// wipeButMnemonic deletes a (stopped) node's home, as a lost disk would,
// keeping only its mnemonic, which it returns the path of, outside the home.
func wipeButMnemonic(t *testing.T, home string) string {
	t.Helper()
	mnemonic := filepath.Join(t.TempDir(), "mnemonic")
	b, err := os.ReadFile(filepath.Join(home, "mnemonic"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mnemonic, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(home); err != nil {
		t.Fatal(err)
	}
	return mnemonic
}
