package devnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/devnet"
	"github.com/ksb-project/ksb/recovery"
)

// repairBlocks bounds, in blocks, how long the repairs of these tests may
// take from the loss's block to the last replacement's attestation. The
// goal (docs/performance.md) is 3 block intervals plus one push; the bound
// leaves room for a machine loaded by -race and other packages' tests,
// while far below what the chain's own fallbacks take (a source redrawn
// after repair_window = 300 blocks, an unattested replacement failed after
// attest_window = 3,600): a repair that nobody sends fails it.
const repairBlocks = 40

var errNotYet = errors.New("not yet")

// liveCommitment returns owner's live commitment for vault.
func liveCommitment(t *testing.T, ctx context.Context, n *devnet.Network, owner, vault string) attest.Commitment {
	t.Helper()
	cs, err := n.Client.CommitmentsByOwner(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Live && c.Vault == vault {
			return c
		}
	}
	t.Fatalf("%s has no live commitment for %s", owner, vault)
	return attest.Commitment{}
}

// counted returns the holders of c's attested custodies that have not
// failed, and the custodies assigned at or after height since.
func counted(c attest.Commitment, since int64) (holders []string, repairs []attest.Custody) {
	for _, cu := range c.Custodies {
		if cu.Attested && cu.Status != "failed" {
			holders = append(holders, cu.Holder)
		}
		if since > 0 && cu.AssignedHeight >= since {
			repairs = append(repairs, cu)
		}
	}
	return holders, repairs
}

func memberIndex(t *testing.T, n *devnet.Network, addr string) int {
	t.Helper()
	for _, m := range n.Members {
		if m.Address == addr {
			return m.Index
		}
	}
	t.Fatalf("no member %s", addr)
	return -1
}

