package devnet_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/devnet"
)

// TestRun runs the whole devnet demonstration at a low work factor: backup to
// full coverage, repair of node0's shares while it is stopped and one of its
// holders is destroyed, destruction of node0, recovery from its mnemonic (a
// share from a repaired copy), and the byte-for-byte check Run itself makes.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	tm, err := devnet.Run(ctx, devnet.RunOptions{
		Options: devnet.Options{
			Nodes: 5, Dir: t.TempDir(), WorkFactor: 10, AllowLowWorkFactor: true,
			BlockInterval: 200 * time.Millisecond, PollInterval: 300 * time.Millisecond,
			BatchInterval: 300 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
		},
		Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	if n := strings.Count(s, "identical"); n != 2 {
		t.Errorf("%d shares recovered identical, want 2:\n%s", n, s)
	}
	if !strings.Contains(s, "recovered 2 of 2 shares") || strings.Contains(s, "DIFFERENT") {
		t.Errorf("summary:\n%s", s)
	}
	if tm.Coverage <= 0 || tm.Recovery <= 0 || tm.Repair == nil || tm.Repair.Repairs == 0 {
		t.Errorf("timings %+v", tm)
	}
	if !strings.Contains(s, "back to r = 3 counted holders without node0") || !strings.Contains(s, "(repaired copy)") {
		t.Errorf("no repair phase, or no share recovered from a repaired copy:\n%s", s)
	}
	t.Logf("repair: %v", tm.Repair)
}

func TestStartRefusesUsedDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := devnet.Start(context.Background(), devnet.Options{Nodes: 4, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Start in a used directory: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("Start wrote into the used directory: %v", entries)
	}
}

func TestStartRefusesBadSizes(t *testing.T) {
	for _, o := range []devnet.Options{{Nodes: devnet.MinNodes - 1}, {Nodes: devnet.MaxNodes + 1}, {Nodes: 4, Replication: 4}} {
		if _, err := devnet.Start(context.Background(), o); err == nil {
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}
