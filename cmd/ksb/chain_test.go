package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/fixtures"
	"github.com/ksb-project/ksb/internal/freeport"
	"github.com/ksb-project/ksb/p2p"
)

// freeBase finds a base port with n consecutive ports on 127.0.0.1 free
// for TCP and UDP (nodes listen on QUIC too), below the kernel's ephemeral
// range: `ksb testnet init` writes them into configs, and the processes
// bind them seconds later, so a port from that range (where every process
// takes its outbound connections' ports, and parallel test packages their
// port-0 listeners) was often taken by then ("address already in use").
func freeBase(t *testing.T, n int) int {
	t.Helper()
	base, err := freeport.Range(n, true)
	if err != nil {
		t.Fatal(err)
	}
	return base
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
	Height int64 `json:"height"`
	Vaults []struct {
		PubKey      string `json:"pubkey"`
		Threshold   int    `json:"threshold"`
		Replication int    `json:"replication"`
		Covered     int    `json:"covered"`
		Safe        bool   `json:"safe"`
		Members     []struct {
			Address string   `json:"address"`
			Holders []string `json:"holders"`
			Covered bool     `json:"covered"`
			Custody []struct {
				Holder string `json:"holder"`
				Status string `json:"status"`
			} `json:"custody"`
		} `json:"members"`
	} `json:"vaults"`
}

