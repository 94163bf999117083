package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// MetaWrite is one change made by [Store.WriteMeta]: Value stored under Key,
// or Key deleted when Delete is set.
type MetaWrite struct {
	Key    string
	Value  []byte
	Delete bool
}

// WriteMeta applies writes in order, durably (synced before it returns):
// the batched form of [Store.PutMeta] and [Store.DeleteMeta], with the same
// checks; if one write is refused, nothing is written. The writes share as
// few Badger transactions as Badger's transaction size limit allows — one
// sync for a batch of a thousand queue records instead of a thousand. Each
// transaction is atomic, the whole is not: after a crash a prefix of the
// writes is applied, which is enough for records that are idempotent
// (a queue keyed by its entries).
func (s *Store) WriteMeta(writes []MetaWrite) error {
	if err := checkMetaWrites(writes); err != nil {
		return err
	}
	if len(writes) == 0 {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	apply := func(txn *badger.Txn, w MetaWrite) error {
		if w.Delete {
			return txn.Delete(metaKey(w.Key))
		}
		return txn.Set(metaKey(w.Key), w.Value)
	}
	// Blind writes never conflict: the transactions read nothing.
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, w := range writes {
		err := apply(txn, w)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("store: writing meta: %w", err)
			}
			txn = s.db.NewTransaction(true)
			err = apply(txn, w)
		}
		if err != nil {
			return fmt.Errorf("store: writing meta %q: %w", w.Key, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store: writing meta: %w", err)
	}
	return nil
}

// checkMetaWrites checks each write's key and value size.
func checkMetaWrites(writes []MetaWrite) error {
	for _, w := range writes {
		if err := checkMetaKey(w.Key); err != nil {
			return err
		}
		if !w.Delete && len(w.Value) > MaxMetaSize {
			return fmt.Errorf("%w: meta value of %d bytes, limit %d", ErrTooLarge, len(w.Value), MaxMetaSize)
		}
	}
	return nil
}
