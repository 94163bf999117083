package node_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/devnet"
	"github.com/ksb-project/ksb/node"
)

// drillInterval is the drill interval of the drill tests, in blocks: 8
// blocks of 200 ms, so an owner drills every 1.6 s.
const drillInterval = 8

// memberCoverage returns owner's coverage entry in vault.
func memberCoverage(ctx context.Context, n *devnet.Network, vault, owner string) (attest.MemberCoverage, error) {
	cov, err := n.Client.Coverage(ctx, vault)
	if err != nil {
		return attest.MemberCoverage{}, err
	}
	for _, v := range cov.Vaults {
		for _, m := range v.Members {
			if m.Address == owner {
				return m, nil
			}
		}
	}
	return attest.MemberCoverage{}, fmt.Errorf("%s is not in the coverage of vault %s", owner, vault)
}

// chainHeight reads the chain's height, asking again while a loaded
// machine makes the query time out.
func chainHeight(t *testing.T, ctx context.Context, n *devnet.Network) int64 {
	t.Helper()
	var h int64
	waitFor(t, ctx, "the chain height", func() (err error) {
		h, err = n.Client.Height(ctx)
		return err
	})
	return h
}

// TestDrill: every owner restores one of its copies from a random holder
// each drill interval and posts the result. Against honest holders every
// drill is ok, and coverage and `ksb status` show the height and outcome of
// the last one per member. Then every holder replaces its copies of one
// owner by tampered bytes (a holder serving garbage with a matching digest
// header, as a cheating holder would): that owner's next drill finds the
// copy does not match the committed root, posts bad_copy, and the chain
// fails that custody (reason "drill"); the other owners' drills stay ok.
// Last, a holder stops: a drill of one of its custodies finds it
// unreachable and fails that custody.
func TestDrill(t *testing.T) {
	// Three drill rounds, each at least drillInterval blocks apart.
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	n := startNetWith(t, ctx, 4, attest.CustodyParams{DrillInterval: drillInterval})
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitCovered(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	// Honest holders: every owner drills, and every drill is ok.
	waitFor(t, ctx, "every owner drilled ok", func() error {
		for _, m := range n.Members {
			drilled := false
			for _, v := range n.Vaults {
				mc, err := memberCoverage(ctx, n, v, m.Address)
				if err != nil {
					return err
				}
				if mc.LastDrillHeight != 0 && !mc.LastDrillOK {
					t.Fatalf("member %d: drill of vault %s at %d failed against honest holders", m.Index, v, mc.LastDrillHeight)
				}
				drilled = drilled || mc.LastDrillHeight != 0
			}
			if !drilled {
				return fmt.Errorf("member %d: no drill yet", m.Index)
			}
		}
		return nil
	})
	for _, m := range n.Members {
		var st *node.Status
		waitFor(t, ctx, "status with the chain's view", func() error {
			if st = status(t, ctx, m); !st.Chain.Reachable {
				return fmt.Errorf("member %d: chain unreachable: %s", m.Index, st.Chain.Error)
			}
			return nil
		})
		drilledShares := 0
		for _, s := range st.Shares {
			if s.LastDrillHeight == 0 {
				continue
			}
			drilledShares++
			if !s.LastDrillOK {
				t.Errorf("member %d vault %s: status shows a failed drill at %d", m.Index, s.Vault, s.LastDrillHeight)
			}
			drilled := 0
			for _, c := range s.Custodies {
				if c.LastDrillHeight != 0 {
					drilled++
					if !c.LastDrillOK {
						t.Errorf("member %d vault %s slot %d: drill failed", m.Index, s.Vault, c.Slot)
					}
				}
			}
			if drilled == 0 {
				t.Errorf("member %d vault %s: drilled, but no custody shows it", m.Index, s.Vault)
			}
		}
		if drilledShares == 0 {
			t.Errorf("member %d: status shows no drill", m.Index)
		}
	}

	// Tamper with every copy of owner 0 on every holder: same size, a
	// flipped byte, a digest that matches the new bytes.
	victim := n.Members[0]
	tampered := map[custody.CustodyID]bool{}
	for _, m := range n.Members[1:] {
		st := m.Node().Store()
		entries, err := st.Entries(victim.ID.PubKey())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			_, blob, err := st.Get(e.Custody)
			if err != nil {
				t.Fatal(err)
			}
			blob[len(blob)/2] ^= 0x40
			e.Digest = sha256.Sum256(blob)
			if _, err := st.Put(e, blob); err != nil {
				t.Fatal(err)
			}
			tampered[e.Custody] = true
		}
	}
	if len(tampered) != 6 {
		t.Fatalf("tampered with %d copies of owner 0, want its 2 shares × 3", len(tampered))
	}
	from := chainHeight(t, ctx, n)
	var failed custody.CustodyID
	var failedAt int64
	waitFor(t, ctx, "a drill of a tampered copy fails its custody on chain", func() error {
		cs, err := n.Client.CommitmentsByOwner(ctx, victim.Address)
		if err != nil {
			return err
		}
		for _, c := range cs {
			for _, cu := range c.Custodies {
				id := custody.CustodyID{Commitment: c.ID, Slot: cu.Slot}
				// (An ok drill since from may be one that fetched before the
				// tampering; the next drill of owner 0 is a whole interval
				// later.)
				if cu.LastDrillHeight > from && !cu.LastDrillOK {
					if !tampered[id] {
						t.Fatalf("custody %v failed a drill but was not tampered with", id)
					}
					if cu.Status != "failed" || cu.FailReason != "drill" {
						return fmt.Errorf("custody %v: drill failed at %d, status %s (%s)", id, cu.LastDrillHeight, cu.Status, cu.FailReason)
					}
					failed, failedAt = id, cu.LastDrillHeight
					return nil
				}
			}
		}
		return fmt.Errorf("no failed drill of owner 0 since block %d", from)
	})
	t.Logf("custody %d/%d failed by a drill", failed.Commitment, failed.Slot)
	// Coverage shows the failed drill for owner 0, and the other owners
	// keep drilling ok; no owner ever posted a Drill the chain refused (the
	// node waits drill_interval blocks between drills, as the chain does).
	sawFailed := false
	waitFor(t, ctx, "coverage shows the failed drill, other owners still drill ok", func() error {
		for _, m := range n.Members {
			latest := attest.MemberCoverage{}
			for _, v := range n.Vaults {
				mc, err := memberCoverage(ctx, n, v, m.Address)
				if err != nil {
					return err
				}
				if m == victim && mc.Commitment == failed.Commitment && mc.LastDrillHeight == failedAt && mc.LastDrillOK {
					t.Fatalf("owner 0 vault %s: coverage shows the drill at %d ok, want failed", v, mc.LastDrillHeight)
				}
				sawFailed = sawFailed || m == victim && mc.Commitment == failed.Commitment && mc.LastDrillHeight >= failedAt
				if mc.LastDrillHeight > latest.LastDrillHeight {
					latest = mc
				}
			}
			if m == victim {
				continue
			}
			if latest.LastDrillHeight <= from {
				return fmt.Errorf("member %d: no drill since %d", m.Index, from)
			}
			if !latest.LastDrillOK {
				t.Fatalf("member %d: drill at %d failed against an honest holder", m.Index, latest.LastDrillHeight)
			}
		}
		return nil
	})
	if !sawFailed {
		t.Errorf("coverage never showed owner 0's drill of commitment %d", failed.Commitment)
	}
	for _, m := range n.Members {
		if v := metric(t, m, `ksb_owner_drills_total{result="refused"}`); v != 0 {
			t.Errorf("member %d: the chain refused %v of its drills", m.Index, v)
		}
	}
	if v := metric(t, victim, `ksb_owner_drills_total{result="bad_copy"}`); v < 1 {
		t.Errorf("owner 0: %v bad_copy drills counted, want at least 1", v)
	}

	// A holder that stops answering: member 3's host goes down (it stays in
	// the active set). The next drill of one of its custodies finds it
	// unreachable after its retries and fails that custody. Only a custody
	// whose copy was not tampered with tells: owner 0 keeps drilling its
	// tampered copies, and one of those on member 3 fetched just before the
	// stop fails by a drill after it too, as bad_copy (seen: "0 unreachable
	// drills counted" with custody 8/2, tampered, failed at a later block).
	// The owner counts a drill once it sees its transaction committed,
	// after the chain shows it: wait for that count too.
	gone := n.Members[3]
	if err := n.StopMember(3); err != nil {
		t.Fatal(err)
	}
	from = chainHeight(t, ctx, n)
	waitFor(t, ctx, "a drill of the stopped holder fails its custody (unreachable)", func() error {
		held, err := n.Client.CustodiesByHolder(ctx, gone.Address)
		if err != nil {
			return err
		}
		failedHonest := false
		for _, hc := range held {
			id := custody.CustodyID{Commitment: hc.Commitment, Slot: hc.Slot}
			if !tampered[id] && hc.LastDrillHeight > from && !hc.LastDrillOK && hc.Status == "failed" && hc.FailReason == "drill" {
				failedHonest = true
			}
		}
		if !failedHonest {
			return fmt.Errorf("no failed drill of member 3's untampered custodies since %d", from)
		}
		unreachable := 0.0
		for _, m := range n.Members[:3] {
			unreachable += metric(t, m, `ksb_owner_drills_total{result="unreachable"}`)
		}
		if unreachable < 1 {
			return fmt.Errorf("%v unreachable drills counted, want at least 1", unreachable)
		}
		return nil
	})
}