// TestFourValidatorTestnet is issue 10's process test: `ksb testnet init`
// with four validators and four nodes, each node dealt one share of a
// 4-member vault (threshold 3) and 10-block custody epochs; four `ksb chain
// start` and four `ksb node` processes (built with the ksb_testhooks tag,
// whose admin endpoint can make a holder lose a copy). With four nodes and
// r = 3 each share's copies are with the three other nodes, so a failed
// custody has no replacement and coverage shows what is lost. It checks:
// backup to full coverage with every custody proven; a node attesting a
// custody it is not assigned is refused (code 16) and state is unchanged; a
// node cannot sign a churn; a holder that deletes a copy while it runs
// (silently) turns that custody stale, then failed within 3 epochs, and its
// owner's member is no longer covered; a holder SIGKILLed and never
// restarted (with the validator it used: the other three go on) fails as a
// whole within 3 epochs, a proof built from another holder's copy for its
// open challenge is refused (code 15), coverage drops to the truth and the
// vault is no longer safe (`ksb coverage` exits 2); the killed validator,
// restarted, catches up and reports the same.
func TestFourValidatorTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four validator and four node processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	const nodes, vals, epoch = 4, 4, 10
	base := freeBase(t, 2*(nodes+vals))
	shares := t.TempDir()
	for i := range nodes {
		b, err := fixtures.ECDSA(i)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(shares, fmt.Sprintf("keygen_data_%d.json", i)), b, 0o600)
	}
	mustRun(t, "testnet", "init", "--dir", dir, "--nodes", fmt.Sprint(nodes), "--validators", fmt.Sprint(vals),
		"--base-port", fmt.Sprint(base), "--keyshares", shares, "--block-interval", "200ms", "--epoch-blocks", fmt.Sprint(epoch),
		// No restore drills here: a drill would find the copies this test
		// deletes before the challenges do (drills are tested in node/).
		"--drill-interval", "1000000000")
	node := func(j int) string { return filepath.Join(dir, fmt.Sprintf("node%d", j)) }
	var homes []testnetHome
	for j := range nodes {
		fastPolls(t, node(j))
		homes = append(homes, readHome(t, node(j)))
	}

	var vs []*validator
	for i := range vals {
		vs = append(vs, startValidator(t, filepath.Join(dir, fmt.Sprintf("chain%d", i)), fmt.Sprintf("http://127.0.0.1:%d", base+2*i+1)))
	}
	for _, v := range vs {
		v.waitHeight(ctx, 2)
	}
	hooks := ksbHooksBinary(t)
	var procs []*proc
	var addrs []string
	for j := range nodes {
		addrs = append(addrs, nodeAddress(t, node(j)))
		procs = append(procs, startProcBin(t, hooks, fmt.Sprintf("node%d", j), node(j)+".log", "node", "--home", node(j)))
		copyAssigned(t, dir, fmt.Sprintf("node%d", j))
	}
	rpc := vs[0].rpc
	cov := waitCoverage(t, ctx, rpc, 1, procs...)
	if len(cov.Vaults[0].Members) != 4 || cov.Vaults[0].Threshold != 3 {
		t.Fatalf("coverage %+v", cov.Vaults[0])
	}
	waitFor(t, ctx, "every custody proven", func() error {
		cov := coverageOf(t, rpc)
		for _, m := range cov.Vaults[0].Members {
			for _, c := range m.Custody {
				if c.Status != "fresh" {
					return fmt.Errorf("member %s: custody at %s is %s", m.Address, c.Holder, c.Status)
				}
			}
		}
		return nil
	})
	// Trust no RPC: the same coverage, proven against the validators'
	// signatures, from processes; lying proxies are refused.
	var rpcs []string
	for _, v := range vs {
		rpcs = append(rpcs, v.rpc)
	}
	checkVerifiedCoverage(t, ctx, filepath.Join(dir, "chain0", "config", "genesis.json"), rpcs)

	client, err := attest.NewClient(rpc)
	if err != nil {
		t.Fatal(err)
	}
	// custodyOf is the custody holder j keeps of owner i's share.
	custodyOf := func(owner, holder int) attest.Custody {
		t.Helper()
		cs, err := client.CommitmentsByOwner(ctx, addrs[owner])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			for _, cu := range c.Custodies {
				if c.Live && cu.Holder == addrs[holder] {
					return cu
				}
			}
		}
		t.Fatalf("node%d holds no copy of node%d's share", holder, owner)
		return attest.Custody{}
	}
	state := func(id attest.Custody) *attest.HeldCustody {
		t.Helper()
		hc, err := client.Custody(ctx, attest.CustodyID{Commitment: id.Commitment, Slot: id.Slot})
		if err != nil {
			t.Fatal(err)
		}
		return hc
	}

	// Refusals: a node attesting a custody the chain gave another, a node
	// signing a churn. Neither changes state.
	phantom := custodyOf(0, 1)
	before := mustRun(t, "chain", "query", "custodies", "--holder", addrs[1], "--json", "--rpc", rpc)
	covBefore := coverageOf(t, rpc)
	r := runKSB(t, nil, "chain", "tx", "attest", "--home", node(2), "--custody", fmt.Sprintf("%d/%d", phantom.Commitment, phantom.Slot))
	if r.code == 0 || !strings.Contains(r.stderr, "code 16") || r.stdout != "" {
		t.Fatalf("phantom attestation: exit %d stderr %q", r.code, r.stderr)
	}
	churn := filepath.Join(t.TempDir(), "churn.json")
	os.WriteFile(churn, []byte(`{"create_vaults":[{"pubkey":"thorpub1second","members":["`+addrs[2]+`","`+addrs[3]+`"],"threshold":1}]}`), 0o600)
	r = runKSB(t, nil, "chain", "tx", "churn", "--home", node(1), churn)
	if r.code == 0 || !strings.Contains(r.stderr, "not the authority") {
		t.Fatalf("churn by a node: exit %d stderr %q", r.code, r.stderr)
	}
	// Proofs and drills go on meanwhile (status, last proof): compare what
	// an attestation or a churn would change.
	if after := mustRun(t, "chain", "query", "custodies", "--holder", addrs[1], "--json", "--rpc", rpc); assignments(t, after) != assignments(t, before) {
		t.Fatalf("refused transactions changed state:\n%s\n%s", before, after)
	}
	if covAfter := coverageOf(t, rpc); fmt.Sprint(covAfter.Vaults[0].Members) != fmt.Sprint(covBefore.Vaults[0].Members) {
		t.Fatalf("refused transactions changed coverage:\n%+v\n%+v", covBefore.Vaults[0].Members, covAfter.Vaults[0].Members)
	}

	// node2 deletes its copy of node0's share while it runs, and keeps
	// quiet: stale at the next challenge, failed at the one after.
	lost := custodyOf(0, 2)
	dropped := height(t, ctx, rpc)
	debugDrop(t, homes[2].Admin, lost, true)
	sawStale := false
	waitFor(t, ctx, "the deleted copy's custody stale, then failed", func() error {
		hc := state(lost)
		sawStale = sawStale || hc.Status == "stale"
		if hc.Status != "failed" {
			return fmt.Errorf("custody %d/%d is %s", hc.Commitment, hc.Slot, hc.Status)
		}
		if hc.FailReason != "missed" || hc.FailedHeight-dropped > 3*epoch {
			t.Fatalf("custody failed at %d (%s), %d blocks after the deletion at %d; bound 3 epochs", hc.FailedHeight, hc.FailReason, hc.FailedHeight-dropped, dropped)
		}
		return nil
	})
	if !sawStale {
		t.Error("the custody was never seen stale before failed")
	}
	cov = coverageOf(t, rpc)
	if cov.Vaults[0].Covered != 3 || !cov.Vaults[0].Safe || memberOf(cov, addrs[0]).Covered {
		t.Fatalf("after node2's loss: %+v", cov.Vaults[0])
	}

	// node3 is SIGKILLed and never restarted; so is validator 3, the
	// chain node it used: the other three (3 of 4 voting power > 2/3) go
	// on.
	if err := procs[3].signal(syscall.SIGKILL); err == nil {
		t.Fatal("node3 exited cleanly on SIGKILL")
	}
	killed := height(t, ctx, rpc)
	vs[3].kill()
	// Its next challenge is answered with another holder's copy of the same
	// share (fetched as its owner can): refused.
	var ch attest.Challenge
	waitFor(t, ctx, "a challenge of the killed holder", func() error {
		chs, err := client.Challenges(ctx, addrs[3])
		if err != nil {
			return err
		}
		for _, c := range chs {
			if hc := state(attest.Custody{Commitment: c.Commitment, Slot: c.Slot}); hc.Owner == addrs[1] {
				ch = c
				return nil
			}
		}
		return errors.New("no open challenge of node1's share")
	})
	proveWithAnothersCopy(t, ctx, client, node(1), node(3), custodyOf(1, 2), homes[2].P2P[0]+"/p2p/"+peerID(t, node(2)), ch)

	waitFor(t, ctx, "the killed holder failed as a whole", func() error {
		ns, err := client.Nodes(ctx)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.Address == addrs[3] && n.FailedHeight != 0 {
				if n.FailedHeight-killed > 3*epoch {
					t.Fatalf("node3 failed at %d, %d blocks after it was killed at %d; bound 3 epochs", n.FailedHeight, n.FailedHeight-killed, killed)
				}
				return nil
			}
		}
		return errors.New("not failed yet")
	})
	// Coverage is the truth: node3 held a copy of each other share, node2's
	// copy of node0's is gone: only node3's own share has 3 holders.
	r = runKSB(t, nil, "coverage", "--json", "--rpc", rpc)
	if r.code != 2 || json.Unmarshal([]byte(r.stdout), &cov) != nil {
		t.Fatalf("ksb coverage: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	if cov.Vaults[0].Safe || cov.Vaults[0].Covered != 1 || !memberOf(cov, addrs[3]).Covered {
		t.Fatalf("coverage after node3 failed: %+v", cov.Vaults[0])
	}
	for _, j := range []int{0, 1, 2} {
		m := memberOf(cov, addrs[j])
		for _, c := range m.Custody {
			if c.Holder == addrs[3] && c.Status != "failed" {
				t.Fatalf("node%d's custody at the failed node3 is %s", j, c.Status)
			}
		}
	}

	// Restart validator 3: it catches up and serves the same coverage.
	target := height(t, ctx, rpc) + 1
	vs[3].start()
	vs[3].waitHeight(ctx, target)
	text := runKSB(t, nil, "coverage", "--rpc", vs[3].rpc)
	if text.code != 2 || !strings.Contains(text.stdout, "failed") || !strings.Contains(text.stderr, "not safe") {
		t.Fatalf("coverage from the restarted validator: exit %d\n%s\n%s", text.code, text.stdout, text.stderr)
	}
}

