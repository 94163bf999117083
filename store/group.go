package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Group commit. A durable write costs one sync of Badger's write-ahead log
// (SyncWrites), and Badger syncs once per committed transaction even when it
// writes several concurrent transactions together. So Puts do not each
// commit a transaction: they hand their copy to one committer goroutine,
// which writes every copy waiting at that moment in one transaction — one
// sync for the group — and only then returns to each Put. While a group is
// being synced the next one gathers, so a lone Put waits for nothing, and
// Puts arriving together (pushes of several owners during a churn) share a
// sync. A Put still returns only after its copy is durable. PutMeta and
// DeleteMeta join the same groups (a holder queues the attestation of each
// copy it accepts in a record).
const (
	// maxGroupPuts caps the copies of one group: enough for every push a
	// holder serves at once (activePushStreams in p2p is 64), so that a
	// churn's pushes share a sync.
	maxGroupPuts = 64

	// maxGroupBytes stops gathering once a group holds this many blob
	// bytes: a group then holds at most 1 MiB plus one blob under
	// MaxBlobSize, inside Badger's transaction limit (15 % of
	// memTableSize, 2.4 MiB). Should a group still not fit, its copies are
	// written one transaction each.
	maxGroupBytes = 1 << 20
)

// Test hooks, set before Open: testHookGather runs when the committer has
// taken a group's first Put, before it gathers the others; testHookGroup
// after each group, with its size.
var testHookGather func()
var testHookGroup func(n int)

// putReq is one Put waiting for its group to be durable.
type putReq struct {
	e    Entry
	blob []byte
	hdr  []byte
	// meta, if set, makes this a PutMeta or DeleteMeta instead: a blind
	// write, which rides in the same group as the copies.
	meta *MetaWrite
	// with are a copy's records (PutWithMeta): blind writes in the same
	// transaction as the copy.
	with []MetaWrite

	added     bool
	err       error
	committed bool          // in a transaction that committed
	done      chan struct{} // closed when added and err are final
}

// startCommitter starts the committer goroutine; stopCommitter ends it.
func (s *Store) startCommitter() {
	s.puts = make(chan *putReq, maxGroupPuts)
	s.quit = make(chan struct{})
	s.committerDone = make(chan struct{})
	go s.runCommitter()
}

// stopCommitter ends the committer once no call is in progress (Close has
// waited for them), so no Put is left waiting.
func (s *Store) stopCommitter() {
	close(s.quit)
	<-s.committerDone
}

func (s *Store) runCommitter() {
	defer close(s.committerDone)
	group := make([]*putReq, 0, maxGroupPuts)
	for {
		var r *putReq
		select {
		case r = <-s.puts:
		case <-s.quit:
			return
		}
		if testHookGather != nil {
			testHookGather()
		}
		group = append(group[:0], r)
		size := r.size()
	gather:
		for len(group) < maxGroupPuts && size < maxGroupBytes {
			select {
			case r = <-s.puts:
				group = append(group, r)
				size += r.size()
			default:
				break gather
			}
		}
		s.orderMu.Lock()
		s.commitGroup(group)
		s.acctMu.Lock()
		for _, r := range group {
			if r.err == nil && r.added && r.meta == nil {
				s.acct.set(r.e.Custody, string(r.e.Owner), r.e.Size)
			}
		}
		s.acctMu.Unlock()
		s.orderMu.Unlock()
		if testHookGroup != nil {
			testHookGroup(len(group))
		}
		for _, r := range group {
			close(r.done)
		}
		clear(group)
	}
}

// size is what the request adds to its group's transaction.
func (r *putReq) size() int {
	if r.meta != nil {
		return len(r.meta.Key) + len(r.meta.Value)
	}
	n := len(r.blob) + len(r.hdr)
	for _, w := range r.with {
		n += len(w.Key) + len(w.Value)
	}
	return n
}

