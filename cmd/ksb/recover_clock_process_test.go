package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/fixtures"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/recovery/recoverytest"
)

// TestRecoverWarnsOfSkewedClock (issue 15): `ksb recover` run as a process
// (a ksb_testhooks build, whose clock KSB_TEST_CLOCK_OFFSET moves) against a
// real chain and holders recovers whatever its clock, and warns on stderr,
// naming the offset and the chain's block, when its clock is 10 minutes
// slow or fast; with its clock right it says nothing of the clock.
func TestRecoverWarnsOfSkewedClock(t *testing.T) {
	owner, err := identity.New(recoverMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	share, err := fixtures.ECDSA(0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := keyshare.Parse(share)
	if err != nil {
		t.Fatal(err)
	}
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 1, Vaults: []string{info.VaultPubKey}})
	net.Place(t, net.Commit(t, owner, recoverMnemonic, info.VaultPubKey, share))
	file := mnemonicFile(t)
	hooks := ksbHooksBinary(t)
	// The warning names the offset to the second, measured against the
	// latest block's time, which lags this machine's (skewed) clock by the
	// block's age when read: a block interval and the RPC's answer, half a
	// second on a loaded 2-core machine ("9m59s behind" for -10m). Within
	// 5 s of the skew is the skew; the tolerance is a minute.
	const slack = 5 * time.Second
	warning := regexp.MustCompile(`this machine's clock is (\S+) (behind|ahead of) the chain's latest block`)
	for _, c := range []struct {
		offset string
		want   string // "": no warning; else "behind" or "ahead of", by 10 min
	}{{"-10m", "behind"}, {"0s", ""}, {"10m", "ahead of"}} {
		out := t.TempDir()
		r := runBin(t, hooks, nil, []string{"KSB_TEST_CLOCK_OFFSET=" + c.offset},
			"recover", "--mnemonic-file", file, "--out", out, "--rpc", net.Chain.RPCURL())
		if r.code != 0 {
			t.Fatalf("clock %s off: exit %d\n%s\n%s", c.offset, r.code, r.stdout, r.stderr)
		}
		got, err := os.ReadFile(filepath.Join(out, "localstate-"+info.VaultPubKey+".json"))
		if err != nil || !bytes.Equal(got, share) {
			t.Fatalf("clock %s off: share not recovered byte for byte (%v)", c.offset, err)
		}
		warned := strings.Contains(r.stderr, "warning: this machine's clock")
		if c.want == "" {
			if warned {
				t.Fatalf("clock right: warned\n%s", r.stderr)
			}
			continue
		}
		m := warning.FindStringSubmatch(r.stderr)
		var d time.Duration
		if m != nil {
			d, err = time.ParseDuration(m[1])
		}
		if !warned || m == nil || err != nil || m[2] != c.want || (d-10*time.Minute).Abs() > slack || !strings.Contains(r.stderr, "NTP") {
			t.Fatalf("clock %s off: want a warning of 10m0s (±%v) %s the chain's latest block, stderr:\n%s", c.offset, slack, c.want, r.stderr)
		}
	}
}
