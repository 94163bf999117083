package recovery_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/recovery"
	"github.com/ksb-project/ksb/recovery/recoverytest"
	"github.com/ksb-project/ksb/store"
)

var loopback = []string{"/ip4/127.0.0.1/tcp/0"}

func mustIdentity(t testing.TB, m string) *identity.Identity {
	t.Helper()
	id, err := identity.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRecoverViaChain: the owner commits an ECDSA and an EdDSA share, the
// chain assigns each copy to one of three holders, which store and attest
// them; recovery from the mnemonic alone brings both back byte for byte
// through the chain, from a copy that verifies against the commitment.
func TestRecoverViaChain(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 3, Vaults: []string{a.vault, b.vault}})
	va := net.Commit(t, owner, ownerMnemonic, a.vault, a.file)
	vb := net.Commit(t, owner, ownerMnemonic, b.vault, b.file)
	net.Place(t, va)
	net.Place(t, vb)

	out := filepath.Join(t.TempDir(), "out")
	var progress bytes.Buffer
	rep, err := run(t, recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: net.Chain.RPCURL(), Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if rep.Path != recovery.PathChain || rep.Fallback != "" {
		t.Fatalf("path %q (fallback %q), want chain", rep.Path, rep.Fallback)
	}
	if rep.Owner != owner.Address(recoverytest.HRP) || rep.PeerID != owner.PeerID() {
		t.Fatalf("owner %s %s, want %s", rep.Owner, rep.PeerID, owner.Address(recoverytest.HRP))
	}
	checkFile(t, out, a)
	checkFile(t, out, b)
	onlyFiles(t, out, a, b)
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("output directory: %v, %v", fi.Mode(), err)
	}
	holders := map[string]bool{}
	for _, hd := range net.Holders {
		holders[hd.Address()] = true
	}
	for _, s := range []struct {
		share
		v *recoverytest.Version
	}{{a, va}, {b, vb}} {
		v := vaultResult(t, rep, s.vault)
		if v.Err != nil || !holders[v.Holder] || v.Commitment != s.v.ID || v.Digest != hex.EncodeToString(s.v.Commitment.Root[:]) ||
			v.Bytes != len(s.file) || v.Height == 0 || v.File != filepath.Join(out, "localstate-"+s.vault+".json") {
			t.Fatalf("vault result %+v", v)
		}
	}
	if len(rep.Skipped) != 0 {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
	if strings.Contains(progress.String(), ownerMnemonic) || strings.Contains(progress.String(), strings.Fields(ownerMnemonic)[0]+" "+strings.Fields(ownerMnemonic)[1]) {
		t.Fatal("progress shows the mnemonic")
	}
}

