package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
)

// TestRepairAsProcesses is issue 11's process test: `ksb testnet init
// --nodes 5`, the chain and five `ksb node` processes, each dealt one share
// of a 5-member vault (r = 3, so every share has one replacement candidate).
// node0 (the owner) is stopped; one holder of its share is SIGKILLed and
// never restarted, and the authority churns it out (`ksb chain tx churn`).
// Without node0, the chain's source sends its copy to the replacement,
// which attests: node0's share is back to 3 counted holders within a few
// blocks. The two original holders still alive are then stopped, node0's
// home wiped but for its mnemonic, and `ksb recover` brings its share back
// byte for byte from the repaired copy, the only one left running.
func TestRepairAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "net")
	// Polls of 200 ms (the repairer then looks every 50 ms) and a low
	// work factor: this test is about repair, not sealing.
	pn := startProcessNet(t, dir, 5, false, func(home string) {
		fastPolls(t, home)
		path := filepath.Join(home, config.FileName)
		c, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		c.Backup.WorkFactor, c.Backup.AllowLowWorkFactor = 10, true
		if err := config.Write(path, c); err != nil {
			t.Fatal(err)
		}
	})
	homes, procs, addrs, index := pn.homes, pn.procs, pn.addrs, pn.index
	original, err := os.ReadFile(pn.dealt[0][0])
	if err != nil {
		t.Fatal(err)
	}
	rpc := homes[0].RPC
	waitCoverage(t, ctx, rpc, 1, procs...)
	client, err := attest.NewClient(rpc)
	if err != nil {
		t.Fatal(err)
	}
	share := func() attest.Commitment {
		t.Helper()
		cs, err := client.CommitmentsByOwner(ctx, addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Live {
				return c
			}
		}
		t.Fatal("node0 has no live commitment")
		return attest.Commitment{}
	}
	var holders []int
	for _, cu := range share().Custodies {
		holders = append(holders, index[cu.Holder])
	}
	if len(holders) != 3 {
		t.Fatalf("node0's share has holders %v", holders)
	}

	// node0 stops; its first holder dies for good and is churned out.
	if err := procs[1].signal(syscall.SIGTERM); err != nil {
		t.Fatalf("node0 on SIGTERM: %v", err)
	}
	victim := holders[0]
	procs[1+victim].signal(syscall.SIGKILL)
	churn := filepath.Join(t.TempDir(), "churn.json")
	os.WriteFile(churn, []byte(`{"remove_nodes":["`+addrs[victim]+`"]}`), 0o600)
	mustRun(t, "chain", "tx", "churn", "--home", filepath.Join(dir, "authority"), "--rpc", rpc, churn)

	var repaired attest.Custody
	waitFor(t, ctx, "node0's share back to 3 counted holders", func() error {
		c := share()
		n := 0
		for _, cu := range c.Custodies {
			if cu.Attested && cu.Status != "failed" {
				n++
			}
			if cu.Slot >= 3 && cu.Attested {
				repaired = cu
			}
		}
		if n < 3 || repaired.Holder == "" {
			return fmt.Errorf("%d counted holders, repaired %+v", n, repaired)
		}
		return nil
	})
	lost, err := client.Custody(ctx, attest.CustodyID{Commitment: share().ID, Slot: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node%d's custody failed at block %d (%s); node%d attested the repaired copy (from %s) at block %d: %d blocks",
		victim, lost.FailedHeight, lost.FailReason, index[repaired.Holder], repaired.Source, repaired.AttestHeight,
		repaired.AttestHeight-lost.FailedHeight)
	if repaired.Source == addrs[0] || repaired.Source == addrs[victim] || lost.FailReason != "left" {
		t.Fatalf("repair %+v of the custody lost as %+v", repaired, lost)
	}

	// Only the repaired copy is left running; node0 has only its mnemonic.
	for _, h := range holders[1:] {
		procs[1+h].signal(syscall.SIGTERM)
	}
	mnemonic := wipeButMnemonic(t, homes[0].Dir)
	out := filepath.Join(t.TempDir(), "keyshares")
	r := runKSB(t, nil, "recover", "--mnemonic-file", mnemonic, "--out", out, "--rpc", rpc)
	if r.code != 0 {
		t.Fatalf("ksb recover: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Fatalf("recovered %d files", len(entries))
	}
	got, _ := os.ReadFile(filepath.Join(out, entries[0].Name()))
	if !bytes.Equal(got, original) {
		t.Fatal("the share recovered from the repaired copy differs from the original")
	}
	t.Logf("ksb recover:\n%s", r.stdout)
}
