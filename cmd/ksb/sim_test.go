package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimCommand runs `ksb sim` as an operator would, through the binary:
// one small size in a process of its own, the table printed with the time
// the run took, and --out holding the table, the results and a plot per
// figure; then the same results drawn again with --from-results.
func TestSimCommand(t *testing.T) {
	if os.Getenv("KSB_SIM_TEST") == "" {
		// A 6-node simulation through the binary: too slow with -race for
		// `make test`; `make sim` runs it first.
		t.Skip("set KSB_SIM_TEST=1 to run the simulation command (make sim does)")
	}
	out := t.TempDir()
	r := runKSB(t, nil, "sim", "--nodes", "6", "--out", out,
		"--block-interval", "200ms", "--poll-interval", "500ms", "--batch-interval", "300ms")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"age work factor 10 (LOW", "| 6 | 1 (6) | 12 |", "proof epoch  ok", "ksb sim: took "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, f := range []string{"table.md", "results.json", "coverage.png", "chain-bytes.png", "peak-memory.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	again := runKSB(t, nil, "sim", "--from-results", filepath.Join(out, "results.json"))
	if again.code != 0 || !strings.Contains(again.stdout, "| 6 | 1 (6) | 12 |") {
		t.Errorf("--from-results: exit %d\n%s\n%s", again.code, again.stdout, again.stderr)
	}
	bad := runKSB(t, nil, "sim", "--nodes", "6", "--transport", "pigeon")
	if bad.code == 0 || !strings.Contains(bad.stderr, "transport") {
		t.Errorf("--transport pigeon: exit %d\n%s", bad.code, bad.stderr)
	}
}
