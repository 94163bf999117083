package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
)

// freeBase finds a base port with n consecutive free TCP ports on 127.0.0.1.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(40000)
		ok := true
		var ls []net.Listener
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// validator is one `ksb chain start` process.
type validator struct {
	t    *testing.T
	home string
	log  string
	rpc  string
	cmd  *exec.Cmd
	done chan error
}

func startValidator(t *testing.T, home, rpc string) *validator {
	t.Helper()
	v := &validator{t: t, home: home, rpc: rpc, log: home + ".log"}
	v.start()
	t.Cleanup(v.stop)
	return v
}

func (v *validator) start() {
	v.t.Helper()
	logf, err := os.OpenFile(v.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		v.t.Fatal(err)
	}
	v.cmd = exec.Command(ksbBinary(v.t), "chain", "start", "--home", v.home, "--log-level", "warn")
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	if err := v.cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	logf.Close()
	v.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(v.cmd, v.done)
}

// kill sends SIGKILL and waits for the process to be gone.
func (v *validator) kill() {
	v.cmd.Process.Signal(syscall.SIGKILL)
	<-v.done
	v.cmd = nil
}

// stop sends SIGTERM, then SIGKILL if the process has not exited in time.
func (v *validator) stop() {
	if v.cmd == nil {
		return
	}
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
	case <-time.After(20 * time.Second):
		v.cmd.Process.Signal(syscall.SIGKILL)
		<-v.done
	}
	v.cmd = nil
}