// TestRecoverViaGossipChainStopped: the chain is down; with bootstrap peers
// recovery falls back to gossip on its own, verifies every returned blob and
// keeps the newest per vault.
func TestRecoverViaGossipChainStopped(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 3, Vaults: []string{a.vault, b.vault}})
	oldA := recoverytest.Seal(t, a.file, ownerMnemonic)
	newA := recoverytest.Seal(t, a.file, ownerMnemonic)
	blobB := recoverytest.Seal(t, b.file, ownerMnemonic)
	now := time.Now()
	net.Holders[0].Put(t, owner, a.vault, oldA, now.Add(-time.Hour))
	net.Holders[1].Put(t, owner, a.vault, newA, now)
	net.Holders[2].Put(t, owner, a.vault, newA, now.Add(-time.Minute))
	for _, hd := range net.Holders {
		hd.Put(t, owner, b.vault, blobB, now)
	}
	rpc := net.Chain.RPCURL()
	if err := net.Chain.Stop(); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	var progress bytes.Buffer
	rep, err := run(t, recovery.Options{
		Mnemonic: ownerMnemonic, OutDir: out, RPC: rpc, Listen: loopback,
		Bootstrap:   []string{net.Holders[0].Bootstrap(), net.Holders[1].Bootstrap(), net.Holders[2].Bootstrap()},
		GossipQuiet: gossipQuiet, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if rep.Path != recovery.PathGossip || !strings.Contains(rep.Fallback, "refused the connection") {
		t.Fatalf("path %q, fallback %q; want gossip after the chain refused the connection", rep.Path, rep.Fallback)
	}
	checkFile(t, out, a)
	checkFile(t, out, b)
	onlyFiles(t, out, a, b)
	if v := vaultResult(t, rep, a.vault); v.Digest != digestHex(newA) || v.Holder != net.Holders[1].Address() || !v.Received.Equal(now) {
		t.Fatalf("vault %s: kept %s from %s (received %v), want the newest copy %s from %s\n%s",
			a.vault, v.Digest, v.Holder, v.Received, digestHex(newA), net.Holders[1].Address(), progress.String())
	}
}

// TestByzantineHoldersChain: the owner's live version of vault A is held by
// liars only — one sends its copy tampered, one sends another holder's copy
// of the same version as its own, one sends another owner's sealed share,
// one sends its copy of the owner's vault B version, one accepts the stream
// and stays silent — while an older version is held honestly. Every liar's
// copy is refused by the check against the chain's commitment (nothing of
// it is decrypted), each is logged and reported, and recovery uses the
// older version's honest copy and says so.
func TestByzantineHoldersChain(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	other := mustIdentity(t, otherMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	othersA := recoverytest.Seal(t, a.file, otherMnemonic)

	const (
		honest, tamperer, silent, wrongVault, wrongOwner, swapper = 0, 1, 2, 3, 4, 5
	)
	// The liars' stores are set once the versions exist (the chain assigns
	// the custodies); until then they serve their real store.
	lies := make([]*lyingStore, 6)
	wrap := func(i int, st p2p.Store) p2p.Store {
		lies[i] = &lyingStore{Store: st}
		return lies[i]
	}
	logs := &logRecorder{}
	net := recoverytest.Start(t, recoverytest.Config{
		Owners: []*identity.Identity{owner, other}, Holders: 6, Vaults: []string{a.vault, b.vault},
		WrapStore: wrap, Silent: []int{silent},
	})
	hs := net.Holders
	old := net.Commit(t, owner, ownerMnemonic, a.vault, a.file)
	vb := net.Commit(t, owner, ownerMnemonic, b.vault, b.file)
	live := net.Commit(t, owner, ownerMnemonic, a.vault, a.file) // supersedes old
	slot := func(v *recoverytest.Version, i int) int {
		s := v.Slot(hs[i])
		if s < 0 {
			t.Fatalf("holder %d has no custody of commitment %d", i, v.ID)
		}
		return s
	}
	// The honest holder keeps the old version and B.
	hs[honest].PutCopy(t, old, slot(old, honest), time.Time{})
	hs[honest].PutCopy(t, vb, slot(vb, honest), time.Time{})
	hs[honest].Attest(t, old.Assignments[slot(old, honest)].Custody, vb.Assignments[slot(vb, honest)].Custody)
	// wrongVault holds its copy of B.
	hs[wrongVault].PutCopy(t, vb, slot(vb, wrongVault), time.Time{})
	// Every liar stores and attests its copy of the live version, then
	// serves something else under that custody.
	for _, i := range []int{tamperer, silent, wrongVault, wrongOwner, swapper} {
		s := slot(live, i)
		hs[i].PutCopy(t, live, s, time.Time{})
		hs[i].Attest(t, live.Assignments[s].Custody)
	}
	cust := func(i int) custody.CustodyID { return live.Assignments[slot(live, i)].Custody }
	_, mine := live.Entry(t, slot(live, tamperer), time.Time{})
	tampered := bytes.Clone(mine)
	tampered[len(tampered)/2] ^= 0x40
	lies[tamperer].blobs = map[custody.CustodyID][]byte{cust(tamperer): tampered}
	_, theirs := live.Entry(t, slot(live, tamperer), time.Time{})
	lies[swapper].blobs = map[custody.CustodyID][]byte{cust(swapper): theirs}
	_, bCopy := vb.Entry(t, slot(vb, wrongVault), time.Time{})
	lies[wrongVault].blobs = map[custody.CustodyID][]byte{cust(wrongVault): bCopy}
	lies[wrongOwner].blobs = map[custody.CustodyID][]byte{cust(wrongOwner): othersA}

	out := t.TempDir()
	var progress bytes.Buffer
	rep, err := run(t, recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: net.Chain.RPCURL(), Logger: logs.logger(),
		// HolderTimeout bounds the liars' answers too: at 2 s one of them
		// timed out instead of being caught, under -race at load 35.
		Progress: &progress, HolderTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkFile(t, out, a)
	checkFile(t, out, b)
	onlyFiles(t, out, a, b)
	if v := vaultResult(t, rep, a.vault); v.Holder != hs[honest].Address() || v.Commitment != old.ID {
		t.Fatalf("vault A from %s (commitment %d), want the honest holder's copy of commitment %d", v.Holder, v.Commitment, old.ID)
	}
	for _, c := range []struct {
		name   string
		holder int
		check  func(error) bool
	}{
		{"tampered copy", tamperer, func(err error) bool { return errors.Is(err, recovery.ErrBadCopy) }},
		{"another holder's copy", swapper, func(err error) bool { return errors.Is(err, recovery.ErrBadCopy) }},
		{"another vault's copy", wrongVault, func(err error) bool { return errors.Is(err, recovery.ErrBadCopy) }},
		{"another owner's share", wrongOwner, func(err error) bool { return errors.Is(err, recovery.ErrBadCopy) }},
		{"silent", silent, func(err error) bool { return errors.Is(err, recovery.ErrHolderTimeout) }},
	} {
		addr := hs[c.holder].Address()
		s, ok := skipOfVersion(rep, a.vault, addr, live.ID)
		if !ok || !c.check(s.Err) {
			t.Errorf("%s: holder %s skipped = %v, %v (commitment %d)", c.name, addr, ok, s.Err, s.Commitment)
		}
		if !logs.has(skipLogged(a.vault, addr)) {
			t.Errorf("%s: holder %s not logged", c.name, addr)
		}
	}
	if !strings.Contains(progress.String(), fmt.Sprintf("using commitment %d", old.ID)) {
		t.Errorf("progress does not say an older version was used:\n%s", progress.String())
	}
}

// TestSilentHolderTimesOut: a holder that accepts the fetch and never
// answers is skipped after HolderTimeout; its vault is reported missing by
// name while the other vault is written.
func TestSilentHolderTimesOut(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 2, Vaults: []string{a.vault, b.vault}, Silent: []int{1}})
	hs := net.Holders
	va := net.Commit(t, owner, ownerMnemonic, a.vault, a.file)
	vb := net.Commit(t, owner, ownerMnemonic, b.vault, b.file)
	// B: with holder 0. A: only the silent holder attests; holder 0 was
	// assigned a copy it never got.
	hs[0].PutCopy(t, vb, vb.Slot(hs[0]), time.Time{})
	hs[0].Attest(t, vb.Assignments[vb.Slot(hs[0])].Custody)
	hs[1].Attest(t, va.Assignments[va.Slot(hs[1])].Custody)

	out := t.TempDir()
	// HolderTimeout bounds every holder's fetch, the honest one's too: 3 s
	// leaves it room under -race on a loaded machine (at 500 ms, its fetch
	// of B timed out as well, once, with the load average at 35 on 2 cores).
	rep, err := run(t, recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: net.Chain.RPCURL(), HolderTimeout: 3 * time.Second})
	var inc *recovery.IncompleteError
	if !errors.As(err, &inc) || !errors.Is(err, recovery.ErrIncomplete) || !slices.Equal(inc.Vaults(), []string{a.vault}) {
		t.Fatalf("err = %v, want an IncompleteError naming %s", err, a.vault)
	}
	if !strings.Contains(err.Error(), a.vault) || !errors.Is(inc.Missing[0].Err, recovery.ErrNoValidBlob) {
		t.Fatalf("error %q does not name the vault and why", err)
	}
	s, ok := skipOf(rep, a.vault, hs[1].Address())
	if !ok || !errors.Is(s.Err, recovery.ErrHolderTimeout) {
		t.Fatalf("silent holder skip: %v, %v", ok, s.Err)
	}
	if s, ok := skipOf(rep, a.vault, hs[0].Address()); !ok || !errors.Is(s.Err, p2p.ErrNotFound) {
		t.Fatalf("holder without the copy: %v, %v", ok, s.Err)
	}
	checkFile(t, out, b)
	onlyFiles(t, out, b)
}