// fastPolls sets a node home's chain poll and batch intervals to 200 ms: the
// test's proof windows are 5 blocks of about 200 ms.
func fastPolls(t *testing.T, home string) {
	t.Helper()
	path := filepath.Join(home, config.FileName)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Chain.PollInterval = config.Duration{Duration: 200 * time.Millisecond}
	c.Chain.BatchInterval = config.Duration{Duration: 200 * time.Millisecond}
	if err := config.Write(path, c); err != nil {
		t.Fatal(err)
	}
}

func coverageOf(t *testing.T, rpc string) coverageJSON {
	t.Helper()
	var cov coverageJSON
	if err := json.Unmarshal([]byte(mustRun(t, "coverage", "--json", "--exit-zero", "--rpc", rpc)), &cov); err != nil {
		t.Fatal(err)
	}
	return cov
}

type memberJSON = struct {
	Address string   `json:"address"`
	Holders []string `json:"holders"`
	Covered bool     `json:"covered"`
	Custody []struct {
		Holder string `json:"holder"`
		Status string `json:"status"`
	} `json:"custody"`
}

func memberOf(cov coverageJSON, addr string) memberJSON {
	for _, m := range cov.Vaults[0].Members {
		if m.Address == addr {
			return m
		}
	}
	return memberJSON{}
}

