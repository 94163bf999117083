package store_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ksb-project/ksb/store"
)

// BenchmarkPut60KB measures a durable Put of a copy the size of the tss-lib
// 20-party ECDSA fixture, each for a new custody so every Put writes and
// syncs.
func BenchmarkPut60KB(b *testing.B) {
	s := openTemp(b)
	blob := blobOf(1, 60<<10)
	e := entryFor(ownerKey(1), cid(1, 0), "vault", blob)
	b.SetBytes(int64(len(blob)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Custody = cid(uint64(i+1), 0)
		i++
		if _, err := s.Put(e, blob); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutQueued measures 8 writers each storing a 60 KB copy and the
// queue record of its attestation, as a holder's pushes do, two ways: the
// record in the copy's own transaction (PutWithMeta, as the holder does
// now), and the record written after the copy by its own PutMeta under one
// lock shared by all writers (as the node did before: a second sync per
// copy, taken one at a time).
func BenchmarkPutQueued(b *testing.B) {
	const writers = 8
	record := func(i int64) store.MetaWrite {
		return store.MetaWrite{Key: fmt.Sprintf("q/attest/%016x", i), Value: []byte(`{"commitment":1,"slot":0}`)}
	}
	run := func(b *testing.B, put func(s *store.Store, e store.Entry, blob []byte, w store.MetaWrite) error) {
		s := openTemp(b)
		blob := blobOf(1, 60<<10)
		var next atomic.Int64
		b.SetBytes(int64(len(blob)))
		b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1)
				e := entryFor(ownerKey(byte(1+i%writers)), cid(uint64(i), 0), "vault", blob)
				if err := put(s, e, blob, record(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "copies/s")
	}
	b.Run("record-in-copy-transaction", func(b *testing.B) {
		run(b, func(s *store.Store, e store.Entry, blob []byte, w store.MetaWrite) error {
			_, _, err := s.PutWithMeta(e, blob, w)
			return err
		})
	})
	b.Run("record-after-copy-under-one-lock", func(b *testing.B) {
		var mu sync.Mutex
		run(b, func(s *store.Store, e store.Entry, blob []byte, w store.MetaWrite) error {
			if _, err := s.Put(e, blob); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			return s.PutMeta(w.Key, w.Value)
		})
	})
}
