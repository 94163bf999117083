package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one long-running ksb process (a node or a validator) whose output
// goes to a log file.
type proc struct {
	t    *testing.T
	name string
	log  string
	cmd  *exec.Cmd
	done chan error
}

func startProc(t *testing.T, name, log string, args ...string) *proc {
	t.Helper()
	return startProcBin(t, ksbBinary(t), name, log, args...)
}

// startProcBin is startProc with the binary bin.
func startProcBin(t *testing.T, bin, name, log string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, log: log}
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = envWithout("KSB_MNEMONIC")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(p.cmd, p.done)
	t.Cleanup(func() { p.signal(syscall.SIGTERM) })
	return p
}

func envWithout(key string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, key+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// signal sends sig and waits for the process to exit (SIGKILL after 20 s),
// returning its exit error.
func (p *proc) signal(sig syscall.Signal) error {
	if p.cmd == nil {
		return nil
	}
	p.cmd.Process.Signal(sig)
	var err error
	select {
	case err = <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Signal(syscall.SIGKILL)
		err = <-p.done
	}
	p.cmd = nil
	return err
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.log)
	return tail(string(b), 4000)
}

// testnetHome is what the tests read of a node home's config.toml.
type testnetHome struct {
	Dir   string
	RPC   string
	Admin string
	P2P   []string
}

func readHome(t *testing.T, dir string) testnetHome {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	h := testnetHome{Dir: dir}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case section == "chain" && k == "rpc":
			h.RPC, _ = strconv.Unquote(v)
		case section == "admin" && k == "listen":
			h.Admin, _ = strconv.Unquote(v)
		case section == "p2p" && k == "listen":
			json.Unmarshal([]byte(v), &h.P2P)
		}
	}
	if h.RPC == "" || h.Admin == "" || len(h.P2P) == 0 {
		t.Fatalf("%s/config.toml: rpc %q admin %q p2p %v", dir, h.RPC, h.Admin, h.P2P)
	}
	return h
}

// copyAssigned copies the files assignments.json deals to node into its
// keyshares/ directory, as keygen would write them.
func copyAssigned(t *testing.T, dir, node string) []string {
	t.Helper()
	var assign map[string][]string
	b, err := os.ReadFile(filepath.Join(dir, "assignments.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &assign); err != nil {
		t.Fatal(err)
	}
	ks := filepath.Join(dir, node, "keyshares")
	os.MkdirAll(ks, 0o700)
	var out []string
	for _, src := range assign[node] {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(ks, filepath.Base(src))
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, dst)
	}
	return out
}

