package p2p_test

import (
	"context"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// benchBlobSize is the size of the 20-party tss-lib ECDSA fixture.
const benchBlobSize = 60 << 10

// benchQuota lets the benchmark owner keep every copy it pushes: each push
// is a new custody.
var benchQuota = p2p.WithQuota(1<<20, 1<<40)

// BenchmarkIngest measures a holder ingesting 60 KB copies over
// /ksb/push/2.0.0 (header, custody check against the chain view, copy,
// Merkle root check against the commitment, quota check, Badger write
// synced to disk, signed receipt), next to a raw libp2p stream copy of the same bytes
// between the same two hosts with the same round trip (one stream per blob,
// one byte back), and next to the push with an in-memory store (no disk, no
// fsync) to show what durability costs. One push at a time, as an owner
// pushes.
func BenchmarkIngest(b *testing.B) {
	for _, tr := range []string{"/tcp/", "/quic-v1"} {
		b.Run(strings.Trim(tr, "/"), func(b *testing.B) { benchIngest(b, tr) })
	}
}

func benchIngest(b *testing.B, transport string) {
	o := newOwner(b)
	data := blob(benchBlobSize, 42)

	m := newMembers(o.id)
	b.Run("raw-stream", func(b *testing.B) {
		hd := newHolder(b, m)
		const proto = protocol.ID("/ksb/bench-raw/1.0.0")
		hd.h.SetStreamHandler(proto, func(s network.Stream) {
			buf := make([]byte, benchBlobSize)
			if _, err := io.ReadFull(s, buf); err != nil {
				s.Reset()
				return
			}
			s.Write([]byte{1})
			s.Close()
		})
		connectOver(b, o.h, hd.h, transport)
		b.SetBytes(benchBlobSize)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s, err := o.h.NewStream(context.Background(), hd.h.ID(), proto)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Write(data); err != nil {
				b.Fatal(err)
			}
			s.CloseWrite()
			var ack [1]byte
			if _, err := io.ReadFull(s, ack[:]); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "copies/s")
	})

	push := func(b *testing.B, hd *holder) {
		connectOver(b, o.h, hd.h, transport)
		b.SetBytes(benchBlobSize)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// A new copy of a new commitment every time: every push is a
			// real write.
			b.StopTimer()
			c := m.place(b, o.id, hd, vaultA, benchBlobSize, byte(i))
			b.StartTimer()
			if _, err := p2p.Push(context.Background(), o.h, hd.h.ID(), o.id, c); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
	}
	b.Run("push-badger-fsync", func(b *testing.B) {
		push(b, newHolder(b, m, benchQuota))
	})
	b.Run("push-badger-inmemory", func(b *testing.B) {
		id := newIdentity(b)
		st, err := store.Open(store.DefaultOptions("").WithInMemory(true).WithLogger(quietLogger()))
		if err != nil {
			b.Fatal(err)
		}
		h := newHost(b, id)
		svc, err := p2p.NewService(h, id, st, m, p2p.WithLogger(quietLogger()), benchQuota)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { svc.Close(); st.Close() })
		push(b, &holder{id: id, h: h, st: st, svc: svc})
	})
}

// BenchmarkIngestParallel is BenchmarkIngest with benchOwners owners pushing
// to one holder at once, as during a churn, next to the same number of
// concurrent raw stream copies.
func BenchmarkIngestParallel(b *testing.B) {
	for _, tr := range []string{"/tcp/", "/quic-v1"} {
		b.Run(strings.Trim(tr, "/"), func(b *testing.B) { benchIngestParallel(b, tr) })
	}
}

func benchIngestParallel(b *testing.B, transport string) {
	const benchOwners = 8
	owners := make([]*owner, benchOwners)
	m := newMembers()
	for i := range owners {
		owners[i] = newOwner(b)
		m.add(owners[i].id)
	}
	run := func(b *testing.B, hd *holder, one func(o *owner, i int) error) {
		for _, o := range owners {
			connectOver(b, o.h, hd.h, transport)
		}
		var next atomic.Int64
		b.SetBytes(benchBlobSize)
		b.SetParallelism(benchOwners / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			o := owners[int(next.Add(1)-1)%benchOwners]
			for i := 0; pb.Next(); i++ {
				if err := one(o, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blobs/s")
	}
	b.Run("raw-stream", func(b *testing.B) {
		hd := newHolder(b, m)
		const proto = protocol.ID("/ksb/bench-raw/1.0.0")
		hd.h.SetStreamHandler(proto, func(s network.Stream) {
			buf := make([]byte, benchBlobSize)
			if _, err := io.ReadFull(s, buf); err != nil {
				s.Reset()
				return
			}
			s.Write([]byte{1})
			s.Close()
		})
		run(b, hd, func(o *owner, i int) error {
			s, err := o.h.NewStream(context.Background(), hd.h.ID(), proto)
			if err != nil {
				return err
			}
			defer s.Close()
			if _, err := s.Write(blob(benchBlobSize, byte(i))); err != nil {
				return err
			}
			s.CloseWrite()
			var ack [1]byte
			_, err = io.ReadFull(s, ack[:])
			return err
		})
	})
	b.Run("push-badger-fsync", func(b *testing.B) {
		hd := newHolder(b, m, benchQuota)
		run(b, hd, func(o *owner, i int) error {
			// Committing (the fake chain's NewCommitment) is in the timed
			// loop here: a tenth of a millisecond next to a push's fsync.
			c := m.place(b, o.id, hd, vaultA, benchBlobSize, byte(i))
			_, err := p2p.Push(context.Background(), o.h, hd.h.ID(), o.id, c)
			return err
		})
	})
}
