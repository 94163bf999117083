package recovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/recovery/recoverytest"
	"github.com/ksb-project/ksb/store"
)

// White-box: the order blobs reach the gossip collector is fixed here,
// which a network cannot do.

// TestGossipProgressNamesCreditedHolder is issue 9 item 11: when the same
// blob comes from a second holder with a later receive time, that holder is
// credited in the report, and the progress says so: the last holder the
// progress names for the vault is the one the summary names.
func TestGossipProgressNamesCreditedHolder(t *testing.T) {
	const mnemonic = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"
	share, err := os.ReadFile(filepath.Join("testdata", "go-tss-eddsa.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := keyshare.Parse(share)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := identity.New(mnemonic)
	if err != nil {
		t.Fatal(err)
	}
	first, second := recoverytest.NewIdentity(t), recoverytest.NewIdentity(t)
	var progress bytes.Buffer
	c, err := Options{
		Mnemonic: mnemonic, OutDir: t.TempDir(), Progress: &progress,
		Bootstrap: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + first.PeerID().String()},
	}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(c, context.Background(), identity.DefaultHRP, time.Now())
	blob := recoverytest.Seal(t, share, mnemonic)
	at := time.Now()
	fetched := func(id *identity.Identity, received time.Time) p2p.Fetched {
		return p2p.Fetched{Holder: id.PeerID(), Blob: blob, Entry: store.Entry{
			Owner: owner.PubKey(), Vault: info.VaultPubKey, Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: received,
		}}
	}
	col.onBlob(fetched(first, at.Add(-time.Minute)))
	col.onBlob(fetched(second, at))
	kept, _, _ := col.close()
	if len(kept) != 1 || kept[0].holder != second.Address(identity.DefaultHRP) {
		t.Fatalf("kept %+v, want the copy received last, from %s", kept, second.Address(identity.DefaultHRP))
	}
	lastNamed := ""
	for _, l := range strings.Split(progress.String(), "\n") {
		for _, h := range []*identity.Identity{first, second} {
			if a := h.Address(identity.DefaultHRP); strings.Contains(l, a) {
				lastNamed = a
			}
		}
	}
	if lastNamed != kept[0].holder {
		t.Fatalf("progress last names %s, the report %s:\n%s", lastNamed, kept[0].holder, progress.String())
	}
}

// TestGossipCopyOfAnotherVaultWhileOpening: a holder names vault A for the
// owner's share of vault B, and while that copy is being opened the honest
// copy of the same blob arrives under vault B. The lie is skipped and the
// honest copy kept from the same opening (seen under load in
// TestGossipByzantine: vault B was lost when the copy waiting for the
// verdict was judged and then dropped).
func TestGossipCopyOfAnotherVaultWhileOpening(t *testing.T) {
	const mnemonic = "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"
	share, err := os.ReadFile(filepath.Join("testdata", "go-tss-eddsa.json"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := keyshare.Parse(share)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := identity.New(mnemonic)
	if err != nil {
		t.Fatal(err)
	}
	liar, honest := recoverytest.NewIdentity(t), recoverytest.NewIdentity(t)
	c, err := Options{
		Mnemonic: mnemonic, OutDir: t.TempDir(),
		Bootstrap: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + liar.PeerID().String()},
	}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(c, context.Background(), identity.DefaultHRP, time.Now())
	blob := recoverytest.Seal(t, share, mnemonic)
	fetched := func(id *identity.Identity, vault string) p2p.Fetched {
		return p2p.Fetched{Holder: id.PeerID(), Blob: blob, Entry: store.Entry{
			Owner: owner.PubKey(), Vault: vault, Digest: sha256.Sum256(blob), Size: int64(len(blob)), Received: time.Now(),
		}}
	}
	// Hold every opening slot, so that the second copy arrives while the
	// first is being opened.
	for range cap(c.opens) {
		c.opens <- struct{}{}
	}
	col.onBlob(fetched(liar, "thorpub1addwnpepqfake0vault0a"))
	col.onBlob(fetched(honest, info.VaultPubKey))
	for range cap(c.opens) {
		<-c.opens
	}
	kept, skips, _ := col.close()
	if len(kept) != 1 || kept[0].vault != info.VaultPubKey || kept[0].holder != honest.Address(identity.DefaultHRP) {
		t.Fatalf("kept %+v, want vault %s from the honest holder", kept, info.VaultPubKey)
	}
	var wv *WrongVaultError
	if len(skips) != 1 || skips[0].Peer != liar.PeerID() || !errors.As(skips[0].Err, &wv) {
		t.Fatalf("skips %+v, want the liar's copy as another vault's", skips)
	}
}
