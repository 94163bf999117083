package devnet_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/devnet"
)

// TestChurnRemovesAThird is issue 11's "churn that removes a third of the
// active set at once" on a devnet of nine active nodes (five vault members
// with shares, four spare holders; r = 3), drills off. Once every member's
// shares are committed and counted, one Churn removes three nodes (two
// owners and the spare holding the most copies), each stopped and wiped
// first. Every live commitment of every owner (the three remaining, online,
// and the two removed, stopped for good) must be back to r counted holders
// within repairBlocks of the churn's block; the removed owners' replacements
// can only be sent by a surviving holder over the repair protocol. The
// test logs the repair latency and each node's push and repair traffic
// since the churn, from its p2p service's counters.
func TestChurnRemovesAThird(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet")
	}
	if raceDetector {
		// Nine daemons and a chain under the race detector on a loaded
		// two-core machine (load average ~17) did not reach initial
		// coverage within 3 minutes in two tries; TestRepairWithoutOwner,
		// with the same nine nodes, did not either at that load.
		t.Skip("too slow under the race detector: run go test -run TestChurnRemovesAThird ./devnet/")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	n, err := devnet.Start(ctx, devnet.Options{
		Nodes: 5, Spares: 4, Dir: t.TempDir(), WorkFactor: 10, AllowLowWorkFactor: true,
		BlockInterval: 200 * time.Millisecond, PollInterval: 200 * time.Millisecond,
		BatchInterval: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
		Logger: logger,
		// Repair alone: no restore drill adds traffic to the figures.
		Custody: attest.CustodyParams{DrillInterval: 1 << 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, m := range n.Members[:5] {
		owners = append(owners, m.Address)
	}
	// Every member's shares committed and held by r counted holders.
	if _, err := n.WaitCovered(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitChain(t, ctx, "every share committed", func() error {
		for _, m := range n.Members[:5] {
			cs, err := n.Client.CommitmentsByOwner(ctx, m.Address)
			if err != nil {
				return err
			}
			live := 0
			for _, c := range cs {
				if c.Live {
					live++
				}
			}
			if live < len(m.Shares) {
				return fmt.Errorf("node%d: %d live commitments for %d shares", m.Index, live, len(m.Shares))
			}
		}
		return nil
	})
	if _, err := n.WaitReplicated(ctx, owners, 1, time.Now(), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	// Two owners and the spare that holds the most copies.
	spare, most := -1, -1
	for _, m := range n.Members[5:] {
		held, err := n.Client.CustodiesByHolder(ctx, m.Address)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) > most {
			spare, most = m.Index, len(held)
		}
	}
	removed := []int{3, 4, spare}
	var lost int // custodies of live commitments the churn fails
	for _, i := range removed {
		held, err := n.Client.CustodiesByHolder(ctx, n.Members[i].Address)
		if err != nil {
			t.Fatal(err)
		}
		lost += len(held)
	}
	before := traffic(t, n)
	churn, err := n.KillMembers(ctx, removed...)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := n.WaitReplicated(ctx, owners, churn, time.Now(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("churn removed nodes %v (holding %d custodies): %v", removed, lost, tm)
	if tm.Repairs == 0 || tm.Blocks > repairBlocks {
		t.Fatalf("%v; want at least one repair within %d blocks", tm, repairBlocks)
	}

	// The stopped owners' replacements came from surviving holders.
	gone := map[string]bool{}
	for _, i := range removed {
		gone[n.Members[i].Address] = true
	}
	stoppedRepairs := 0
	for _, i := range removed[:2] {
		o := n.Members[i].Address
		cs, err := n.Client.CommitmentsByOwner(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if !c.Live {
				continue
			}
			holders, reps := counted(c, churn)
			for _, h := range holders {
				if gone[h] {
					t.Fatalf("commitment %d of removed node%d still counts removed holder %s", c.ID, i, h)
				}
			}
			for _, r := range reps {
				if r.Source == "" || r.Source == o || gone[r.Source] {
					t.Fatalf("repair %+v of removed node%d's commitment %d: source %q is not a surviving holder", r, i, c.ID, r.Source)
				}
				if r.Attested {
					stoppedRepairs++
				}
			}
		}
	}

	after := traffic(t, n)
	var in devnet.CopyTraffic
	t.Logf("traffic since the churn (copies/bytes; out = sent as owner or repair source, in = received as holder or replacement):")
	for _, m := range n.Members {
		r := after[m.Index]["repair"].Sub(before[m.Index]["repair"])
		p := after[m.Index]["push"].Sub(before[m.Index]["push"])
		in.CopiesIn += r.CopiesIn
		in.BytesIn += r.BytesIn
		state := "live"
		if gone[m.Address] {
			state = "removed"
		}
		t.Logf("  node%d (%s): repair out %d/%d B, in %d (+%d dup)/%d B; push out %d/%d B, in %d (+%d dup)/%d B",
			m.Index, state, r.CopiesOut, r.BytesOut, r.CopiesIn, r.DuplicatesIn, r.BytesIn, p.CopiesOut, p.BytesOut, p.CopiesIn, p.DuplicatesIn, p.BytesIn)
	}
	t.Logf("repairs of the stopped owners' shares: %d; copies received over %s: %d (%d B)", stoppedRepairs, "repair", in.CopiesIn, in.BytesIn)
	if in.CopiesIn < stoppedRepairs {
		t.Fatalf("%d copies received over repair, fewer than the %d attested repairs of the stopped owners' shares", in.CopiesIn, stoppedRepairs)
	}
}

// traffic reads every member's push and repair traffic.
func traffic(t *testing.T, n *devnet.Network) []map[string]devnet.CopyTraffic {
	t.Helper()
	out := make([]map[string]devnet.CopyTraffic, len(n.Members))
	for _, m := range n.Members {
		out[m.Index] = map[string]devnet.CopyTraffic{}
		for _, p := range []string{"push", "repair"} {
			tr, err := m.Traffic(p)
			if err != nil {
				t.Fatal(err)
			}
			out[m.Index][p] = tr
		}
	}
	return out
}
