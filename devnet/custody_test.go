package devnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/devnet"
	"github.com/ksb-project/ksb/p2p"
)

// epochBlocks is the custody epoch of the custody tests: 10 blocks of
// 200 ms, a proof window of 5 blocks. Members poll every 200 ms.
const epochBlocks = 10

// waitChain polls cond every 100 ms until it returns nil or ctx ends.
func waitChain(t *testing.T, ctx context.Context, what string, cond func() error) {
	t.Helper()
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last: %v)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// held returns a custody member m holds for owner's share of vault.
func held(t *testing.T, ctx context.Context, n *devnet.Network, m, owner *devnet.Member, vault string) attest.Custody {
	t.Helper()
	cs, err := n.Client.CommitmentsByOwner(ctx, owner.Address)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Vault != vault || !c.Live {
			continue
		}
		for _, cu := range c.Custodies {
			if cu.Holder == m.Address {
				return cu
			}
		}
	}
	t.Fatalf("member %d holds no copy of member %d's share of %s", m.Index, owner.Index, vault)
	return attest.Custody{}
}

func memberCov(t *testing.T, ctx context.Context, n *devnet.Network, vault, addr string) (attest.VaultCoverage, attest.MemberCoverage) {
	t.Helper()
	cov, err := n.Client.Coverage(ctx, vault)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cov.Vaults[0].Members {
		if m.Address == addr {
			return cov.Vaults[0], m
		}
	}
	t.Fatalf("no member %s in vault %s", addr, vault)
	return attest.VaultCoverage{}, attest.MemberCoverage{}
}