// waitCoverage runs `ksb coverage --json` until every vault is safe with
// every member at ≥ r holders.
func waitCoverage(t *testing.T, ctx context.Context, rpc string, vaults int, procs ...*proc) coverageJSON {
	t.Helper()
	var last string
	for {
		r := runKSB(t, nil, "coverage", "--rpc", rpc, "--json")
		var cov coverageJSON
		// Exit 2 is coverage read and not safe yet.
		if (r.code == 0 || r.code == 2) && json.Unmarshal([]byte(r.stdout), &cov) == nil {
			if err := fullCoverage(cov, vaults); err == nil {
				return cov
			} else {
				last = err.Error()
			}
		} else {
			last = r.stderr
		}
		select {
		case <-ctx.Done():
			var logs string
			for _, p := range procs {
				logs += "\n== " + p.name + "\n" + p.logTail()
			}
			t.Fatalf("coverage not reached: %s%s", last, logs)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func fullCoverage(cov coverageJSON, vaults int) error {
	if len(cov.Vaults) != vaults {
		return fmt.Errorf("%d vaults, want %d", len(cov.Vaults), vaults)
	}
	for _, v := range cov.Vaults {
		if !v.Safe {
			return fmt.Errorf("vault %s not safe", v.PubKey)
		}
		for _, m := range v.Members {
			if len(m.Holders) < v.Replication {
				return fmt.Errorf("vault %s member %s: %d holders", v.PubKey, m.Address, len(m.Holders))
			}
		}
	}
	return nil
}

// startTestnetWith runs `ksb testnet init` for nodes nodes and one
// validator with the keyshares in shares, then `ksb chain start` and one
// `ksb node` per node, with prep (if not nil) run on each node home before
// its node starts (to change its config.toml). procs[0] is the chain,
// procs[i+1] node i. startProcessNet deals the shares too.
func startTestnetWith(t *testing.T, dir string, nodes int, shares string, prep func(home string)) (homes []testnetHome, procs []*proc) {
	t.Helper()
	base := freeBase(t, 2+nodes*2)
	mustRun(t, "testnet", "init", "--dir", dir, "--nodes", strconv.Itoa(nodes), "--validators", "1",
		"--base-port", strconv.Itoa(base), "--keyshares", shares, "--block-interval", "200ms")
	procs = append(procs, startProc(t, "chain0", filepath.Join(dir, "chain0.log"), "chain", "start", "--home", filepath.Join(dir, "chain0")))
	for i := 0; i < nodes; i++ {
		if prep != nil {
			prep(filepath.Join(dir, fmt.Sprintf("node%d", i)))
		}
		h := readHome(t, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		homes = append(homes, h)
		procs = append(procs, startProc(t, "node"+strconv.Itoa(i), h.Dir+".log", "node", "--home", h.Dir))
	}
	return homes, procs
}

// TestBackupAsProcesses is issue 4's process test: `ksb testnet init` with
// four tss-lib shares of one keygen, `ksb chain start`, four `ksb node`
// processes, each node's files copied into its keyshares/ per
// assignments.json, and `ksb coverage --json` reaches safe with every member
// at ≥ 3 holders. `ksb status` then shows each owner's holders.
func TestBackupAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pn := startProcessNet(t, filepath.Join(t.TempDir(), "net"), 4, false, nil)
	homes, procs := pn.homes, pn.procs
	cov := waitCoverage(t, ctx, homes[0].RPC, 1, procs...)
	if len(cov.Vaults[0].Members) != 4 || cov.Vaults[0].Threshold != 3 {
		t.Errorf("coverage %+v", cov.Vaults[0])
	}

	// ksb status shows the owner's share with three counted custodies.
	var st struct {
		Shares []struct {
			Custodies []struct{ Attested bool } `json:"custodies"`
			Counted   int                       `json:"counted"`
		} `json:"shares"`
		Held []struct{ Owner string } `json:"held"`
	}
	for {
		r := runKSB(t, nil, "status", "--home", homes[0].Dir, "--json")
		if r.code != 0 {
			t.Fatalf("ksb status: %d %s", r.code, r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Shares) == 1 && st.Shares[0].Counted == 3 && len(st.Held) == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("status never complete: %s", r.stdout)
		case <-time.After(300 * time.Millisecond):
		}
	}
	text := mustRun(t, "status", "--home", homes[0].Dir)
	if !strings.Contains(text, "3/3") {
		t.Errorf("status table:\n%s", text)
	}
	// It shows the last restore drill (none within the default interval).
	if !strings.Contains(text, "LAST DRILL") || !strings.Contains(text, "none yet") {
		t.Errorf("status table does not show the last drill:\n%s", text)
	}
	// It names the keyshare directory (issue 9 item 2).
	if ks, _ := filepath.Abs(filepath.Join(homes[0].Dir, "keyshares")); !strings.Contains(text, "keyshares "+ks+" (1 *.json file(s))") {
		t.Errorf("status does not name the keyshare directory %s:\n%s", ks, text)
	}

	// SIGTERM stops every node cleanly, with exit status 0.
	for _, p := range procs[1:] {
		if err := p.signal(syscall.SIGTERM); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.logTail())
		}
	}
	// status of a stopped node is a clear error.
	r := runKSB(t, nil, "status", "--home", homes[0].Dir)
	if r.code == 0 || !strings.Contains(r.stderr, "not reachable") {
		t.Errorf("status of a stopped node: exit %d, %q", r.code, r.stderr)
	}
}
