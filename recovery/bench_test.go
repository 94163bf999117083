package recovery_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/scrypt"

	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/recovery"
	"github.com/ksb-project/ksb/recovery/recoverytest"
)

// BenchmarkRecover measures, at the default scrypt work factor (18), the
// wall time of recovering one 60 KB tss-lib ECDSA share from three
// in-process holders through an in-process chain (chain-3-holders: chain
// queries, a fresh libp2p host, dials, fetches, one envelope.Open, parse,
// write), next to the floor: one scrypt with age's parameters (N = 2^18,
// r = 8, p = 1), and one envelope.Open of the blob (scrypt, then
// ChaCha20-Poly1305 and xz). Run it with
//
//	go test -run '^$' -bench Recover -benchtime 5x ./recovery/
//
// The goal is chain-3-holders ≤ scrypt-floor + 1 s.
func BenchmarkRecover(b *testing.B) {
	s := loadShare(b, "tss-lib-ecdsa.json")
	blob := recoverytest.SealAt(b, s.file, ownerMnemonic, envelope.DefaultWorkFactor)

	b.Run("scrypt-floor", func(b *testing.B) {
		salt := append([]byte("age-encryption.org/v1/scrypt"), make([]byte, 16)...)
		for b.Loop() {
			if _, err := scrypt.Key([]byte(ownerMnemonic), salt, 1<<envelope.DefaultWorkFactor, 8, 1, 32); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			pt, err := envelope.Open(blob, ownerMnemonic, nil)
			if err != nil || !bytes.Equal(pt, s.file) {
				b.Fatalf("open: %v", err)
			}
		}
	})

	b.Run("chain-3-holders", func(b *testing.B) {
		owner, err := identity.New(ownerMnemonic)
		if err != nil {
			b.Fatal(err)
		}
		net := recoverytest.Start(b, recoverytest.Config{
			Owners: []*identity.Identity{owner}, Holders: 3, Vaults: []string{s.vault},
			// Every iteration fetches from each holder; lift the per-peer
			// fetch rate limit so that -benchtime can go above its burst.
			ServiceOptions: []p2p.Option{p2p.WithFetchRate(1<<20, time.Millisecond)},
		})
		copies, err := envelope.SealCopies(s.file, ownerMnemonic, 3, nil)
		if err != nil {
			b.Fatal(err)
		}
		net.Place(b, net.CommitCopies(b, owner, s.vault, copies))
		out := b.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		for b.Loop() {
			rep, err := recovery.Run(ctx, recovery.Options{Mnemonic: ownerMnemonic, OutDir: out, RPC: net.Chain.RPCURL(), Force: true})
			if err != nil || len(rep.Recovered()) != 1 {
				b.Fatalf("recovery: %v", err)
			}
		}
		got, err := os.ReadFile(filepath.Join(out, "localstate-"+s.vault+".json"))
		if err != nil || !bytes.Equal(got, s.file) {
			b.Fatalf("recovered file differs (%v)", err)
		}
	})
}
