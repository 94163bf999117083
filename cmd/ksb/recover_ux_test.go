package main_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/fixtures"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/recovery/recoverytest"
)

// TestRecoverInterrupted is issue 9 item 11: a recovery interrupted with
// Ctrl-C (here while the chain RPC has accepted the connection and not
// answered) says "interrupted", not "context canceled", exits 130 as shells
// expect of SIGINT, and leaves no empty output directory behind.
func TestRecoverInterrupted(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	out := filepath.Join(t.TempDir(), "keyshares")
	cmd := exec.Command(ksbBinary(t), "recover", "--mnemonic-file", mnemonicFile(t), "--out", out, "--rpc", "http://"+l.Addr().String())
	cmd.Env = envWithout("KSB_MNEMONIC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("ksb recover never asked the chain")
	}
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code != 130 || !strings.Contains(stderr.String(), "interrupted") || strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("exit %d (%v), stderr %q; want 130 and \"interrupted\"", code, err, stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("the interrupted recovery left %s behind (%v)", out, err)
	}
}

// TestRecoverWrongMnemonicGossip is issue 9 item 11: with a valid mnemonic
// that holders know nothing of, recovery over gossip prints progress while
// it waits and stops after the documented first wait (--gossip-first-wait,
// here 12 s), not the two-minute timeout, with the reason.
func TestRecoverWrongMnemonicGossip(t *testing.T) {
	owner, err := identity.New(recoverMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fixtures.EdDSA(0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := keyshare.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 2, Vaults: []string{info.VaultPubKey}})
	blob := recoverytest.Seal(t, b, recoverMnemonic)
	for _, hd := range net.Holders {
		hd.Put(t, owner, info.VaultPubKey, blob, time.Time{})
	}
	out := filepath.Join(t.TempDir(), "keyshares")
	start := time.Now()
	r := runKSB(t, []string{"KSB_MNEMONIC=" + otherSealMnemonic}, "recover", "--out", out, "--no-chain",
		"--bootstrap", net.Holders[0].Bootstrap()+","+net.Holders[1].Bootstrap(), "--gossip-first-wait", "12s")
	took := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stderr, "no backups found") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if took > 60*time.Second {
		t.Errorf("took %v: it waited for the timeout, not the 12 s first wait", took)
	}
	if !strings.Contains(r.stderr, "waiting for holders: no blob yet") || !strings.Contains(r.stderr, "no blob in 12s; stopping") {
		t.Errorf("no progress while waiting, or no reason for stopping:\n%s", r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("left %s behind", out)
	}
}
