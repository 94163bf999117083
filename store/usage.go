package store

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/ksb-project/ksb/custody"
)

// Accounting. A holder checks an owner's quota on every push. Listing the
// owner's headers for it cost a read and a public-key check per copy the
// owner already keeps, and any Badger read waits until every transaction
// committed before it is applied — behind the sync of the group being
// written. So the store keeps, in memory, which owner each copy is held for
// and its size, and every owner's totals: computed from the headers by
// Open, and changed by each write after it commits, in commit order
// (Store.orderMu); reading them waits for no sync (Store.acctMu).

// usage is an owner's copies and their bytes.
type usage struct {
	blobs int
	bytes int64
}

// heldCopy is what the accounts keep of one stored copy.
type heldCopy struct {
	owner string
	size  int64
}

// accounts is the in-memory accounting; its methods are called with the
// Store's acctMu held (or before the Store is shared).
type accounts struct {
	held  map[custody.CustodyID]heldCopy
	usage map[string]usage
}

// set records that custody id now holds a copy of owner of size bytes
// (owner "": nothing).
func (a *accounts) set(id custody.CustodyID, owner string, size int64) {
	if old, ok := a.held[id]; ok {
		u := a.usage[old.owner]
		u.blobs--
		u.bytes -= old.size
		if u.blobs <= 0 {
			delete(a.usage, old.owner)
		} else {
			a.usage[old.owner] = u
		}
		delete(a.held, id)
	}
	if owner == "" {
		return
	}
	a.held[id] = heldCopy{owner: owner, size: size}
	u := a.usage[owner]
	a.usage[owner] = usage{u.blobs + 1, u.bytes + size}
}

// loadAccounts computes the accounts from the headers. A header that does
// not decode counts for nobody (reading its copy reports ErrCorrupt).
func (s *Store) loadAccounts() error {
	a := accounts{held: map[custody.CustodyID]heldCopy{}, usage: map[string]usage{}}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(headerPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := parseCustodyKey(it.Item().Key(), headerPrefix)
			if err != nil {
				continue
			}
			_ = it.Item().Value(func(v []byte) error {
				if e, err := decodeHeader(id, v); err == nil {
					a.set(id, string(e.Owner), e.Size)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: reading headers: %w", err)
	}
	s.acct = a
	return nil
}

// Holds reports whether the copy of custody id is stored for owner: the
// accounts' answer, which reflects every Put and Delete that has returned,
// without reading the database.
func (s *Store) Holds(owner []byte, id custody.CustodyID) bool {
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	c, ok := s.acct.held[id]
	return ok && c.owner == string(owner)
}