// TestMissingVault: a holder that attested a copy but no longer has it
// refuses; the vault is reported missing, the other one written.
func TestMissingVault(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 1, Vaults: []string{a.vault, b.vault}})
	hd := net.Holders[0]
	va := net.Commit(t, owner, ownerMnemonic, a.vault, a.file)
	net.Place(t, va)
	net.Place(t, net.Commit(t, owner, ownerMnemonic, b.vault, b.file))
	if err := hd.Store.Delete(va.Assignments[0].Custody); err != nil {
		t.Fatal(err)
	}

	out := t.TempDir()
	rep, err := run(t, recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: net.Chain.RPCURL()})
	var inc *recovery.IncompleteError
	if !errors.As(err, &inc) || !slices.Equal(inc.Vaults(), []string{a.vault}) {
		t.Fatalf("err = %v, want an IncompleteError naming %s", err, a.vault)
	}
	if s, ok := skipOf(rep, a.vault, hd.Address()); !ok || !errors.Is(s.Err, p2p.ErrNotFound) {
		t.Fatalf("holder skip: %v, %v", ok, s.Err)
	}
	if v := vaultResult(t, rep, a.vault); v.Err == nil || v.File != "" {
		t.Fatalf("missing vault result %+v", v)
	}
	checkFile(t, out, b)
	onlyFiles(t, out, b)
}

