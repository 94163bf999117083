package recovery_test

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/recovery"
	"github.com/ksb-project/ksb/recovery/recoverytest"
)

// TestGossipCopiesOfAVersion: over gossip, the r copies of a commitment are
// different ciphertexts of one share, opened one at a time. Two holders
// return garbage of the right size under the real commitment and copy
// index (lying holders); the third returns its real copy. Recovery skips
// the garbage it opens, opens the next copy of the version after each
// failure, and recovers the share byte for byte, whichever copy came first.
func TestGossipCopiesOfAVersion(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a := ecdsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 3, Replication: 3, Vaults: []string{a.vault}})
	v := net.Commit(t, owner, ownerMnemonic, a.vault, a.file)
	if len(v.Assignments) != 3 {
		t.Fatalf("%d custodies, want 3", len(v.Assignments))
	}
	var bootstrap []string
	for slot, as := range v.Assignments {
		hd := net.Holder(as.Holder)
		if hd == nil {
			t.Fatalf("slot %d assigned to %s, not a holder", slot, as.Holder)
		}
		bootstrap = append(bootstrap, hd.Bootstrap())
		if slot == 2 {
			hd.PutCopy(t, v, slot, time.Time{})
			continue
		}
		e, blob := v.Entry(t, slot, time.Time{})
		junk := bytes.Repeat([]byte{0x5a}, len(blob))
		e.Digest = sha256.Sum256(junk)
		if _, err := hd.Store.Put(e, junk); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	var progress bytes.Buffer
	rep, err := run(t, recovery.Options{
		Mnemonic: ownerMnemonic, OutDir: out, NoChain: true, Listen: loopback, Bootstrap: bootstrap,
		Progress: &progress, GossipFirstWait: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkFile(t, out, a)
	onlyFiles(t, out, a)
	if len(rep.Recovered()) != 1 || rep.Vaults[0].Commitment != v.ID || rep.Vaults[0].Holder != v.Assignments[2].Holder {
		t.Fatalf("recovered %+v", rep.Vaults)
	}
	t.Logf("%d garbage copies opened and skipped before the real one", len(rep.Skipped))
	if len(rep.Skipped) > 2 {
		t.Fatalf("%d skips for 2 garbage copies\n%s", len(rep.Skipped), progress.String())
	}
	// Garbage is skipped if it was opened (it is not once the real copy
	// opened: another copy of the kept version is not opened).
	for _, s := range rep.Skipped {
		if s.Holder == v.Assignments[2].Holder {
			t.Fatalf("a real copy was skipped: %+v\n%s", s, progress.String())
		}
	}
}
