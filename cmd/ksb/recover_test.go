package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/fixtures"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/recovery/recoverytest"
)

// recoverMnemonic is a published BIP39 reference vector (trezor/python-
// mnemonic): a test key only.
const recoverMnemonic = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"

func mnemonicFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mnemonic")
	if err := os.WriteFile(p, []byte(recoverMnemonic+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freeRPC(t *testing.T) string {
	t.Helper()
	a, err := attest.FreeLocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + a
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s holds %d entries, want none", dir, len(ents))
	}
}

// TestRecoverRefusals: flags and situations `ksb recover` cannot work with
// end with exit status 1, a clear message on stderr, nothing on stdout and
// nothing written.
func TestRecoverRefusals(t *testing.T) {
	env := []string{"KSB_MNEMONIC=" + recoverMnemonic}
	out := filepath.Join(t.TempDir(), "out")
	rpc := freeRPC(t)
	for _, c := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"missing --out", env, []string{"recover", "--rpc", rpc}, `required flag(s) "out" not set`},
		{"unreachable chain, no bootstrap", env, []string{"recover", "--out", out, "--rpc", rpc}, "chain RPC unreachable: " + rpc},
		// Issue 9 item 11: say how to recover without the chain.
		{"unreachable chain suggests --bootstrap", env, []string{"recover", "--out", out, "--rpc", rpc}, "--bootstrap /ip4/"},
		{"no chain, no bootstrap", env, []string{"recover", "--out", out, "--no-chain"}, "no chain RPC and no bootstrap peers"},
		{"bootstrap without peer ID", env, []string{"recover", "--out", out, "--no-chain", "--bootstrap", "/ip4/127.0.0.1/tcp/4001"}, "want a multiaddr ending in /p2p/<peer ID>"},
		{"no mnemonic", nil, []string{"recover", "--out", out, "--rpc", rpc}, "no mnemonic"},
		{"invalid mnemonic", []string{"KSB_MNEMONIC=abandon abandon"}, []string{"recover", "--out", out, "--rpc", rpc}, "invalid BIP39 mnemonic"},
		{"argument", env, []string{"recover", "--out", out, "surplus-argument"}, "unknown command"},
		// A BIP39 word is not echoed (issue 9 item 12).
		{"word argument", env, []string{"recover", "--out", out, "extra"}, "--mnemonic-file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runKSB(t, c.env, c.args...)
			if r.code != 1 || !strings.Contains(r.stderr, c.want) || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", r.code, r.stdout, r.stderr, c.want)
			}
			emptyDir(t, out)
		})
	}
}

