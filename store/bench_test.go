package store_test

import (
	"testing"
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
