package recovery_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/recovery"
	"github.com/ksb-project/ksb/recovery/recoverytest"
)

// TestRecoverWithSkewedClock (issue 15): a machine that recovers a node is
// often new and its clock minutes off until NTP catches up. Over gossip, with
// real hosts, versions committed on the chain and their copies with the
// holders it assigned, and the holders' clocks right, recovery with the recoverer's
// clock 10 minutes slow and 10 minutes fast brings both shares back byte for
// byte, and reports the offset it measured against the holders' clocks.
// (Two owners, one per case: a holder sends one owner's blobs at most every
// 10 s, which a second run right after the first would wait for.)
func TestRecoverWithSkewedClock(t *testing.T) {
	owner, other := mustIdentity(t, ownerMnemonic), mustIdentity(t, otherMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner, other}, Holders: 3, Vaults: []string{a.vault, b.vault}})
	var bootstrap []string
	for _, hd := range net.Holders {
		bootstrap = append(bootstrap, hd.Bootstrap())
	}
	// Each owner's versions are committed on the chain and their copies
	// placed with the holders the chain assigned (what pushes leave); the
	// recovery below does not ask the chain.
	for _, o := range []struct {
		id       *identity.Identity
		mnemonic string
	}{{owner, ownerMnemonic}, {other, otherMnemonic}} {
		net.Place(t, net.Commit(t, o.id, o.mnemonic, a.vault, a.file))
		net.Place(t, net.Commit(t, o.id, o.mnemonic, b.vault, b.file))
	}
	for _, c := range []struct {
		name     string
		mnemonic string
		skew     time.Duration
	}{{"slow", ownerMnemonic, -10 * time.Minute}, {"fast", otherMnemonic, 10 * time.Minute}} {
		t.Run(c.name, func(t *testing.T) {
			out := t.TempDir()
			var progress bytes.Buffer
			rep, err := run(t, recovery.Options{
				Mnemonic: c.mnemonic, OutDir: out, NoChain: true, Listen: loopback, Bootstrap: bootstrap,
				Progress: &progress, GossipFirstWait: 20 * time.Second,
				Now: func() time.Time { return time.Now().Add(c.skew) },
			})
			if err != nil {
				t.Fatalf("clock %v off: %v\n%s", c.skew, err, progress.String())
			}
			checkFile(t, out, a)
			checkFile(t, out, b)
			onlyFiles(t, out, a, b)
			if rep.Path != recovery.PathGossip || len(rep.Recovered()) != 2 {
				t.Fatalf("path %s, %d recovered", rep.Path, len(rep.Recovered()))
			}
			cc := rep.Clock
			if cc == nil || cc.Against != recovery.ClockAgainstHolders || cc.Samples == 0 || !cc.Skewed() ||
				cc.Offset < c.skew-5*time.Second || cc.Offset > c.skew+5*time.Second {
				t.Fatalf("clock check %+v, want about %v against the holders", cc, c.skew)
			}
		})
	}
}

// TestRecoverViaChainReportsClock: through the chain, Run compares this
// machine's clock with the latest block's time: 10 minutes fast or slow is
// reported as skewed (the recovery itself succeeds), a right clock is not.
func TestRecoverViaChainReportsClock(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a := ecdsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 1, Vaults: []string{a.vault}})
	net.Place(t, net.Commit(t, owner, ownerMnemonic, a.vault, a.file))
	for _, skew := range []time.Duration{-10 * time.Minute, 0, 10 * time.Minute} {
		var progress bytes.Buffer
		rep, err := run(t, recovery.Options{
			Mnemonic: ownerMnemonic, OutDir: t.TempDir(), RPC: net.Chain.RPCURL(), Progress: &progress,
			Now: func() time.Time { return time.Now().Add(skew) },
		})
		if err != nil {
			t.Fatalf("clock %v off: %v\n%s", skew, err, progress.String())
		}
		cc := rep.Clock
		// The latest block trails real time by a block interval or two.
		if cc == nil || cc.Against != recovery.ClockAgainstChain || cc.Height == 0 ||
			cc.Offset < skew-5*time.Second || cc.Offset > skew+5*time.Second || cc.Skewed() != (skew != 0) {
			t.Fatalf("clock %v off: check %+v\n%s", skew, cc, progress.String())
		}
	}
}