// debugDrop makes the node of admin address admin delete its copy of
// custody c (ksb_testhooks builds only).
func debugDrop(t *testing.T, admin string, c attest.Custody, silent bool) {
	t.Helper()
	q := fmt.Sprintf("http://%s/debug/drop-copy?commitment=%d&slot=%d", admin, c.Commitment, c.Slot)
	if silent {
		q += "&silent=1"
	}
	resp, err := http.Post(q, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s: %s", q, resp.Status)
	}
}

// proveWithAnothersCopy answers challenge ch of the holder of home holder
// with a proof built from the copy another holder keeps of the same share
// (its custody other, fetched from it at addr as the owner of home owner
// can), once under that copy's index and once passed off as the challenged
// custody's: the chain refuses both with code 15.
func proveWithAnothersCopy(t *testing.T, ctx context.Context, client *attest.Client, owner, holder string, other attest.Custody, addr string, ch attest.Challenge) {
	t.Helper()
	ownerID, holderID := identityOf(t, owner), identityOf(t, holder)
	h, err := p2p.NewHost(p2p.HostConfig{Identity: ownerID})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	info, err := peer.AddrInfoFromString(addr)
	if err != nil {
		t.Fatal(err)
	}
	h.Peerstore().AddAddrs(info.ID, info.Addrs, time.Minute)
	got, err := p2p.Fetch(ctx, h, info.ID, "", other.Commitment)
	if err != nil || len(got) != 1 || got[0].Custody.Slot != other.Slot {
		t.Fatalf("the owner fetching %s's copy: %d copies, %v", other.Holder, len(got), err)
	}
	f := got[0]
	theirs, err := custody.ProveHeld(f.Blob, f.CopyIndex, f.Copies, f.CommitPath, ch.Segment)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := client.Custody(ctx, attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot})
	if err != nil {
		t.Fatal(err)
	}
	claimed := theirs
	claimed.CopyIndex = int(hc.CopyIndex)
	id := attest.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}
	// Both at once (the proof window is 5 blocks): each is refused whole,
	// so neither closes the challenge for the other.
	s := attest.NewSender(client, holderID)
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 2)
	for name, p := range map[string]custody.Proof{"another holder's copy": theirs, "another holder's copy under the challenged index": claimed} {
		go func() {
			_, err := s.Prove(ctx, ch.Epoch, attest.NewSegmentProof(id, p))
			results <- result{name, err}
		}()
	}
	for range 2 {
		r := <-results
		var te *attest.TxError
		if !errors.As(r.err, &te) || te.Code != attest.CodeBadProof {
			t.Fatalf("%s: %v, want code %d", r.name, r.err, attest.CodeBadProof)
		}
	}
}

