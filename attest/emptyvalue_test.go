package attest_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/attest"
)

// emptyKinds are the state keys whose value is empty (indices and timers:
// the key is the information). The state tree holds each as the one byte
// 0x00 (ICS23 cannot prove an empty value).
var emptyKinds = map[string]bool{"owned": true, "held": true, "source": true, "timer": true}

// TestEmptyValueRule: through a custody lifecycle (commits, attestations,
// an epoch's challenges, proofs, a release and its repair, a drill, a
// superseding commit, a churn), every index and timer key is stored as the
// single byte 0x00 and read back by the chain's logic as a present, empty
// value, and no record or number is ever stored as 0x00 or empty — so the
// encoding of empty values can never be confused with a record.
func TestEmptyValueRule(t *testing.T) {
	c := newChain(t, testGenesis())
	seen := map[string]bool{}
	check := func(step string) {
		t.Helper()
		raw, err := c.app.RawState()
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range raw {
			kind, _, _ := strings.Cut(strings.TrimPrefix(k, "s/"), "/")
			seen[kind] = true
			got, err := c.app.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			if emptyKinds[kind] {
				if !bytes.Equal(v, []byte{0}) || got == nil || len(got) != 0 {
					t.Fatalf("%s: index key %s stored as %x, read as %x (nil: %v); want 00 read as present and empty", step, k, v, got, got == nil)
				}
				continue
			}
			if len(v) == 0 || bytes.Equal(v, []byte{0}) || !bytes.Equal(got, v) {
				t.Fatalf("%s: record %s stored as %x, read as %x", step, k, v, got)
			}
		}
	}

	var ids [4]uint64
	for m := range ids {
		ids[m] = c.commit(m, testVaultIdx, 1024)
		if m < 3 {
			c.attestAll(ids[m]) // member 3's custodies stay pending, with attest timers
		}
	}
	check("commits")
	c.until(epochStart(1))
	check("epoch start")
	holders := map[string]bool{}
	for m := range 2 {
		for _, cu := range c.commitment(ids[m]).Custodies {
			holders[cu.Holder] = true
		}
	}
	var hs []string
	for h := range holders {
		hs = append(hs, h)
	}
	c.prove(hs[:len(hs)/2]...)
	check("proofs")
	rel := attest.CustodyID{Commitment: ids[1], Slot: 0}
	c.mustExec(idOf(c.custody(rel).Holder), &attest.Release{Custodies: []attest.CustodyID{rel}})
	check("release and repair")
	c.mustExec(testIDs[2], &attest.Drill{Custody: attest.CustodyID{Commitment: ids[2], Slot: 1}, Result: attest.DrillOK, Millis: 10})
	check("drill")
	c.commit(0, testVaultIdx, 512) // supersedes ids[0]: a prune timer
	check("superseding commit")
	c.mustExec(authority(), &attest.Churn{RemoveNodes: []string{c.custody(attest.CustodyID{Commitment: ids[2], Slot: 2}).Holder}})
	check("churn")

	for _, kind := range []string{"params", "counters", "epoch", "account", "accountof", "node", "vault", "vaultidx",
		"latest", "commit", "custody", "chal", "owned", "held", "source", "timer"} {
		if !seen[kind] {
			t.Errorf("no %s key seen: the lifecycle did not cover it", kind)
		}
	}
	if v, err := c.app.Get(attest.KeyCommitment(1 << 40)); v != nil || err != nil {
		t.Fatalf("absent key read as %x, %v", v, err)
	}
}
