package chaos_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/internal/chaos"
)

// shortSchedule is the short version of `make chaos` that runs in `make
// test`: one cycle of each fault — a SIGKILL, a chain outage with a restart
// without the chain and a second kill, and a freeze past the push deadline —
// with two owners.
var shortSchedule = []chaos.Fault{chaos.Kill, chaos.ChainDown, chaos.Stop}

// buildKSB builds cmd/ksb with the given build tags into a temporary
// directory.
func buildKSB(t *testing.T, tags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ksb")
	if out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, "github.com/ksb-project/ksb/cmd/ksb").CombinedOutput(); err != nil {
		t.Fatalf("building ksb (tags %q): %v\n%s", tags, err, out)
	}
	return bin
}

// TestShortRun runs the crash-consistency check against a ksb binary built
// from this tree, with a new seed each time (logged); KSB_CHAOS_SEED=N
// replays one.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ksb processes for about a minute")
	}
	t.Parallel() // mostly waits (on a holder frozen for 32 s)
	bin := buildKSB(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var seed uint64
	if s := os.Getenv("KSB_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("KSB_CHAOS_SEED: %v", err)
		}
	}
	var log strings.Builder
	res, err := chaos.Run(ctx, chaos.Config{
		Seed:     seed,
		KSB:      bin,
		Dir:      filepath.Join(t.TempDir(), "chaos"),
		Schedule: shortSchedule,
		Owners:   2,
		Pushers:  2,
		Vaults:   4,
		Log:      &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", log.String())
	if !res.OK() {
		for _, p := range res.Problems {
			t.Errorf("%s", p)
		}
		t.Fatalf("seed %d: %d problems", res.Seed, len(res.Problems))
	}
	if res.Cycles != len(shortSchedule) || res.Receipts == 0 || res.Verified == 0 {
		t.Fatalf("seed %d: %d cycles, %d receipts, %d blobs checked", res.Seed, res.Cycles, res.Receipts, res.Verified)
	}
	t.Logf("seed %d: %d cycles, %d receipts, %d blob checks passed in %v", res.Seed, res.Cycles, res.Receipts, res.Verified, res.Elapsed.Round(time.Second))
}

// runFaulty runs one kill cycle against bin and returns the problems found.
func runFaulty(t *testing.T, bin string) []chaos.Problem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := chaos.Run(ctx, chaos.Config{
		KSB: bin, Dir: filepath.Join(t.TempDir(), "chaos"), Schedule: []chaos.Fault{chaos.Kill},
		Owners: 1, Pushers: 2, Vaults: 4, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d:\n%s", res.Seed, log.String())
	return res.Problems
}

// wrapper writes a shell script that runs `ksb node` through prelude (shell
// commands; $n is the number of this start, from 1) and any other command
// straight through to ksb.
func wrapper(t *testing.T, ksb, prelude string) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "ksb")
	body := "#!/bin/sh\n" +
		"if [ \"$1\" = node ]; then\n" +
		"  n=$(( $(cat " + filepath.Join(dir, "starts") + " 2>/dev/null || echo 0) + 1 ))\n" +
		"  echo $n > " + filepath.Join(dir, "starts") + "\n" +
		prelude + "\n" +
		"fi\n" +
		"exec " + ksb + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

// TestRunCatchesFaults: the run fails on a holder that acknowledges blobs
// before writing them (the ksb_unsafe_ack build), on a holder that does not
// come back after a kill, and on a panic in a log — a check that could not
// fail would prove nothing.
func TestRunCatchesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ksb processes")
	}
	t.Parallel()
	t.Run("unsafe ack", func(t *testing.T) {
		problems := runFaulty(t, buildKSB(t, "ksb_unsafe_ack"))
		if len(problems) == 0 || !strings.Contains(problems[0].What, "LOST a receipted blob") {
			t.Fatalf("problems = %v, want a receipted blob lost", problems)
		}
	})
	ksb := buildKSB(t, "")
	t.Run("no restart", func(t *testing.T) {
		problems := runFaulty(t, wrapper(t, ksb, `[ $n -gt 1 ] && { echo "refusing to start" >&2; exit 1; }`))
		t.Logf("%v", problems)
		if len(problems) == 0 || !strings.Contains(problems[0].What, "did not come back") {
			t.Fatalf("problems = %v, want a holder that did not come back", problems)
		}
	})
	t.Run("panic in log", func(t *testing.T) {
		problems := runFaulty(t, wrapper(t, ksb, `[ $n -gt 1 ] && echo "panic: planted by the test" >&2`))
		if len(problems) == 0 || !strings.Contains(problems[0].What, "panic in a log") {
			t.Fatalf("problems = %v, want a panic found in a log", problems)
		}
	})
}