func identityOf(t *testing.T, home string) *identity.Identity {
	t.Helper()
	m, err := identity.Read(identity.Source{File: filepath.Join(home, "mnemonic")})
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return id
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
		"start without home":    {[]string{"chain", "start", "--home", t.TempDir()}, "not a validator home"},
		"query unknown":         {[]string{"chain", "query", "blocks", "--rpc", dead}, "unknown query"},
		"vault on nodes":        {[]string{"chain", "query", "nodes", "--vault", "v", "--rpc", dead}, "--vault"},
		"commitments needs one": {[]string{"chain", "query", "commitments", "--rpc", dead}, "--owner"},
		"holder on nodes":       {[]string{"chain", "query", "nodes", "--holder", "h", "--rpc", dead}, "--holder"},
		"bad custody":           {[]string{"chain", "query", "custody", "--custody", "12", "--rpc", dead}, "COMMITMENT/SLOT"},
		"bad rpc":               {[]string{"coverage", "--rpc", "nope"}, "want http://"},
		"unreachable":           {[]string{"coverage", "--rpc", dead}, "connection refused"},
		"bad custody id":        {[]string{"chain", "tx", "attest", "--home", t.TempDir(), "--custody", "x/1"}, "COMMITMENT/SLOT"},
		"slot over 255":         {[]string{"chain", "tx", "release", "--home", t.TempDir(), "--custody", "3/256"}, "COMMITMENT/SLOT"},
		"churn file missing":    {[]string{"chain", "tx", "churn", "--home", t.TempDir(), filepath.Join(t.TempDir(), "none.json")}, "no such file"},
		"attest without rpc":    {[]string{"chain", "tx", "attest", "--home", t.TempDir(), "--custody", "3/1"}, "--rpc"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runKSB(t, nil, tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr %q, want an error about %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
}

// waitFor polls cond every 200 ms until it returns nil, or fails the test
// when ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestTestnetInitWarnsPortsInUse: init names the ports of the layout that
// another process holds (issue 9, item 3). Seen failing before the warning
// existed (no "in use" on stderr).
func TestTestnetInitWarnsPortsInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	// With one validator, node0's libp2p port is base+2.
	base := port - 2
	if base < 1024 {
		t.Skipf("port %d too low for a base port", port)
	}
	dir := filepath.Join(t.TempDir(), "net")
	r := runKSB(t, nil, "testnet", "init", "--dir", dir, "--nodes", "1", "--base-port", fmt.Sprint(base))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := fmt.Sprintf("127.0.0.1:%d (node0 libp2p, TCP) is in use", port)
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q, want a warning %q", r.stderr, want)
	}
}

// assignments projects a `chain query custodies --json` answer on what an
// attestation or a churn changes: each custody's id, commitment, slot, copy,
// holder and attestation, not its proof status.
func assignments(t *testing.T, js string) string {
	t.Helper()
	var v struct {
		Custodies []map[string]any `json:"custodies"`
	}
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatalf("custodies JSON: %v\n%s", err, js)
	}
	var out []string
	for _, c := range v.Custodies {
		out = append(out, fmt.Sprint(c["id"], c["commitment"], c["slot"], c["copy"], c["holder"], c["attested"], c["attest_height"], c["assigned_height"]))
	}
	return strings.Join(out, "\n")
}