// TestCustodyIsProven is issue 10's test list on a devnet of four members
// with 10-block epochs. Each share's three copies are with the three other
// members, so a failed custody has no replacement candidate and coverage
// shows exactly what is lost:
//
//   - a node attesting a custody the chain assigned to another is refused
//     (code 16) and coverage does not change;
//   - a holder that loses a copy honestly releases it at once: the custody
//     fails (reason "released") without waiting for a challenge;
//   - a holder that deletes a copy and keeps quiet turns stale at its next
//     challenge and failed at the one after, within 3 epochs of the loss;
//     the owner's member is no longer covered, and the vault is no longer
//     safe once fewer than its threshold of members are;
//   - a proof built from another holder's copy is refused (code 15), under
//     either copy index;
//   - a holder stopped for good fails as a whole within 3 epochs: every
//     custody it held fails, and coverage drops to what is left.
func TestCustodyIsProven(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet through several epochs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := devnet.Start(ctx, devnet.Options{
		Nodes: 4, Dir: t.TempDir(), WorkFactor: 10, AllowLowWorkFactor: true,
		BlockInterval: 200 * time.Millisecond, PollInterval: 200 * time.Millisecond,
		BatchInterval: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
		EpochBlocks: epochBlocks, Logger: logger,
		// Possession proofs alone: no restore drill (half an epoch by
		// default) finds a dropped copy before the challenges do.
		Custody: attest.CustodyParams{DrillInterval: 1 << 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitFresh(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	m0, m1, m2, m3 := n.Members[0], n.Members[1], n.Members[2], n.Members[3]
	vaultA, vaultB := n.Vaults[0], n.Vaults[1]
	height := func() int64 {
		h, err := n.Client.Height(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	custodyOf := func(c attest.Custody) *attest.HeldCustody {
		hc, err := n.Client.Custody(ctx, custody.CustodyID{Commitment: c.Commitment, Slot: c.Slot})
		if err != nil {
			t.Fatal(err)
		}
		return hc
	}

	// 1. A phantom attestation: m0 attests the custody m1 holds of m2's share.
	before, err := n.Client.Coverage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	phantom := held(t, ctx, n, m1, m2, vaultA)
	_, err = attest.NewSender(n.Client, m0.ID).Attest(ctx, custody.CustodyID{Commitment: phantom.Commitment, Slot: phantom.Slot})
	var te *attest.TxError
	if !errors.As(err, &te) || te.Code != attest.CodeNotAssigned || !errors.Is(err, attest.ErrNotAssigned) {
		t.Fatalf("phantom attestation: %v, want code %d", err, attest.CodeNotAssigned)
	}
	after, err := n.Client.Coverage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range before.Vaults {
		for j := range before.Vaults[i].Members {
			b, a := before.Vaults[i].Members[j], after.Vaults[i].Members[j]
			if fmt.Sprint(b.Holders) != fmt.Sprint(a.Holders) {
				t.Fatalf("the refused attestation changed coverage: %v → %v", b.Holders, a.Holders)
			}
		}
	}

	// 2. An honest loss: m2 loses its copy of m0's share of A and releases it.
	honest := held(t, ctx, n, m2, m0, vaultA)
	if err := m2.Node().DropCopy(custody.CustodyID{Commitment: honest.Commitment, Slot: honest.Slot}, false); err != nil {
		t.Fatal(err)
	}
	waitChain(t, ctx, "the lost copy released", func() error {
		if hc := custodyOf(honest); hc.Status != "failed" || hc.FailReason != "released" {
			return fmt.Errorf("custody %d/%d is %s (%s)", hc.Commitment, hc.Slot, hc.Status, hc.FailReason)
		}
		return nil
	})
	va, mc := memberCov(t, ctx, n, vaultA, m0.Address)
	if mc.Covered || len(mc.Holders) != 2 || va.Covered != 3 || !va.Safe {
		t.Fatalf("after a released copy: member %+v, vault covered %d safe %v", mc, va.Covered, va.Safe)
	}

	// 3. A silent loss: m3 deletes its copy of m1's share of A and says
	// nothing. Stale at the next challenge, failed at the one after.
	silent := held(t, ctx, n, m3, m1, vaultA)
	dropped := height()
	if err := m3.Node().DropCopy(custody.CustodyID{Commitment: silent.Commitment, Slot: silent.Slot}, true); err != nil {
		t.Fatal(err)
	}
	sawStale := false
	waitChain(t, ctx, "the silently lost copy stale, then failed", func() error {
		hc := custodyOf(silent)
		sawStale = sawStale || hc.Status == "stale"
		if hc.Status != "failed" {
			return fmt.Errorf("custody %d/%d is %s", hc.Commitment, hc.Slot, hc.Status)
		}
		if hc.FailReason != "missed" {
			t.Fatalf("custody failed for %q, want missed", hc.FailReason)
		}
		if hc.FailedHeight-dropped > 3*epochBlocks {
			t.Fatalf("failed at block %d, %d blocks after the loss (at %d); the bound is 3 epochs", hc.FailedHeight, hc.FailedHeight-dropped, dropped)
		}
		return nil
	})
	if !sawStale {
		t.Error("the custody never showed stale before failed")
	}
	va, mc = memberCov(t, ctx, n, vaultA, m1.Address)
	if mc.Covered || va.Covered != 2 || va.Safe {
		t.Fatalf("after a silent loss: member %+v, vault covered %d/%d safe %v; want 2 covered, not safe", mc, va.Covered, va.Threshold, va.Safe)
	}

	// 4. m3 stops for good. At its next challenge, a proof built from
	// another holder's copy (fetched as the owner can) is refused.
	if err := n.StopMember(3); err != nil {
		t.Fatal(err)
	}
	stopped := height()
	var ch attest.Challenge
	waitChain(t, ctx, "a challenge of the stopped holder", func() error {
		chs, err := n.Client.Challenges(ctx, m3.Address)
		if err != nil {
			return err
		}
		for _, c := range chs {
			if hc := custodyOf(attest.Custody{Commitment: c.Commitment, Slot: c.Slot}); hc.Status != "failed" && hc.Owner != m1.Address {
				ch = c
				return nil
			}
		}
		return errors.New("none open")
	})
	victim := custodyOf(attest.Custody{Commitment: ch.Commitment, Slot: ch.Slot})
	var owner *devnet.Member
	for _, m := range n.Members {
		if m.Address == victim.Owner {
			owner = m
		}
	}
	cm, err := n.Client.Commitment(ctx, ch.Commitment)
	if err != nil {
		t.Fatal(err)
	}
	var other attest.Custody
	for _, cu := range cm.Custodies {
		if cu.Holder != m3.Address && cu.Status != "failed" {
			other = cu
		}
	}
	otherNode := n.Members[0]
	for _, m := range n.Members {
		if m.Address == other.Holder {
			otherNode = m
		}
	}
	h, err := p2p.NewHost(p2p.HostConfig{Identity: owner.ID})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	addrs := otherNode.Node().Addrs()
	info, err := peer.AddrInfoFromString(addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	h.Peerstore().AddAddrs(info.ID, info.Addrs, time.Minute)
	got, err := p2p.Fetch(ctx, h, info.ID, "", ch.Commitment)
	if err != nil || len(got) != 1 {
		t.Fatalf("the owner fetching %s's copy: %d copies, %v", other.Holder, len(got), err)
	}
	f := got[0]
	theirs, err := custody.ProveHeld(f.Blob, f.CopyIndex, f.Copies, f.CommitPath, ch.Segment)
	if err != nil {
		t.Fatal(err)
	}
	claimed := theirs
	claimed.CopyIndex = int(victim.CopyIndex) // passed off as its own copy
	id := custody.CustodyID{Commitment: ch.Commitment, Slot: ch.Slot}
	// Both at once (the proof window is 5 blocks): each is refused whole,
	// so neither closes the challenge for the other.
	badProofs(t, ctx, attest.NewSender(n.Client, m3.ID), ch.Epoch, map[string]attest.SegmentProof{
		"another holder's copy":                     attest.NewSegmentProof(id, theirs),
		"another holder's copy under its own index": attest.NewSegmentProof(id, claimed),
	})

	// The stopped holder fails as a whole within 3 epochs, and coverage
	// drops to what is left: vault B, whose shares all had a copy on m3,
	// has none of its members covered.
	waitChain(t, ctx, "the stopped holder failed as a whole", func() error {
		nodes, err := n.Client.Nodes(ctx)
		if err != nil {
			return err
		}
		for _, nd := range nodes {
			if nd.Address == m3.Address {
				if nd.FailedHeight == 0 {
					return errors.New("not failed yet")
				}
				if nd.FailedHeight-stopped > 3*epochBlocks {
					t.Fatalf("failed at block %d, %d blocks after it stopped (at %d)", nd.FailedHeight, nd.FailedHeight-stopped, stopped)
				}
				return nil
			}
		}
		return errors.New("not listed")
	})
	hs, err := n.Client.CustodiesByHolder(ctx, m3.Address)
	if err != nil {
		t.Fatal(err)
	}
	for _, hc := range hs {
		if hc.Live && hc.Status != "failed" {
			t.Fatalf("custody %d/%d of the failed holder is %s", hc.Commitment, hc.Slot, hc.Status)
		}
	}
	vb, err := n.Client.Coverage(ctx, vaultB)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range vb.Vaults[0].Members {
		if m.Address != m3.Address && (m.Covered || len(m.Holders) != 2) {
			t.Fatalf("vault B member %s after its holder m3 failed: %+v", m.Address, m)
		}
	}
	if vb.Vaults[0].Safe {
		t.Fatalf("vault B safe with %d of %d members covered", vb.Vaults[0].Covered, vb.Vaults[0].Threshold)
	}
}

// badProofs sends each proof in its own Prove at once and requires the
// chain to refuse every one with code 15.
func badProofs(t *testing.T, ctx context.Context, s *attest.Sender, epoch uint64, proofs map[string]attest.SegmentProof) {
	t.Helper()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(proofs))
	for name, p := range proofs {
		go func() {
			_, err := s.Prove(ctx, epoch, p)
			results <- result{name, err}
		}()
	}
	for range proofs {
		r := <-results
		var te *attest.TxError
		if !errors.As(r.err, &te) || te.Code != attest.CodeBadProof {
			t.Errorf("%s: %v, want code %d", r.name, r.err, attest.CodeBadProof)
		}
	}
}
