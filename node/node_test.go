package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/devnet"
	"github.com/ksb-project/ksb/node"
	"github.com/ksb-project/ksb/p2p"
)

// testTimeout bounds each network test; the network reaches coverage in a
// few seconds, but -race on a loaded 2-core machine is slow.
const testTimeout = 3 * time.Minute

func startNet(t *testing.T, ctx context.Context, nodes int) *devnet.Network {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := devnet.Start(ctx, devnet.Options{
		Nodes:              nodes,
		Dir:                t.TempDir(),
		WorkFactor:         10,
		AllowLowWorkFactor: true,
		BlockInterval:      200 * time.Millisecond,
		PollInterval:       300 * time.Millisecond,
		BatchInterval:      300 * time.Millisecond,
		HeartbeatInterval:  500 * time.Millisecond,
		QUIC:               true,
		Logger:             logger,
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

// waitFor polls cond every 100 ms until it returns nil or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() error) {
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

func get(addr, path string) ([]byte, int, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// metric reads one sample of the node's /metrics, e.g.
// `ksb_owner_files_total{result="unchanged"}`; 0 when absent.
func metric(t *testing.T, m *devnet.Member, sample string) float64 {
	t.Helper()
	b, code, err := get(m.Node().AdminAddr(), "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, sample+" "), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

func status(t *testing.T, ctx context.Context, m *devnet.Member) *node.Status {
	t.Helper()
	st, err := m.Node().Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func allHealthy(ctx context.Context, n *devnet.Network) error {
	for _, m := range n.Members {
		_, code, err := get(m.Node().AdminAddr(), "/healthz")
		if err != nil || code != 200 {
			return fmt.Errorf("member %d not healthy: %d %v", m.Index, code, err)
		}
	}
	return nil
}

// TestBackupCycle drops real shares into five nodes' keyshare directories and
// checks that the chain reaches full, safe coverage; that every owner has its
// receipts and committed attestations; that a holder restart keeps its blobs;
// that an owner restart neither re-seals nor re-pushes; and that a file that
// is not a keyshare is reported and left alone.
func TestBackupCycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n := startNet(t, ctx, 5)
	waitFor(t, ctx, "nodes healthy", func() error { return allHealthy(ctx, n) })

	garbage := filepath.Join(n.Members[1].KeysharesDir(), "localstate-garbage.json")
	os.MkdirAll(filepath.Dir(garbage), 0o700)
	if err := os.WriteFile(garbage, []byte(`{"pub_key":"not a share"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	cov, err := n.WaitCovered(ctx, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range cov.Vaults {
		if len(v.Members) != 5 || v.Threshold != 4 {
			t.Errorf("vault %s: %d members, threshold %d", v.PubKey, len(v.Members), v.Threshold)
		}
	}

	// Every owner: two shares, three holders each, attestations committed.
	for _, m := range n.Members {
		waitFor(t, ctx, "owner status", func() error {
			st := status(t, ctx, m)
			if !st.Chain.Reachable || len(st.Shares) != 2 {
				return fmt.Errorf("member %d: reachable %v, %d shares", m.Index, st.Chain.Reachable, len(st.Shares))
			}
			for _, s := range st.Shares {
				if len(s.Holders) != 3 || s.Attested != 3 {
					return fmt.Errorf("member %d vault %s: %d holders, %d attested", m.Index, s.Vault, len(s.Holders), s.Attested)
				}
			}
			return nil
		})
	}

	// The garbage file was reported, not touched, and nothing was pushed for it.
	if v := metric(t, n.Members[1], `ksb_owner_files_total{result="not_keyshare"}`); v < 1 {
		t.Errorf("not_keyshare count = %v", v)
	}
	if b, _ := os.ReadFile(garbage); string(b) != `{"pub_key":"not a share"}` {
		t.Errorf("garbage file altered: %q", b)
	}
	if st := status(t, ctx, n.Members[1]); len(st.Shares) != 2 {
		t.Errorf("member 1 has %d shares, want 2", len(st.Shares))
	}
	// Status names the keyshare directory it watches, and what is in it
	// (issue 9 item 2): two shares and the garbage file.
	if ks := status(t, ctx, n.Members[1]).Keyshares; ks.Dir != n.Members[1].KeysharesDir() || ks.Files != 3 || ks.Error != "" {
		t.Errorf("member 1 keyshares %+v, want %s with 3 files", ks, n.Members[1].KeysharesDir())
	}

	// /status over HTTP is the same JSON.
	raw, code, err := get(n.Members[0].Node().AdminAddr(), "/status")
	var st node.Status
	if err != nil || code != 200 || json.Unmarshal(raw, &st) != nil || st.Address != n.Members[0].Address {
		t.Fatalf("/status: %d %v %s", code, err, raw)
	}

	// A holder restart keeps its blobs.
	holder := n.Members[2]
	before := status(t, ctx, holder).Held
	if len(before) == 0 {
		t.Fatal("member 2 holds nothing")
	}
	if err := n.StopMember(2); err != nil {
		t.Fatal(err)
	}
	if err := n.StartMember(ctx, 2); err != nil {
		t.Fatal(err)
	}
	after := status(t, ctx, holder).Held
	if fmt.Sprint(digests(before)) != fmt.Sprint(digests(after)) {
		t.Errorf("holder restart: held %v, then %v", digests(before), digests(after))
	}

	// An owner restart does not re-seal: the watcher sees the same files,
	// finds them unchanged, and the sealed digests stay.
	owner := n.Members[0]
	sharesBefore := status(t, ctx, owner).Shares
	if err := n.StopMember(0); err != nil {
		t.Fatal(err)
	}
	if err := n.StartMember(ctx, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "restarted owner rescans its files", func() error {
		if v := metric(t, owner, `ksb_owner_files_total{result="unchanged"}`); v != 2 {
			return fmt.Errorf("unchanged = %v", v)
		}
		return nil
	})
	if v := metric(t, owner, `ksb_owner_files_total{result="sealed"}`); v != 0 {
		t.Errorf("restarted owner sealed %v files", v)
	}
	if v := metric(t, owner, `ksb_owner_pushes_total{result="ok"}`); v != 0 {
		t.Errorf("restarted owner pushed %v times", v)
	}
	sharesAfter := status(t, ctx, owner).Shares
	for i := range sharesBefore {
		if sharesBefore[i].Digest != sharesAfter[i].Digest || !sharesBefore[i].SealedAt.Equal(sharesAfter[i].SealedAt) {
			t.Errorf("share %s re-sealed: %s → %s", sharesBefore[i].Vault, sharesBefore[i].Digest, sharesAfter[i].Digest)
		}
	}
}

func digests(h []node.HeldStatus) []string {
	var out []string
	for _, x := range h {
		out = append(out, x.Owner+"/"+x.Vault+"/"+x.Digest)
	}
	return out
}

// TestChainOutageDuringBackup stops the chain after the nodes have read it,
// backs up while it is down (pushes still work: holders check owners against
// their last view), and checks that the queued attestations land once the
// chain is back.
func TestChainOutageDuringBackup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n := startNet(t, ctx, 4)
	waitFor(t, ctx, "nodes healthy", func() error { return allHealthy(ctx, n) })

	chainHome := filepath.Join(n.Dir, "chain")
	if err := n.Chain.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	// Every holder accepted its blobs and queued the attestations.
	waitFor(t, ctx, "pushes during the outage", func() error {
		total := 0
		for _, m := range n.Members {
			st := status(t, ctx, m)
			if st.Chain.Reachable {
				return fmt.Errorf("member %d still reaches the chain", m.Index)
			}
			for _, s := range st.Shares {
				if len(s.Holders) != 3 {
					return fmt.Errorf("member %d vault %s: %d holders", m.Index, s.Vault, len(s.Holders))
				}
			}
			total += st.PendingAttestations
		}
		if want := 4 * 2 * 3; total != want {
			return fmt.Errorf("%d pending attestations, want %d", total, want)
		}
		return nil
	})

	// A holder restarted during the outage keeps its queue (and, from its
	// saved chain view, still knows who is active).
	if err := n.StopMember(2); err != nil {
		t.Fatal(err)
	}
	if err := n.StartMember(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "restarted holder healthy on its saved view", func() error { return allHealthy(ctx, n) })
	if p := status(t, ctx, n.Members[2]).PendingAttestations; p != 6 {
		t.Fatalf("restarted holder has %d pending attestations, want 6", p)
	}

	chain, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{Home: chainHome})
	if err != nil {
		t.Fatal(err)
	}
	n.Chain = chain // so Close stops it
	if _, err := n.WaitCovered(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "queues drained", func() error {
		for _, m := range n.Members {
			if p := status(t, ctx, m).PendingAttestations; p != 0 {
				return fmt.Errorf("member %d: %d pending", m.Index, p)
			}
		}
		return nil
	})
}

// TestBadEntryDoesNotBlockAttestations: an owner pushes a blob for a vault the
// chain does not know; the holder refuses it (UNKNOWN_VAULT, from its view of
// the real chain) and stores nothing, and every attestation of that holder
// still lands. Then an owner's share file is rewritten (same vault, new
// bytes): the new seal goes to the old holders, which replace the old blob
// and release its attestation.
func TestBadEntryDoesNotBlockAttestations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n := startNet(t, ctx, 4)
	waitFor(t, ctx, "nodes healthy", func() error { return allHealthy(ctx, n) })

	owner, holder := n.Members[0], n.Members[1]
	h, err := p2p.NewHost(p2p.HostConfig{Identity: owner.ID})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	hn := holder.Node()
	ai, err := peer.AddrInfoFromString(hn.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, *ai); err != nil {
		t.Fatal(err)
	}
	if _, err := p2p.Push(ctx, h, ai.ID, owner.ID, "nosuchvault", []byte("not a sealed share, and no vault")); !errors.Is(err, p2p.ErrUnknownVault) {
		t.Fatalf("push for a vault not on chain: err = %v, want ErrUnknownVault", err)
	}

	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitCovered(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the queue drained", func() error {
		if v := metric(t, holder, `ksb_holder_dropped_entries_total{kind="attest"}`); v != 0 {
			return fmt.Errorf("dropped = %v, want nothing to drop", v)
		}
		if p := status(t, ctx, holder).PendingAttestations; p != 0 {
			return fmt.Errorf("%d pending", p)
		}
		return nil
	})

	// Rewrite one of the owner's shares with the same content in another
	// layout: same vault, new bytes, so a new seal.
	var name string
	for nm := range owner.Shares {
		name = nm
		break
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, owner.Shares[name], "", " "); err != nil {
		t.Fatal(err)
	}
	pretty := buf.Bytes()
	vault := strings.TrimSuffix(strings.TrimPrefix(name, "localstate-"), ".json")
	before := shareOf(t, ctx, owner, vault)
	if err := os.WriteFile(filepath.Join(owner.KeysharesDir(), name), pretty, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "old digest released, new one attested by the same holders", func() error {
		after := shareOf(t, ctx, owner, vault)
		if after.Digest == before.Digest {
			return fmt.Errorf("not re-sealed yet")
		}
		as, err := n.Client.AttestationsByOwner(ctx, owner.Address)
		if err != nil {
			return err
		}
		var oldN, newN int
		for _, a := range as {
			if a.Vault != vault {
				continue
			}
			switch a.Digest {
			case before.Digest:
				oldN++
			case after.Digest:
				newN++
			}
		}
		if oldN != 0 || newN != 3 {
			return fmt.Errorf("old digest attested by %d, new by %d", oldN, newN)
		}
		if fmt.Sprint(holderAddrs(before)) != fmt.Sprint(holderAddrs(after)) {
			return fmt.Errorf("holders changed: %v → %v", holderAddrs(before), holderAddrs(after))
		}
		return nil
	})
}

func shareOf(t *testing.T, ctx context.Context, m *devnet.Member, vault string) node.ShareStatus {
	t.Helper()
	for _, s := range status(t, ctx, m).Shares {
		if s.Vault == vault {
			return s
		}
	}
	t.Fatalf("member %d has no share of %s", m.Index, vault)
	return node.ShareStatus{}
}

func holderAddrs(s node.ShareStatus) []string {
	var out []string
	for _, h := range s.Holders {
		out = append(out, h.Address)
	}
	return out
}

// TestRetiredVaultIsDropped: once the authority retires a vault on chain and
// the grace period has passed, holders drop its blobs and release their
// attestations; the other vault's backups stay.
func TestRetiredVaultIsDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := devnet.Start(ctx, devnet.Options{
		Nodes: 4, Dir: t.TempDir(), WorkFactor: 10, AllowLowWorkFactor: true,
		BlockInterval: 200 * time.Millisecond, PollInterval: 300 * time.Millisecond,
		BatchInterval: 300 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
		// Long enough for the four status reads below (two chain queries
		// each) to finish inside it under -race on a loaded 2-core machine:
		// with 5 s the last member had already dropped blobs in two full
		// `go test -race ./...` runs.
		RetiredGrace: 15 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.PlaceShares(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitCovered(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	retired, kept := n.Vaults[0], n.Vaults[1]
	if _, err := attest.NewSender(n.Client, n.Authority).Send(ctx, &attest.Churn{RetireVaults: []string{retired}}); err != nil {
		t.Fatal(err)
	}
	// Within the grace period the blobs are kept (a retirement can be a
	// mistake the authority undoes).
	for _, m := range n.Members {
		held := 0
		for _, h := range status(t, ctx, m).Held {
			if h.Vault == retired {
				held++
			}
		}
		if held != 3 {
			t.Fatalf("member %d holds %d blobs of the retired vault right after its retirement, want 3", m.Index, held)
		}
	}
	waitFor(t, ctx, "retired vault's blobs dropped and released", func() error {
		for _, m := range n.Members {
			for _, h := range status(t, ctx, m).Held {
				if h.Vault == retired {
					return fmt.Errorf("member %d still holds a blob of the retired vault", m.Index)
				}
			}
			as, err := n.Client.AttestationsByHolder(ctx, m.Address)
			if err != nil {
				return err
			}
			var keptN int
			for _, a := range as {
				switch a.Vault {
				case retired:
					return fmt.Errorf("member %d's attestation of the retired vault is not released", m.Index)
				case kept:
					keptN++
				}
			}
			if keptN != 3 {
				return fmt.Errorf("member %d attests %d blobs of the kept vault, want 3", m.Index, keptN)
			}
		}
		return nil
	})
}