// writeMetaGrouped is PutMeta's and DeleteMeta's write, in the committer's
// next group: durable when it returns.
func (s *Store) writeMetaGrouped(w MetaWrite) error {
	r := &putReq{meta: &w, done: make(chan struct{})}
	s.puts <- r
	<-r.done
	return r.err
}

// writeGrouped is Put's write: it waits until e and blob (and the records
// with) are durable in the committer's next group.
func (s *Store) writeGrouped(e Entry, blob []byte, with []MetaWrite) (bool, error) {
	r := &putReq{e: e, blob: blob, hdr: encodeHeader(e), with: with, done: make(chan struct{})}
	s.puts <- r
	<-r.done
	return r.added, r.err
}

// commitGroup writes group in one transaction and sets each request's
// result. If the group as a whole fails, each request is written alone, so
// that one copy's error is not another's.
func (s *Store) commitGroup(group []*putReq) {
	err := s.updateGroup(group)
	if err == nil {
		return
	}
	if len(group) == 1 {
		group[0].err = err
		return
	}
	for _, r := range group {
		if r.committed {
			continue
		}
		if err := s.updateGroup([]*putReq{r}); err != nil {
			r.err = err
		}
	}
}

// updateGroup commits the requests of group not yet committed, retrying
// the whole transaction when Badger reports a conflict. Deletes take turns
// with the groups (orderMu) and other writes are blind, so none is
// expected; the retry is there should a reading writer be added.
func (s *Store) updateGroup(group []*putReq) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = s.tryGroup(group)
		if errors.Is(err, badger.ErrConflict) && attempt < maxTxnRetries {
			continue
		}
		return err
	}
}

func (s *Store) tryGroup(group []*putReq) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	n := 0
	for _, r := range group {
		if r.committed {
			continue
		}
		// On any error, ErrTxnTooBig included, the transaction is
		// dropped whole: a copy half applied (header without blob) must
		// never commit. commitGroup then writes the copies one at a time.
		if r.meta != nil {
			// Blind writes: they never conflict, and two writes to the
			// same key in a group are applied in order.
			if err := applyMeta(txn, *r.meta); err != nil {
				return err
			}
			r.added = true
			n++
			continue
		}
		added, err := putTxn(txn, r.e, r.hdr, r.blob)
		if err != nil {
			return fmt.Errorf("store: putting copy %s: %w", idString(r.e.Custody), err)
		}
		for _, w := range r.with {
			if err := applyMeta(txn, w); err != nil {
				return err
			}
		}
		r.added = added
		n++
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store: committing %d copies: %w", n, err)
	}
	for _, r := range group {
		r.committed = true
	}
	return nil
}

// putTxn writes the copy of e in txn, unless the same copy is stored intact
// already (added false, nothing written). A transaction sees its own
// writes, so two Puts of one custody in a group are applied in order.
func putTxn(txn *badger.Txn, e Entry, hdr, blob []byte) (added bool, err error) {
	old, err := getEntry(txn, e.Custody)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil && !errors.Is(err, ErrCorrupt):
		return false, err
	case err == nil && old.Digest == e.Digest && blobIntact(txn, e):
		return false, nil
	case err == nil && !bytes.Equal(old.Owner, e.Owner):
		// The index of the old owner goes with the old copy.
		if err := txn.Delete(ownerKey(old.Owner, e.Custody)); err != nil {
			return false, err
		}
	}
	if err := txn.Set(headerKey(e.Custody), hdr); err != nil {
		return false, err
	}
	if err := txn.Set(blobKey(e.Custody), blob); err != nil {
		return false, err
	}
	return true, txn.Set(ownerKey(e.Owner, e.Custody), nil)
}

// applyMeta applies one blind record write in txn.
func applyMeta(txn *badger.Txn, w MetaWrite) error {
	var err error
	if w.Delete {
		err = txn.Delete(metaKey(w.Key))
	} else {
		err = txn.Set(metaKey(w.Key), w.Value)
	}
	if err != nil {
		return fmt.Errorf("store: writing meta %q: %w", w.Key, err)
	}
	return nil
}