// TestRepairWithoutOwner is issue 11's repair list on a devnet of five vault
// members and four spare holders (r = 3), with node0 as the owner whose
// shares are repaired:
//
//   - a holder restarted with an empty store releases what it held at its
//     first poll, and the chain repairs every custody it released from the
//     other holders, within the bound;
//   - node0 stopped, one holder of its share of vault A destroyed for good
//     (stopped, home wiped, churned out): its share is back to r counted
//     holders within the bound, the copy coming from a surviving holder;
//   - two of the three holders then lost at once: the survivor repairs
//     both;
//   - with the survivor stopped too, node0 restarted from nothing but its
//     mnemonic recovers every share byte for byte, that of vault A from a
//     repaired copy.
//
// Without the repairer (node/repair.go) no copy is sent, and the chain only
// acts after repair_window and attest_window: the waits here time out.
func TestRepairWithoutOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	const block = 200 * time.Millisecond
	n, err := devnet.Start(ctx, devnet.Options{
		Nodes: 5, Spares: 4, Dir: t.TempDir(), WorkFactor: 10, AllowLowWorkFactor: true,
		BlockInterval: block, PollInterval: 200 * time.Millisecond,
		BatchInterval: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitCovered(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, m := range n.Members[:5] {
		owners = append(owners, m.Address)
	}
	m0, vaultA := n.Members[0], n.Vaults[0]

	// 1. A spare holder (no shares of its own, so it commits nothing when
	// it starts again) restarts with an empty store.
	w, most := -1, 0
	for _, m := range n.Members[5:] {
		held, err := n.Client.CustodiesByHolder(ctx, m.Address)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) > most {
			w, most = m.Index, len(held)
		}
	}
	if w < 0 {
		t.Fatal("no spare holds a copy")
	}
	// Watch every vault's safety from here until the repairs are done.
	watch, stopWatch := context.WithCancel(ctx)
	unsafe := make(chan [2]int64, 1) // first and last height seen not safe
	go func() {
		span := [2]int64{}
		defer func() { unsafe <- span }()
		for watch.Err() == nil {
			cov, err := n.Client.Coverage(watch, "")
			if err == nil {
				for _, v := range cov.Vaults {
					if !v.Safe {
						if span[0] == 0 {
							span[0] = cov.Height
						}
						span[1] = cov.Height
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if err := n.StopMember(w); err != nil {
		t.Fatal(err)
	}
	if err := n.WipeStore(w); err != nil {
		t.Fatal(err)
	}
	if err := n.StartMember(ctx, w); err != nil {
		t.Fatal(err)
	}
	var loss int64
	var lossSeen time.Time
	waitChain(t, ctx, "the wiped holder's release", func() error {
		held, err := n.Client.CustodiesByHolder(ctx, n.Members[w].Address)
		if err != nil {
			return err
		}
		for _, hc := range held {
			if hc.FailReason == "released" && (loss == 0 || hc.FailedHeight < loss) {
				loss = hc.FailedHeight
			}
		}
		if loss == 0 {
			return errNotYet
		}
		lossSeen = time.Now()
		return nil
	})
	tm, err := n.WaitReplicated(ctx, owners, loss, lossSeen, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	stopWatch()
	span := <-unsafe
	t.Logf("empty-store restart of node%d: %v; a vault showed not safe in blocks %d..%d", w, tm, span[0], span[1])
	if tm.Repairs == 0 || tm.Blocks > repairBlocks {
		t.Fatalf("empty-store restart: %v; want at least one repair within %d blocks", tm, repairBlocks)
	}
	if span[0] != 0 && (span[0] < loss || span[1] >= tm.RepairedHeight) {
		t.Fatalf("a vault showed not safe in blocks %d..%d, outside the repair (%d..%d)", span[0], span[1], loss, tm.RepairedHeight)
	}

	// 2. node0 stopped; one holder of its share of vault A destroyed.
	if err := n.StopMember(0); err != nil {
		t.Fatal(err)
	}
	shareA := liveCommitment(t, ctx, n, m0.Address, vaultA)
	holdersA, _ := counted(shareA, 0)
	k := memberIndex(t, n, holdersA[0])
	loss, err = n.KillMembers(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	tm, err = n.WaitReplicated(ctx, []string{m0.Address}, loss, time.Now(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node0 stopped, node%d destroyed: %v", k, tm)
	shareA = liveCommitment(t, ctx, n, m0.Address, vaultA)
	holdersA, reps := counted(shareA, loss)
	if len(holdersA) < 3 || len(reps) == 0 || tm.Blocks > repairBlocks {
		t.Fatalf("after losing node%d: holders %v, repairs %+v, %v", k, holdersA, reps, tm)
	}
	for _, r := range reps {
		if r.Source == m0.Address {
			t.Fatalf("repair %+v names the stopped owner as its source", r)
		}
	}

	// 3. Two of the three holders lost at once: the survivor repairs both.
	survivor := holdersA[0]
	var gone []int
	for _, h := range holdersA[1:] {
		gone = append(gone, memberIndex(t, n, h))
	}
	loss, err = n.KillMembers(ctx, gone...)
	if err != nil {
		t.Fatal(err)
	}
	tm, err = n.WaitReplicated(ctx, []string{m0.Address}, loss, time.Now(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node0 stopped, nodes %v destroyed: %v", gone, tm)
	shareA = liveCommitment(t, ctx, n, m0.Address, vaultA)
	holdersA, reps = counted(shareA, loss)
	if len(holdersA) < 3 || len(reps) != 2 || tm.Blocks > repairBlocks {
		t.Fatalf("after losing nodes %v: holders %v, repairs %+v, %v", gone, holdersA, reps, tm)
	}
	var repaired []string
	for _, r := range reps {
		if r.Source != "" && r.Source != survivor {
			t.Fatalf("repair %+v: source is not the survivor %s", r, survivor)
		}
		repaired = append(repaired, r.Holder)
	}

	// 4. node0 from its mnemonic alone; vault A's share can only come from
	// a repaired copy.
	if err := n.StopMember(memberIndex(t, n, survivor)); err != nil {
		t.Fatal(err)
	}
	if err := n.WipeMember(0); err != nil {
		t.Fatal(err)
	}
	var boot []string
	for _, m := range n.Members {
		if nd := m.Node(); nd != nil {
			boot = append(boot, nd.Addrs()...)
		}
	}
	rep, err := recovery.Run(ctx, recovery.Options{
		Mnemonic: m0.Mnemonic, OutDir: m0.KeysharesDir(), RPC: n.Chain.RPCURL(), Bootstrap: boot,
		Logger: logger.With("component", "recovery"),
	})
	if err != nil {
		t.Fatalf("recovering node0: %v", err)
	}
	for name, want := range m0.Shares {
		got, err := os.ReadFile(filepath.Join(m0.KeysharesDir(), name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("recovered %s: %v, identical %v", name, err, bytes.Equal(got, want))
		}
	}
	for _, v := range rep.Vaults {
		if v.Vault == vaultA && !slices.Contains(repaired, v.Holder) {
			t.Fatalf("vault A's share came from %s, not from a repaired copy (%v)", v.Holder, repaired)
		}
	}
	if err := n.StartMember(ctx, 0); err != nil {
		t.Fatalf("node0 restarted from its recovered files: %v", err)
	}
}
