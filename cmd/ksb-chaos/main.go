// Command ksb-chaos runs ksb's crash-consistency check (package
// internal/chaos) against a ksb binary: a validator and a holder run as
// processes on 127.0.0.1, owners push blobs concurrently, and the holder is
// killed, frozen and restarted (also with the chain down) at random moments;
// after every cycle each owner fetches its blobs and checks them. It exits 0
// when every receipted blob is there, intact, every restart came up and no
// log has a panic; 1 otherwise; 2 when the run could not be set up.
//
//	go build -o bin/ksb ./cmd/ksb && go run ./cmd/ksb-chaos -ksb bin/ksb [-seed N] [-cycles N] [-duration D]
//
// `make chaos` does that (CHAOS_SEED=N, CHAOS_FLAGS=…, CHAOS_TAGS=ksb_unsafe_ack
// for the deliberately broken holder the run must catch).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ksb-project/ksb/internal/chaos"
)

func main() {
	var cfg chaos.Config
	ksb := flag.String("ksb", "bin/ksb", "the ksb binary under test")
	flag.StringVar(&cfg.Dir, "dir", "", "working directory (must not exist or be empty; default: a new temporary one)")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "schedule seed (0: random; the seed used is printed)")
	flag.IntVar(&cfg.Cycles, "cycles", chaos.DefaultCycles, "number of cycles (one fault each)")
	flag.DurationVar(&cfg.Duration, "duration", chaos.DefaultDuration, "no cycle starts after this")
	flag.IntVar(&cfg.Owners, "owners", chaos.DefaultOwners, "owner nodes pushing")
	flag.IntVar(&cfg.Pushers, "pushers", chaos.DefaultPushers, "concurrent pushes per owner")
	flag.IntVar(&cfg.Vaults, "vaults", chaos.DefaultVaults, "vaults per owner (one blob each on the holder)")
	flag.DurationVar(&cfg.StopFor, "stop-for", chaos.DefaultStopFor, "how long a stop fault freezes the holder")
	faults := flag.String("faults", "", "fixed schedule, e.g. kill,stop,chain-down (overrides -cycles; default: drawn from the seed)")
	keep := flag.Bool("keep", false, "keep the working directory after a clean run")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ksb-chaos: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if *faults != "" {
		s, err := chaos.ParseSchedule(*faults)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ksb-chaos: -faults:", err)
			os.Exit(2)
		}
		cfg.Schedule = s
	}
	bin, err := filepath.Abs(*ksb)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ksb-chaos: ksb binary: %v (build it: make build)\n", err)
		os.Exit(2)
	}
	cfg.KSB = bin
	tmp := cfg.Dir == ""
	if tmp {
		if cfg.Dir, err = os.MkdirTemp("", "ksb-chaos-"); err != nil {
			fmt.Fprintln(os.Stderr, "ksb-chaos:", err)
			os.Exit(2)
		}
	}
	cfg.Log = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ksb-chaos:", err)
		os.Exit(2)
	}
	fmt.Printf("\nchaos: seed %d, %d cycles (kill %d, stop %d, chain-down %d) in %v\n",
		res.Seed, res.Cycles, res.Faults[chaos.Kill], res.Faults[chaos.Stop], res.Faults[chaos.ChainDown], res.Elapsed.Round(time.Second))
	fmt.Printf("chaos: %d receipts, %d pushes without a receipt, %d blob checks passed (%d confirmed by a second fetch)\n",
		res.Receipts, res.Failed, res.Verified, res.Rechecks)
	if ctx.Err() != nil {
		fmt.Printf("chaos: interrupted; logs in %s\n", cfg.Dir)
		os.Exit(1)
	}
	if !res.OK() {
		fmt.Printf("chaos: FAIL: %d problems (logs and data in %s; rerun with -seed %d):\n", len(res.Problems), cfg.Dir, res.Seed)
		for _, p := range res.Problems {
			fmt.Println("  " + p.String())
		}
		os.Exit(1)
	}
	fmt.Println("chaos: PASS: no receipted blob lost or corrupt, every restart came up, no panic in a log")
	if tmp && !*keep {
		os.RemoveAll(cfg.Dir)
	} else {
		fmt.Printf("chaos: logs in %s\n", cfg.Dir)
	}
}