// TestRecoverCLI runs `ksb recover` against an in-process chain and three
// holders: every share comes back byte for byte (exit 0, table); a second
// run refuses the existing files (exit 2, the vaults named, files
// untouched); --force --json replaces them; with the chain stopped,
// --bootstrap recovers over gossip.
func TestRecoverCLI(t *testing.T) {
	owner, err := identity.New(recoverMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	var shares [][]byte
	var vaults []string
	for _, get := range []func(int) ([]byte, error){fixtures.ECDSA, fixtures.EdDSA} {
		b, err := get(0)
		if err != nil {
			t.Fatal(err)
		}
		info, err := keyshare.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		shares, vaults = append(shares, b), append(vaults, info.VaultPubKey)
	}
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 3, Vaults: vaults})
	for i, b := range shares {
		net.Place(t, net.Commit(t, owner, recoverMnemonic, vaults[i], b))
	}
	file := mnemonicFile(t)
	out := filepath.Join(t.TempDir(), "restored")
	check := func() {
		t.Helper()
		for i, v := range vaults {
			got, err := os.ReadFile(filepath.Join(out, "localstate-"+v+".json"))
			if err != nil || !bytes.Equal(got, shares[i]) {
				t.Fatalf("vault %s: file differs from the share (%v)", v, err)
			}
		}
	}

	r := runKSB(t, nil, "recover", "--mnemonic-file", file, "--out", out, "--rpc", net.Chain.RPCURL())
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	check()
	if !strings.HasPrefix(r.stdout, "VAULT") || !strings.Contains(r.stdout, "recovered 2 of 2 vault(s) via chain") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	for i, v := range vaults {
		if !strings.Contains(r.stdout, v) || !strings.Contains(r.stdout, filepath.Join(out, "localstate-"+v+".json")) || !strings.Contains(r.stdout, " "+itoa(len(shares[i]))+" ") {
			t.Fatalf("summary lacks vault %s:\n%s", v, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "vault(s) committed by "+owner.Address("thor")) {
		t.Fatalf("no progress on stderr:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "hamster diagram") {
		t.Fatal("the mnemonic was printed")
	}

	// Again (issue 9 item 11): the files exist and are what was recovered:
	// say so, exit 0, touch nothing.
	before := map[string]os.FileInfo{}
	for _, v := range vaults {
		before[v], _ = os.Stat(filepath.Join(out, "localstate-"+v+".json"))
	}
	r = runKSB(t, nil, "recover", "--mnemonic-file", file, "--out", out, "--rpc", net.Chain.RPCURL())
	if r.code != 0 || !strings.Contains(r.stdout, "recovered 2 of 2 vault(s)") || !strings.Contains(r.stdout, "2 already present and identical") {
		t.Fatalf("second run: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 0 saying the files are already there", r.code, r.stdout, r.stderr)
	}
	for _, v := range vaults {
		if !hasLine(r.stdout, v, "already present, identical") || !hasLine(r.stderr, "vault "+v, "already present, identical") {
			t.Fatalf("second run does not say %s is already there:\nstdout:\n%s\nstderr:\n%s", v, r.stdout, r.stderr)
		}
		if fi, _ := os.Stat(filepath.Join(out, "localstate-"+v+".json")); !fi.ModTime().Equal(before[v].ModTime()) {
			t.Fatalf("second run rewrote the file of %s", v)
		}
	}
	check()
	// A file that differs is left alone and named: exit 2.
	changed := filepath.Join(out, "localstate-"+vaults[0]+".json")
	os.WriteFile(changed, []byte("an operator's edit\n"), 0o600)
	r = runKSB(t, nil, "recover", "--mnemonic-file", file, "--out", out, "--rpc", net.Chain.RPCURL())
	if r.code != 2 || !hasLine(r.stdout, vaults[0], "exists and differs") || !strings.Contains(r.stderr, "--force") || !hasLine(r.stdout, vaults[1], "already present, identical") {
		t.Fatalf("changed file: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(changed); string(b) != "an operator's edit\n" {
		t.Fatal("the changed file was overwritten without --force")
	}

	// --force --json.
	r = runKSB(t, nil, "recover", "--mnemonic-file", file, "--out", out, "--rpc", net.Chain.RPCURL(), "--force", "--json")
	if r.code != 0 {
		t.Fatalf("--force: exit %d\n%s", r.code, r.stderr)
	}
	var rep struct {
		Path    string `json:"path"`
		Owner   string `json:"owner"`
		Missing []string
		Vaults  []struct {
			Vault, Holder, File string
			Bytes               int
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if rep.Path != "chain" || rep.Owner != owner.Address("thor") || len(rep.Vaults) != 2 || len(rep.Missing) != 0 {
		t.Fatalf("JSON report %+v", rep)
	}
	for _, v := range rep.Vaults {
		if v.Holder == "" || v.File == "" || v.Bytes == 0 {
			t.Fatalf("JSON vault %+v", v)
		}
	}
	check()

	// Without the chain: gossip from one bootstrap peer.
	rpc := net.Chain.RPCURL()
	if err := net.Chain.Stop(); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(t.TempDir(), "over-gossip")
	r = runKSB(t, nil, "recover", "--mnemonic-file", file, "--out", out, "--rpc", rpc,
		"--bootstrap", net.Holders[0].Bootstrap()+","+net.Holders[1].Bootstrap(), "--gossip-quiet", "2s", "--json")
	if r.code != 0 {
		t.Fatalf("gossip: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	check()
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Path != "gossip" || len(rep.Vaults) != 2 {
		t.Fatalf("gossip report %+v, %v", rep, err)
	}
}

// hasLine reports whether a line of s starts with prefix and contains sub.
func hasLine(s, prefix, sub string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
