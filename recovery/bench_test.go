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

// BenchmarkRecoverWithoutChain measures issue 13 item 2: recovering two
// vaults (the 60 KB tss-lib ECDSA share and the go-tss EdDSA one, sealed at
// the default work factor, 18) from three in-process holders when the chain
// RPC refuses connections and bootstrap peers are given, as `ksb recover
// --bootstrap` does. Each iteration runs, one after the other so that they
// see the same load:
//
//   - scrypt: one scrypt with age's parameters (N = 2^18, r = 8, p = 1), the
//     floor (the two shares open in parallel, one scrypt each);
//   - before: the gossip path as it was (recovery.LegacyGossip): a
//     gossipsub heartbeat's wait before publishing, one blob opened at a
//     time, and the stop on 10 s without a new blob;
//   - after: the default, stopping DefaultGossipGrace after the last
//     holder's offer once every vault heard of has a verified copy.
//
// Each run is a fresh owner (a new mnemonic; sealing is outside the timing):
// a holder sends one owner's blobs at most every 10 s. It reports seconds
// per run of each, and after − scrypt. Run it with
//
//	go test -run '^$' -bench RecoverWithoutChain -benchtime 5x ./recovery/
//
// The goal is after ≤ scrypt + 3 s.
func BenchmarkRecoverWithoutChain(b *testing.B) {
	a, e := loadShare(b, "tss-lib-ecdsa.json"), loadShare(b, "go-tss-eddsa.json")
	// The genesis vaults need a member; the owners recovering are others.
	net := recoverytest.Start(b, recoverytest.Config{Owners: []*identity.Identity{recoverytest.NewIdentity(b)}, Holders: 3, Vaults: []string{a.vault, e.vault}})
	rpc := net.Chain.RPCURL()
	if err := net.Chain.Stop(); err != nil {
		b.Fatal(err)
	}
	var bootstrap []string
	for _, hd := range net.Holders {
		bootstrap = append(bootstrap, hd.Bootstrap())
	}
	// owner seals both shares for a fresh mnemonic and gives them to every
	// holder.
	owner := func() string {
		for {
			m, err := identity.Generate()
			if err != nil {
				b.Fatal(err)
			}
			id, err := identity.New(m)
			if err != nil {
				b.Fatal(err)
			}
			ba, err1 := envelope.Seal(a.file, m, &envelope.SealOptions{WorkFactor: envelope.DefaultWorkFactor})
			be, err2 := envelope.Seal(e.file, m, &envelope.SealOptions{WorkFactor: envelope.DefaultWorkFactor})
			if err1 != nil || err2 != nil {
				continue // a mnemonic the envelope's entropy check refuses
			}
			for _, hd := range net.Holders {
				hd.Put(b, id, a.vault, ba, time.Time{})
				hd.Put(b, id, e.vault, be, time.Time{})
			}
			return m
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	recover := func(m string, legacy bool) time.Duration {
		o := recovery.Options{Mnemonic: m, OutDir: b.TempDir(), RPC: rpc, Bootstrap: bootstrap, Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
		if legacy {
			o = recovery.LegacyGossip(o)
		}
		start := time.Now()
		rep, err := recovery.Run(ctx, o)
		d := time.Since(start)
		if err != nil || len(rep.Recovered()) != 2 || rep.Path != recovery.PathGossip {
			b.Fatalf("recovery (legacy %v): %v", legacy, err)
		}
		for _, s := range []share{a, e} {
			got, err := os.ReadFile(filepath.Join(o.OutDir, "localstate-"+s.vault+".json"))
			if err != nil || !bytes.Equal(got, s.file) {
				b.Fatalf("vault %s differs (%v)", s.vault, err)
			}
		}
		return d
	}
	salt := append([]byte("age-encryption.org/v1/scrypt"), make([]byte, 16)...)
	var floor, before, after time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m1, m2 := owner(), owner()
		b.StartTimer()
		t0 := time.Now()
		if _, err := scrypt.Key([]byte(m1), salt, 1<<envelope.DefaultWorkFactor, 8, 1, 32); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(t0)
		before += recover(m1, true)
		after += recover(m2, false)
	}
	n := float64(b.N)
	b.ReportMetric(floor.Seconds()/n, "scrypt-s")
	b.ReportMetric(before.Seconds()/n, "before-s")
	b.ReportMetric(after.Seconds()/n, "after-s")
	b.ReportMetric((after-floor).Seconds()/n, "after-minus-scrypt-s")
	b.ReportMetric(0, "ns/op")
}