// TestOtherMnemonicRecoversNothing: another node's mnemonic finds nothing on
// the chain and gets nothing over gossip; fetching the owner's attested
// blobs directly with its key is refused by every holder with no byte sent.
// Nothing is written.
func TestOtherMnemonicRecoversNothing(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	thief := mustIdentity(t, otherMnemonic)
	a := ecdsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 2, Vaults: []string{a.vault}})
	va := net.Commit(t, owner, ownerMnemonic, a.vault, a.file)
	net.Place(t, va)

	out := filepath.Join(t.TempDir(), "out")
	_, err := run(t, recovery.Options{Mnemonic: otherMnemonic, OutDir: out, RPC: net.Chain.RPCURL()})
	if !errors.Is(err, recovery.ErrNoBackups) || !strings.Contains(err.Error(), thief.Address(recoverytest.HRP)) {
		t.Fatalf("chain: err = %v, want ErrNoBackups naming %s", err, thief.Address(recoverytest.HRP))
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Fatalf("wrote %q", names)
	}

	_, err = run(t, recovery.Options{
		Mnemonic: otherMnemonic, OutDir: out, NoChain: true, Listen: loopback,
		Bootstrap: []string{net.Holders[0].Bootstrap(), net.Holders[1].Bootstrap()}, GossipTimeout: 3 * time.Second,
	})
	if !errors.Is(err, recovery.ErrNoBackups) {
		t.Fatalf("gossip: err = %v, want ErrNoBackups", err)
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Fatalf("wrote %q", names)
	}

	// The thief knows what the chain says and asks the holders directly.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cms, err := net.Client.CommitmentsByOwner(ctx, owner.Address(recoverytest.HRP))
	if err != nil || len(cms) != 1 || len(cms[0].Custodies) != 2 {
		t.Fatalf("commitments: %+v, %v", cms, err)
	}
	h, err := p2p.NewHost(p2p.HostConfig{Identity: thief})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, hd := range net.Holders {
		h.Peerstore().AddAddrs(hd.Host.ID(), hd.Host.Addrs(), time.Minute)
		got, err := p2p.Fetch(ctx, h, hd.Host.ID(), a.vault, va.ID)
		// A peer that is not active and owns nothing here is refused before
		// its request is read (NOT_FOUND); an active one is told NOT_OWNER.
		if !(errors.Is(err, p2p.ErrNotOwner) || errors.Is(err, p2p.ErrNotFound)) || got != nil {
			t.Fatalf("thief fetch from %s: %d blobs, err = %v, want ErrNotOwner or ErrNotFound", hd.Address(), len(got), err)
		}
		for _, proto := range []string{"fetch", "return"} {
			if n := counter(t, hd.Metrics, "ksb_p2p_blob_bytes_total", map[string]string{"protocol": proto}); n != 0 {
				t.Fatalf("holder %s sent %v blob bytes over %s", hd.Address(), n, proto)
			}
		}
	}
}