// waitHeight polls the validator's RPC until it reports height h.
func (v *validator) waitHeight(ctx context.Context, h int64) {
	v.t.Helper()
	c, err := attest.NewClient(v.rpc)
	if err != nil {
		v.t.Fatal(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := c.Height(ctx)
		if err == nil && got >= h {
			return
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(v.log)
			v.t.Fatalf("%s: height %d not reached (last %d, %v); log:\n%s", v.home, h, got, err, tail(string(log), 3000))
		case <-tick.C:
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func height(t *testing.T, ctx context.Context, rpc string) int64 {
	t.Helper()
	c, _ := attest.NewClient(rpc)
	h, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := runKSB(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("ksb %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func nodeAddress(t *testing.T, home string) string {
	t.Helper()
	var k struct{ Address string }
	if err := json.Unmarshal([]byte(mustRun(t, "keys", "show", "--json", "--mnemonic-file", filepath.Join(home, "mnemonic"))), &k); err != nil {
		t.Fatal(err)
	}
	return k.Address
}

type coverageJSON struct {
	Vaults []struct {
		PubKey      string `json:"pubkey"`
		Threshold   int    `json:"threshold"`
		Replication int    `json:"replication"`
		Safe        bool   `json:"safe"`
		Members     []struct {
			Address string   `json:"address"`
			Holders []string `json:"holders"`
		} `json:"members"`
	} `json:"vaults"`
}

// TestFourValidatorTestnet runs `ksb testnet init` and four `ksb chain start`
// processes; one is killed with SIGKILL, attestations still commit, and it
// catches up after a restart.
func TestFourValidatorTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four validator processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	const nodes, vals = 4, 4
	base := freeBase(t, 2*(nodes+vals))
	mustRun(t, "testnet", "init", "--dir", dir, "--nodes", fmt.Sprint(nodes), "--validators", fmt.Sprint(vals),
		"--base-port", fmt.Sprint(base), "--keyshares", "testdata/testnet-keyshares", "--block-interval", "200ms", "--replication", "1")

	var vs []*validator
	for i := range vals {
		vs = append(vs, startValidator(t, filepath.Join(dir, fmt.Sprintf("chain%d", i)), fmt.Sprintf("http://127.0.0.1:%d", base+2*i+1)))
	}
	for _, v := range vs {
		v.waitHeight(ctx, 2)
	}

	var addrs []string
	for j := range nodes {
		addrs = append(addrs, nodeAddress(t, filepath.Join(dir, fmt.Sprintf("node%d", j))))
	}
	var cov coverageJSON
	if err := json.Unmarshal([]byte(mustRun(t, "coverage", "--json", "--exit-zero", "--rpc", vs[0].rpc)), &cov); err != nil {
		t.Fatal(err)
	}
	// The two EdDSA files went to node0 and node1: one vault, 2 members,
	// threshold ⌈4/3⌉ = 2.
	if len(cov.Vaults) != 1 || len(cov.Vaults[0].Members) != 2 || cov.Vaults[0].Threshold != 2 || cov.Vaults[0].Safe {
		t.Fatalf("genesis coverage = %+v", cov)
	}
	vault := cov.Vaults[0].PubKey
	if cov.Vaults[0].Members[0].Address != addrs[0] || cov.Vaults[0].Members[1].Address != addrs[1] {
		t.Fatalf("vault members %+v, want node0 and node1", cov.Vaults[0].Members)
	}

	digest := strings.Repeat("ab", 32)
	node := func(j int) string { return filepath.Join(dir, fmt.Sprintf("node%d", j)) }
	// node2 (chain RPC of validator 2) holds node0's share.
	mustRun(t, "chain", "tx", "attest", "--home", node(2), "--owner", addrs[0], "--vault", vault, "--digest", digest, "--size", "2465")

	// The authority creates a second vault of node2 and node3.
	churn := filepath.Join(t.TempDir(), "churn.json")
	os.WriteFile(churn, []byte(`{"create_vaults":[{"pubkey":"thorpub1second","members":["`+addrs[2]+`","`+addrs[3]+`"],"threshold":1}]}`), 0o600)
	mustRun(t, "chain", "tx", "churn", "--home", filepath.Join(dir, "authority"), "--rpc", vs[0].rpc, churn)

	// Refusals: a node attesting its own blob, a node signing a churn.
	before := mustRun(t, "chain", "query", "attestations", "--holder", addrs[2], "--json", "--rpc", vs[0].rpc)
	r := runKSB(t, nil, "chain", "tx", "attest", "--home", node(0), "--owner", addrs[0], "--vault", vault, "--digest", digest, "--size", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "attests its own blob") || r.stdout != "" {
		t.Fatalf("self-attest: exit %d stderr %q", r.code, r.stderr)
	}
	r = runKSB(t, nil, "chain", "tx", "churn", "--home", node(1), churn)
	if r.code == 0 || !strings.Contains(r.stderr, "not the authority") {
		t.Fatalf("churn by a node: exit %d stderr %q", r.code, r.stderr)
	}
	if after := mustRun(t, "chain", "query", "attestations", "--holder", addrs[2], "--json", "--rpc", vs[0].rpc); after != before {
		t.Fatalf("refused transactions changed state:\n%s\n%s", before, after)
	}

	// Kill validator 3: the other three (3 of 4 voting power > 2/3) go on.
	vs[3].kill()
	mustRun(t, "chain", "tx", "attest", "--home", node(1), "--owner", addrs[0], "--vault", vault, "--digest", digest, "--size", "2465")
	mustRun(t, "chain", "tx", "attest", "--home", node(3), "--owner", addrs[1], "--vault", vault, "--digest", strings.Repeat("cd", 32), "--size", "2465",
		"--rpc", vs[0].rpc) // node3's own RPC is the dead validator
	if err := json.Unmarshal([]byte(mustRun(t, "chain", "query", "coverage", "--vault", vault, "--json", "--rpc", vs[1].rpc)), &cov); err != nil {
		t.Fatal(err)
	}
	if !cov.Vaults[0].Safe || len(cov.Vaults[0].Members[0].Holders) != 2 || len(cov.Vaults[0].Members[1].Holders) != 1 {
		t.Fatalf("coverage with a validator down = %+v", cov)
	}

	// Restart it: it catches up and serves the attestations made while down.
	target := height(t, ctx, vs[0].rpc) + 1
	vs[3].start()
	vs[3].waitHeight(ctx, target)
	var atts struct{ Attestations []attest.Attestation }
	if err := json.Unmarshal([]byte(mustRun(t, "chain", "query", "attestations", "--owner", addrs[0], "--json", "--rpc", vs[3].rpc)), &atts); err != nil {
		t.Fatal(err)
	}
	if len(atts.Attestations) != 2 {
		t.Fatalf("restarted validator serves %+v, want node1's and node2's attestations", atts.Attestations)
	}
	text := mustRun(t, "coverage", "--exit-zero", "--rpc", vs[3].rpc) // thorpub1second has no holders: not safe
	if !strings.Contains(text, vault) || !strings.Contains(text, "yes") {
		t.Fatalf("coverage table:\n%s", text)
	}
}

func TestTestnetInitRefuses(t *testing.T) {
	notShares := t.TempDir()
	os.WriteFile(filepath.Join(notShares, "x.json"), []byte(`{}`), 0o600)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no nodes":       {[]string{"--nodes", "0"}, "0 nodes"},
		"bad base port":  {[]string{"--base-port", "70000"}, "base port"},
		"not a keyshare": {[]string{"--keyshares", notShares}, "x.json"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "net")
			r := runKSB(t, nil, append([]string{"testnet", "init", "--dir", dir}, tc.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d stderr %q, want an error about %q", r.code, r.stderr, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused init created %s", dir)
			}
		})
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "keep"), []byte("x"), 0o600)
	if r := runKSB(t, nil, "testnet", "init", "--dir", full); r.code == 0 || !strings.Contains(r.stderr, "not empty") {
		t.Fatalf("init into a non-empty dir: exit %d %q", r.code, r.stderr)
	}
}

func TestChainCommandsRefuse(t *testing.T) {
	dead := "http://127.0.0.1:1"
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"start without home":     {[]string{"chain", "start", "--home", t.TempDir()}, "not a validator home"},
		"query unknown":          {[]string{"chain", "query", "blocks", "--rpc", dead}, "unknown query"},
		"vault on nodes":         {[]string{"chain", "query", "nodes", "--vault", "v", "--rpc", dead}, "--vault"},
		"attestations needs one": {[]string{"chain", "query", "attestations", "--rpc", dead}, "exactly one"},
		"bad rpc":                {[]string{"coverage", "--rpc", "nope"}, "want http://"},
		"unreachable":            {[]string{"coverage", "--rpc", dead}, "connection refused"},
		"bad digest":             {[]string{"chain", "tx", "attest", "--home", t.TempDir(), "--owner", "a", "--vault", "v", "--digest", "zz", "--size", "1"}, "--digest"},
		"churn file missing":     {[]string{"chain", "tx", "churn", "--home", t.TempDir(), filepath.Join(t.TempDir(), "none.json")}, "no such file"},
		"attest without rpc":     {[]string{"chain", "tx", "attest", "--home", t.TempDir(), "--owner", "a", "--vault", "v", "--digest", strings.Repeat("00", 32), "--size", "1"}, "--rpc"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runKSB(t, nil, tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr %q, want an error about %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
}
