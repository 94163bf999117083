package p2p_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

// benchBlobSize is the size of the 20-party tss-lib ECDSA fixture.
const benchBlobSize = 60 << 10

// BenchmarkIngest measures a holder ingesting 60 KB blobs over
// /ksb/push/1.0.0 (header, blob, sha256, quota check, Badger write synced to
// disk, signed receipt), next to a raw libp2p stream copy of the same bytes
// between the same two hosts with the same round trip (one stream per blob,
// one byte back), and next to the push with an in-memory store (no disk, no
// fsync) to show what durability costs. One push at a time, as an owner
// pushes.
func BenchmarkIngest(b *testing.B) {
	o := newOwner(b)
	data := blob(benchBlobSize, 42)
	quota := p2p.WithQuota(1<<30, 1<<50)

	b.Run("raw-stream", func(b *testing.B) {
		hd := newHolder(b, newMembers(o.id))
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
		connect(b, o.h, hd.h)
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
		connect(b, o.h, hd.h)
		b.SetBytes(benchBlobSize)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			// A new vault each time, so that every push is a real write.
			if _, err := p2p.Push(context.Background(), o.h, hd.h.ID(), o.id, fmt.Sprintf("vault-%d", i), data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
	}
	b.Run("push-badger-fsync", func(b *testing.B) {
		push(b, newHolder(b, newMembers(o.id), quota))
	})
	b.Run("push-badger-inmemory", func(b *testing.B) {
		id := newIdentity(b)
		st, err := store.Open(store.DefaultOptions("").WithInMemory(true).WithLogger(quietLogger()))
		if err != nil {
			b.Fatal(err)
		}
		h := newHost(b, id)
		svc, err := p2p.NewService(h, id, st, newMembers(o.id), p2p.WithLogger(quietLogger()), quota)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { svc.Close(); st.Close() })
		push(b, &holder{id: id, h: h, st: st, svc: svc})
	})
}
