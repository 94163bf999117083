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

// TestShortRun runs the crash-consistency check against a ksb binary built
// from this tree, with a new seed each time (logged); KSB_CHAOS_SEED=N
// replays one.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ksb processes for about a minute")
	}
	bin := filepath.Join(t.TempDir(), "ksb")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ksb-project/ksb/cmd/ksb").CombinedOutput(); err != nil {
		t.Fatalf("building ksb: %v\n%s", err, out)
	}
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
