package main_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/internal/fixtures"
)

// TestNodeNotOnChain is issue 9, item 1, as processes: a node started with
// a valid mnemonic the chain does not list logs an error naming its
// address, /healthz answers 503 with the reason, `ksb status` says it is not
// an active node and why its share is not backed up, and
// ksb_owner_under_replicated_shares counts the share. (Seen failing on the
// old code: /healthz answered 200 and nothing said why the share stayed
// at 0/3.)
func TestNodeNotOnChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	other := filepath.Join(t.TempDir(), "other")
	base := freeBase(t, 4)
	mustRun(t, "testnet", "init", "--dir", dir, "--nodes", "1", "--validators", "1",
		"--base-port", strconv.Itoa(base), "--block-interval", "200ms")
	// A mnemonic of another network: valid, not on this chain.
	mustRun(t, "testnet", "init", "--dir", other, "--nodes", "1", "--validators", "1", "--base-port", strconv.Itoa(base))
	stranger, err := os.ReadFile(filepath.Join(other, "node0", "mnemonic"))
	if err != nil {
		t.Fatal(err)
	}
	h := readHome(t, filepath.Join(dir, "node0"))
	if err := os.WriteFile(filepath.Join(h.Dir, "mnemonic"), stranger, 0o600); err != nil {
		t.Fatal(err)
	}
	share, err := fixtures.ECDSA(0)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(h.Dir, "keyshares"), 0o700)
	if err := os.WriteFile(filepath.Join(h.Dir, "keyshares", "keygen_data_0.json"), share, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := keysShow(t, []string{"KSB_MNEMONIC=" + strings.TrimSpace(string(stranger))})["address"]

	chain := startProc(t, "chain0", filepath.Join(dir, "chain0.log"), "chain", "start", "--home", filepath.Join(dir, "chain0"))
	node := startProc(t, "node0", h.Dir+".log", "node", "--home", h.Dir)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n== chain0\n%s\n== node0\n%s", append(args, chain.logTail(), node.logTail())...)
	}

	// /healthz: not ready, with the reason.
	var body string
	for {
		resp, err := http.Get("http://" + h.Admin + "/healthz")
		if err == nil {
			b := make([]byte, 4096)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			body = string(b[:n])
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "not an active node") {
				break
			}
			if resp.StatusCode == http.StatusOK {
				fail("/healthz of a node not on chain answered 200 %q", body)
			}
		}
		select {
		case <-ctx.Done():
			fail("/healthz never said not active: last %q %v", body, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !strings.Contains(body, addr) {
		t.Errorf("/healthz %q does not name the address %s", body, addr)
	}

	// The log names the address at error level.
	if l := node.logTail(); !strings.Contains(l, "not an active node") || !strings.Contains(l, addr) {
		t.Errorf("no error naming %s in the log:\n%s", addr, l)
	}

	// ksb status, once the share is sealed: the role and the share's
	// problem; the metric counts the share.
	var text string
	for {
		r := runKSB(t, nil, "status", "--home", h.Dir)
		text = r.stdout
		if r.code == 0 && strings.Contains(text, "not backed up: this node") && underReplicated(h.Admin, "not_active") == 1 {
			break
		}
		select {
		case <-ctx.Done():
			fail("status never explained the share (metric %v):\n%s%s", underReplicated(h.Admin, "not_active"), text, r.stderr)
		case <-time.After(300 * time.Millisecond):
		}
	}
	if !strings.Contains(text, "NOT AN ACTIVE NODE") || !strings.Contains(text, addr) {
		t.Errorf("status does not say the node is not active:\n%s", text)
	}
	t.Logf("ksb status:\n%s", text)
}

// underReplicated reads ksb_owner_under_replicated_shares{reason} from the
// admin endpoint; -1 when absent or unreadable.
func underReplicated(admin, reason string) float64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sample := fmt.Sprintf(`ksb_owner_under_replicated_shares{reason=%q} `, reason)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}
