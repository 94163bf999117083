package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/devnet"
)

// rewriteShare writes owner's share of vault again with the same content in
// another layout (indent spaces), so the owner sees a new version: what a
// keygen of the next churn does to the file. It writes a temporary file and
// renames it, as keygen tools write their state.
func rewriteShare(t *testing.T, m *devnet.Member, vault string, indent int) {
	t.Helper()
	name := "localstate-" + vault + ".json"
	var buf bytes.Buffer
	if err := json.Indent(&buf, m.Shares[name], "", strings.Repeat(" ", indent)); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(m.KeysharesDir(), ".tmp-"+vault)
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.KeysharesDir(), name)); err != nil {
		t.Fatal(err)
	}
}

// TestRetentionBoundsHolderStores runs 10 churns on a real chain with real
// holders: at each, every owner writes a new version of its shares (a new
// commitment that supersedes the last), and at churn 5 the authority retires
// one of the two vaults. After every churn, every holder's store and the
// custodies the chain lists for it stay within the bound retention gives —
// per other owner and vault, the live version plus at most
// attest.MaxSupersededVersions superseded ones kept for the grace — and
// within the per-owner quota; once the grace has passed after the last
// churn, each holder keeps exactly the live copies, and each owner only the
// sealed copies of its live version. Without retention a
// holder would keep every version: 3 owners × 2 vaults × 10.
func TestRetentionBoundsHolderStores(t *testing.T) {
	const (
		churns    = 10
		retireAt  = 5
		retention = 15 // blocks of 100 ms
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	n := startFastNet(t, ctx, 4, attest.CustodyParams{RetentionBlocks: retention})
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitCovered(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	kept, retired := n.Vaults[0], n.Vaults[1]
	owners := len(n.Members) - 1 // every other member is an owner whose copies a holder keeps (4 nodes, r = 3)
	perOwnerVault := 1 + attest.MaxSupersededVersions
	quota := n.Members[0].Config.Store.QuotaBlobs

	// check samples every holder's store and chain custodies against the
	// bound for that many vaults.
	maxBlobs, maxOnChain := 0, 0
	check := func(churn, vaults int) {
		t.Helper()
		bound := owners * vaults * perOwnerVault
		for _, m := range n.Members {
			st := m.Node().Store()
			blobs, _, err := st.Stats()
			if err != nil {
				t.Fatal(err)
			}
			onChain, err := n.Client.CustodiesByHolder(ctx, m.Address)
			if err != nil {
				t.Fatal(err)
			}
			maxBlobs, maxOnChain = max(maxBlobs, blobs), max(maxOnChain, len(onChain))
			if blobs > bound || len(onChain) > bound {
				t.Fatalf("churn %d: member %d holds %d copies, the chain lists %d custodies for it; bound %d", churn, m.Index, blobs, len(onChain), bound)
			}
			for _, o := range n.Members {
				if o == m {
					continue
				}
				b, _, err := st.Usage(o.ID.PubKey())
				if err != nil {
					t.Fatal(err)
				}
				if b > vaults*perOwnerVault || b > quota {
					t.Fatalf("churn %d: member %d holds %d copies of member %d (quota %d)", churn, m.Index, b, o.Index, quota)
				}
			}
		}
	}
	check(0, 2)

	roots := map[string]string{} // member/vault → root (hex) of the version last seen counted
	for _, m := range n.Members {
		cs, err := n.Client.CommitmentsByOwner(ctx, m.Address)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range n.Vaults {
			c, ok := liveCommitment(cs, v)
			if !ok {
				t.Fatalf("member %d: no live commitment for vault %s", m.Index, v)
			}
			roots[m.Address+"/"+v] = c.Root
		}
	}
	vaults := []string{kept, retired}
	for churn := 1; churn <= churns; churn++ {
		if churn == retireAt {
			if _, err := attest.NewSender(n.Client, n.Authority).Send(ctx, &attest.Churn{RetireVaults: []string{retired}}); err != nil {
				t.Fatal(err)
			}
			vaults = []string{kept}
		}
		for _, m := range n.Members {
			for _, v := range vaults {
				rewriteShare(t, m, v, churn)
			}
		}
		waitFor(t, ctx, fmt.Sprintf("churn %d: every new version committed and counted by 3 holders", churn), func() error {
			for _, m := range n.Members {
				cs, err := n.Client.CommitmentsByOwner(ctx, m.Address)
				if err != nil {
					return err
				}
				for _, v := range vaults {
					c, ok := liveCommitment(cs, v)
					if !ok || c.Root == roots[m.Address+"/"+v] || countedCustodies(c) != 3 {
						return fmt.Errorf("member %d vault %s: new version not counted yet", m.Index, v)
					}
				}
			}
			for _, m := range n.Members {
				cs, err := n.Client.CommitmentsByOwner(ctx, m.Address)
				if err != nil {
					return err
				}
				for _, v := range vaults {
					c, _ := liveCommitment(cs, v)
					roots[m.Address+"/"+v] = c.Root
				}
			}
			return nil
		})
		// The retired vault's copies count against the bound until its
		// grace (15 blocks, 1.5 s: less than a churn here) has passed.
		bounded := 2
		if churn >= retireAt+2 {
			bounded = 1
		}
		check(churn, bounded)
	}

	waitFor(t, ctx, "after the grace, each holder keeps exactly the live copies", func() error {
		for _, m := range n.Members {
			blobs, _, err := m.Node().Store().Stats()
			if err != nil {
				return err
			}
			onChain, err := n.Client.CustodiesByHolder(ctx, m.Address)
			if err != nil {
				return err
			}
			if blobs != owners || len(onChain) != owners {
				return fmt.Errorf("member %d: %d copies held, %d custodies on chain, want %d (one per other owner of the kept vault)", m.Index, blobs, len(onChain), owners)
			}

		}
		return nil
	})
	// As an owner: the r sealed copies of its live version of the kept
	// vault, none of the retired vault's (the owner reconciles every poll).
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	defer ocancel()
	waitFor(t, octx, "each owner keeps only the sealed copies of its live version", func() error {
		for _, m := range n.Members {
			if own := m.Node().OwnCopies(); own != 3 {
				return fmt.Errorf("member %d keeps %d sealed copies of its own shares, want the 3 of its live version", m.Index, own)
			}
		}
		return nil
	})
	t.Logf("%d churns: at most %d copies in a holder's store, %d custodies listed for a holder on chain (bound %d)",
		churns, maxBlobs, maxOnChain, owners*2*perOwnerVault)
}

// startFastNet starts a devnet of in-process nodes with 100 ms blocks and
// 150 ms chain polls and attestation batches, so that a churn (a new version
// sealed, committed, pushed, attested) takes a few seconds.
func startFastNet(t *testing.T, ctx context.Context, nodes int, cp attest.CustodyParams) *devnet.Network {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := devnet.Start(ctx, devnet.Options{
		Nodes: nodes, Dir: t.TempDir(), WorkFactor: 10, AllowLowWorkFactor: true,
		BlockInterval: 100 * time.Millisecond, PollInterval: 150 * time.Millisecond,
		BatchInterval: 150 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
		Custody: cp, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing devnet: %v", err)
		}
	})
	return n
}

// liveCommitment returns the live commitment of cs for vault.
func liveCommitment(cs []attest.Commitment, vault string) (attest.Commitment, bool) {
	for _, c := range cs {
		if c.Vault == vault && c.Live {
			return c, true
		}
	}
	return attest.Commitment{}, false
}

// countedCustodies counts c's attested, not failed custodies.
func countedCustodies(c attest.Commitment) int {
	k := 0
	for _, cu := range c.Custodies {
		if cu.Attested && cu.Status != "failed" {
			k++
		}
	}
	return k
}