// TestRefuseOverwrite: an existing output file is refused and left as it
// was unless Force; the other vault is written either way.
func TestRefuseOverwrite(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 1, Vaults: []string{a.vault, b.vault}})
	net.Place(t, net.Commit(t, owner, ownerMnemonic, a.vault, a.file))
	net.Place(t, net.Commit(t, owner, ownerMnemonic, b.vault, b.file))

	out := t.TempDir()
	existing := filepath.Join(out, "localstate-"+a.vault+".json")
	if err := os.WriteFile(existing, []byte("an operator's file\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	opts := recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: net.Chain.RPCURL()}
	_, err := run(t, opts)
	var inc *recovery.IncompleteError
	if !errors.As(err, &inc) || !slices.Equal(inc.Vaults(), []string{a.vault}) || !errors.Is(inc.Missing[0].Err, recovery.ErrExists) {
		t.Fatalf("err = %v, want ErrExists for %s", err, a.vault)
	}
	if got, _ := os.ReadFile(existing); string(got) != "an operator's file\n" {
		t.Fatalf("existing file changed to %d bytes", len(got))
	}
	if fi, _ := os.Stat(existing); fi.Mode().Perm() != 0o640 {
		t.Fatalf("existing file mode changed to %v", fi.Mode().Perm())
	}
	checkFile(t, out, b)
	onlyFiles(t, out, a, b)

	opts.Force = true
	if _, err := run(t, opts); err != nil {
		t.Fatal(err)
	}
	checkFile(t, out, a)
	checkFile(t, out, b)
	onlyFiles(t, out, a, b)
}

// TestGossipByzantine: over gossip, a holder returns the owner's share of
// another vault under vault A with a later receive time, and another returns
// garbage for vault A even later; both are skipped and the honest copy is
// kept.
func TestGossipByzantine(t *testing.T) {
	owner := mustIdentity(t, ownerMnemonic)
	a, b := ecdsaShare(t), eddsaShare(t)
	blobA := recoverytest.Seal(t, a.file, ownerMnemonic)
	blobB := recoverytest.Seal(t, b.file, ownerMnemonic)
	garbage := bytes.Repeat([]byte("not an age file "), 100)
	later := time.Now().Add(time.Hour)
	e := func(n uint64, vault string, blob []byte, at time.Time) store.Entry {
		return store.Entry{Custody: custody.CustodyID{Commitment: n}, Owner: owner.PubKey(), Vault: vault, Copies: 1,
			Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: at}
	}
	wrap := func(i int, st p2p.Store) p2p.Store {
		switch i {
		case 1:
			return &lyingStore{Store: st, entries: []store.Entry{e(1, a.vault, blobB, later)}, blobs: map[custody.CustodyID][]byte{{Commitment: 1}: blobB}}
		case 2:
			return &lyingStore{Store: st, entries: []store.Entry{e(2, a.vault, garbage, later.Add(time.Hour))}, blobs: map[custody.CustodyID][]byte{{Commitment: 2}: garbage}}
		}
		return st
	}
	net := recoverytest.Start(t, recoverytest.Config{Owners: []*identity.Identity{owner}, Holders: 3, Vaults: []string{a.vault, b.vault}, WrapStore: wrap})
	net.Holders[0].Put(t, owner, a.vault, blobA, time.Time{})
	net.Holders[0].Put(t, owner, b.vault, blobB, time.Time{})

	out := t.TempDir()
	var progress bytes.Buffer
	var bootstrap []string
	for _, hd := range net.Holders {
		bootstrap = append(bootstrap, hd.Bootstrap())
	}
	rep, err := run(t, recovery.Options{
		Mnemonic: ownerMnemonic, OutDir: out, NoChain: true, Listen: loopback, Bootstrap: bootstrap,
		// The liars' copies must arrive before Run stops: every holder is a
		// bootstrap peer and answers within milliseconds, and the grace is
		// stretched for a loaded -race run.
		GossipQuiet: gossipQuiet, GossipGrace: 5 * time.Second, Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkFile(t, out, a)
	checkFile(t, out, b)
	onlyFiles(t, out, a, b)
	if v := vaultResult(t, rep, a.vault); v.Holder != net.Holders[0].Address() {
		t.Fatalf("vault A kept from %s", v.Holder)
	}
	var wv *recovery.WrongVaultError
	if s, ok := skipOf(rep, a.vault, net.Holders[1].Address()); !ok || !errors.As(s.Err, &wv) || wv.Got != b.vault {
		t.Errorf("wrong-vault holder: %v, %v\n%s", ok, s.Err, progress.String())
	}
	if s, ok := skipOf(rep, a.vault, net.Holders[2].Address()); !ok || !errors.Is(s.Err, envelope.ErrNotAgeFile) {
		t.Errorf("garbage holder: %v, %v\n%s", ok, s.Err, progress.String())
	}
}

// TestRefusals feeds Run options it cannot work with: each gets its error
// before anything is created.
func TestRefusals(t *testing.T) {
	pid := mustIdentity(t, otherMnemonic).PeerID()
	good := "/ip4/127.0.0.1/tcp/9/p2p/" + pid.String()
	bad, none := recovery.ErrBadOptions, recovery.ErrNoSource
	for _, c := range []struct {
		name string
		o    recovery.Options
		want []error
	}{
		{"no mnemonic", recovery.Options{RPC: "http://127.0.0.1:1"}, []error{bad}},
		{"invalid mnemonic", recovery.Options{Mnemonic: "abandon abandon abandon", RPC: "http://127.0.0.1:1"}, []error{bad, identity.ErrInvalidMnemonic}},
		{"no output directory", recovery.Options{Mnemonic: ownerMnemonic, RPC: "http://127.0.0.1:1"}, []error{bad}},
		{"no source", recovery.Options{Mnemonic: ownerMnemonic}, []error{none}},
		{"no chain, no bootstrap", recovery.Options{Mnemonic: ownerMnemonic, RPC: "http://127.0.0.1:1", NoChain: true}, []error{none}},
		{"bootstrap not a multiaddr", recovery.Options{Mnemonic: ownerMnemonic, Bootstrap: []string{"127.0.0.1:4001"}}, []error{bad}},
		{"bootstrap without /p2p/", recovery.Options{Mnemonic: ownerMnemonic, Bootstrap: []string{"/ip4/127.0.0.1/tcp/4001"}}, []error{bad}},
		{"bad listen address", recovery.Options{Mnemonic: ownerMnemonic, Bootstrap: []string{good}, Listen: []string{"tcp/0"}}, []error{bad}},
		{"negative timeout", recovery.Options{Mnemonic: ownerMnemonic, Bootstrap: []string{good}, HolderTimeout: -time.Second}, []error{bad}},
		{"bad RPC address", recovery.Options{Mnemonic: ownerMnemonic, RPC: "127.0.0.1:26657"}, []error{bad}},
		{"bad HRP", recovery.Options{Mnemonic: ownerMnemonic, Bootstrap: []string{good}, HRP: "Not A Prefix"}, []error{bad}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if c.name != "no output directory" {
				c.o.OutDir = out
			}
			rep, err := run(t, c.o)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Fatalf("err = %v, want %v", err, w)
				}
			}
			if rep != nil {
				t.Fatalf("report %+v for refused options", rep)
			}
			if dirNames(t, out) != nil {
				t.Fatal("output directory created")
			}
		})
	}
}

