package store_test

import (
	"fmt"
	"testing"
)

// BenchmarkPut60KB measures a durable Put of a blob the size of the tss-lib
// 20-party ECDSA fixture, each to a new vault so every Put writes and syncs.
func BenchmarkPut60KB(b *testing.B) {
	s := openTemp(b)
	blob := blobOf(1, 60<<10)
	e := entryFor(ownerKey(1), "", blob)
	b.SetBytes(int64(len(blob)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Vault = fmt.Sprintf("vault%d", i)
		i++
		if _, err := s.Put(e, blob); err != nil {
			b.Fatal(err)
		}
	}
}
