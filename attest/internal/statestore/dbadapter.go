package statestore

import (
	corestore "cosmossdk.io/core/store"
	dbm "github.com/cometbft/cometbft-db"
	idb "github.com/cosmos/iavl/db"
)

// dbAdapter lets IAVL v1.3, whose storage interface (iavl/db.DB) is built on
// cosmossdk.io/core/store types, run on a cometbft-db database. Iterators
// have the same method set and pass through; batches gain GetByteSize.
type dbAdapter struct{ dbm.DB }

var _ idb.DB = dbAdapter{}

func (d dbAdapter) Iterator(start, end []byte) (corestore.Iterator, error) {
	return d.DB.Iterator(start, end)
}

func (d dbAdapter) ReverseIterator(start, end []byte) (corestore.Iterator, error) {
	return d.DB.ReverseIterator(start, end)
}

func (d dbAdapter) NewBatch() corestore.Batch { return &batch{b: d.DB.NewBatch()} }

// NewBatchWithSize ignores the size: IAVL passes its flush threshold, which
// is 1 GiB here (see flushThreshold), and Pebble would allocate it.
func (d dbAdapter) NewBatchWithSize(int) corestore.Batch { return d.NewBatch() }

// batch counts the bytes it was given: IAVL's BatchWithFlusher asks for
// GetByteSize to decide when to flush, which cometbft-db's batch lacks.
type batch struct {
	b    dbm.Batch
	size int
}

func (b *batch) Set(k, v []byte) error {
	b.size += len(k) + len(v)
	return b.b.Set(k, v)
}

func (b *batch) Delete(k []byte) error {
	b.size += len(k)
	return b.b.Delete(k)
}

func (b *batch) Write() error              { return b.b.Write() }
func (b *batch) WriteSync() error          { return b.b.WriteSync() }
func (b *batch) Close() error              { return b.b.Close() }
func (b *batch) GetByteSize() (int, error) { return b.size, nil }
