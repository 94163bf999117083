package sim_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/sim"
)

// TestRun runs the whole harness end to end on 8 nodes (one keygen, so two
// vaults) with short intervals, and checks that every figure was measured
// and that the figures agree with each other: bytes by transaction type add
// up to the chain total, traffic by protocol to the nodes' total.
func TestRun(t *testing.T) {
	if os.Getenv("KSB_SIM_TEST") == "" {
		// 8 nodes and a chain through a churn and a proof epoch: 13 s
		// alone, over a minute with -race on a loaded machine, so not in
		// `make test`; `make sim` runs it first.
		t.Skip("set KSB_SIM_TEST=1 to run the 8-node simulation (make sim does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := sim.Run(ctx, sim.Config{
		Nodes: 8, Dir: t.TempDir(), JoinWave: 5, // two waves
		// Short chain intervals so the churn takes seconds; heartbeats as
		// rare as a node's default (each is signed and verified twice by
		// every node, which under -race on a loaded machine costs more than
		// everything else together).
		BlockInterval: 200 * time.Millisecond, PollInterval: 500 * time.Millisecond,
		BatchInterval: 300 * time.Millisecond, HeartbeatInterval: 30 * time.Second,
		Progress: &progress,
	})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || res.Nodes != 8 || res.Shares != 16 || res.Vaults != 2 || res.Removed != 1 {
		t.Errorf("result %+v", res)
	}
	if res.WorkFactor != sim.DefaultWorkFactor || !strings.Contains(progress.String(), "LOW") {
		t.Errorf("work factor %d not said to be low:\n%s", res.WorkFactor, progress.String())
	}
	if res.Coverage <= 0 || res.Restore <= 0 || res.Start <= 0 || res.Join <= 0 || res.MeshPeers != 7 {
		t.Errorf("timings: coverage %v, restore %v, start %v, join %v, mesh peers %d", res.Coverage, res.Restore, res.Start, res.Join, res.MeshPeers)
	}
	if res.Unrepaired < 0 || res.Unrepaired > 2*res.Removed {
		t.Errorf("%d unrepaired shares of %d removed nodes", res.Unrepaired, res.Removed)
	}

	names := ""
	for _, p := range res.Phases {
		if p.Status != sim.StatusOK {
			t.Errorf("phase %s: %s %s", p.Name, p.Status, p.Note)
		}
		names += p.Name + ";"
	}
	if names != "start;join;keygen;backup;proof epoch;churn;accounting;" {
		t.Errorf("phases %s", names)
	}
	if res.Safe <= 0 || res.Safe > res.Restore {
		t.Errorf("safe after %v, restored after %v", res.Safe, res.Restore)
	}
	// The proof epoch: every one of the 16 shares' 3 custodies is
	// challenged (round_epochs 1) and proved, and the chain carries one
	// segment proof for each.
	pe := res.Proof
	if pe == nil || pe.Custodies != 16*3 || pe.Challenges != pe.Custodies || pe.Proved != pe.Custodies ||
		pe.Proofs != pe.Custodies || pe.ProveTxs == 0 || pe.ProveTxs > 8 || pe.ProveBytes == 0 || pe.Time <= 0 {
		t.Errorf("proof epoch %+v", pe)
	}

	c := res.Chain
	if c == nil || c.Blocks == 0 || c.Txs == 0 || c.BlockTimeMean <= 0 || c.BlockTimeMax < c.BlockTimeMean {
		t.Fatalf("chain %+v", c)
	}
	var txs int
	var bytesSum int64
	for typ, tb := range c.ByType {
		if typ == "undecodable" {
			t.Errorf("%d undecodable transactions", tb.Txs)
		}
		txs += tb.Txs
		bytesSum += tb.Bytes
	}
	if txs != c.Txs || bytesSum != c.TxBytes {
		t.Errorf("by type: %d txs, %d B; total %d txs, %d B", txs, bytesSum, c.Txs, c.TxBytes)
	}
	// Keygen's churn creates the vaults and one removes a node (the joins
	// come before the counted blocks); every owner commits, every holder
	// attests and proves.
	if c.ByType["churn"].Txs != 2 || c.ByType["commit"].Txs < 8 || c.ByType["attest"].Txs == 0 || c.ByType["prove"].Txs == 0 {
		t.Errorf("by type %+v", c.ByType)
	}

	tr := res.Traffic
	if tr == nil || tr.SentBytes == 0 || tr.SentMsgs == 0 || tr.MaxSentBytes < int64(tr.MeanSentBytes) {
		t.Fatalf("traffic %+v", tr)
	}
	var protoBytes, protoMsgs int64
	pushed := false
	for p, pt := range tr.ByProtocol {
		protoBytes += pt.SentBytes
		protoMsgs += pt.SentMsgs
		if strings.Contains(p, "/ksb/push/") && pt.SentBytes > 0 {
			pushed = true
		}
	}
	if protoBytes != tr.SentBytes || protoMsgs != tr.SentMsgs {
		t.Errorf("by protocol: %d B in %d msgs; total %d B in %d msgs", protoBytes, protoMsgs, tr.SentBytes, tr.SentMsgs)
	}
	if !pushed {
		t.Errorf("no push traffic: %v", tr.ByProtocol)
	}
	if rs := res.Resources; rs.PeakRSS == 0 || rs.CPU() <= 0 || rs.PeakGoroutines == 0 || rs.PeakFDs == 0 {
		t.Errorf("resources %+v", rs)
	}

	dir := t.TempDir()
	var table bytes.Buffer
	if err := sim.WriteTable(&table, []*sim.Result{res}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| 8 | 1 (8) | 16 |") {
		t.Errorf("table:\n%s", table.String())
	}
	files, err := sim.Plot(dir, []*sim.Result{res})
	if err != nil || len(files) != len(sim.Figures) {
		t.Fatalf("plots %v: %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG: %v", f, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []sim.Config{
		{Nodes: 4},
		{Nodes: 10, Transport: "carrier-pigeon"},
		{Nodes: 10, MaxVaultMembers: 1},
		{Nodes: 10, ChurnFraction: 1},
		{Nodes: 2000},
		{Nodes: 10, EpochBlocks: 10, ProofWindow: 10},
		// Two 5 s polls and a block do not fit 10 blocks of 1 s.
		{Nodes: 10, EpochBlocks: 20, ProofWindow: 10},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := (sim.Config{Nodes: 200}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestRunProcessWithoutResult: a size whose process dies without a result
// (killed, out of memory) is reported as stopped, and the sweep goes on.
func TestRunProcessWithoutResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	res, err := sim.RunProcess(context.Background(), exec.Command("sh", "-c", "exit 3"), 42, path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Nodes != 42 || !strings.Contains(res.Error, "ended without a result") || !strings.Contains(res.Error, "exit status 3") {
		t.Errorf("%+v", res)
	}
}