// TestChainUnreachable: a chain that does not answer, and no bootstrap peer
// to fall back on, is a clear error naming the RPC; nothing is written.
func TestChainUnreachable(t *testing.T) {
	rpc := "http://" + freeAddr(t)
	out := t.TempDir()
	_, err := run(t, recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: rpc})
	if !errors.Is(err, recovery.ErrChainUnreachable) || !strings.Contains(err.Error(), rpc) {
		t.Fatalf("err = %v, want ErrChainUnreachable naming %s", err, rpc)
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Fatalf("wrote %q", names)
	}
}

// TestNoPeerReachable: without the chain, bootstrap peers that cannot be
// dialled give ErrNoPeers.
func TestNoPeerReachable(t *testing.T) {
	pid := mustIdentity(t, otherMnemonic).PeerID()
	dead := "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(freeAddr(t), "127.0.0.1:") + "/p2p/" + pid.String()
	out := t.TempDir()
	_, err := run(t, recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: "http://" + freeAddr(t), Bootstrap: []string{dead}, Listen: loopback})
	if !errors.Is(err, recovery.ErrNoPeers) {
		t.Fatalf("err = %v, want ErrNoPeers", err)
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Fatalf("wrote %q", names)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	a, err := attest.FreeLocalAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestFileName(t *testing.T) {
	for _, v := range []string{
		"thorpub1addwnpepqgudlwpmp78qk5q3xhm4nhvys2y0h8grq5vqw654jpetg98x4w7ycf0rzzr",
		"03cc7cca4372b7e36d1fefee8fddd781af5dd8a8dfdbfab7c1f1b0ae2a1933d8bb",
	} {
		if name, err := recovery.FileName(v); err != nil || name != "localstate-"+v+".json" {
			t.Errorf("FileName(%q) = %q, %v", v, name, err)
		}
	}
	for _, v := range []string{"", "../../etc/passwd", "a/b", `a\b`, "a b", "vault\x00", strings.Repeat("a", 161), "é"} {
		if name, err := recovery.FileName(v); !errors.Is(err, recovery.ErrBadVaultName) || name != "" {
			t.Errorf("FileName(%q) = %q, %v; want ErrBadVaultName", v, name, err)
		}
	}
}
