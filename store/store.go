package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/internal/badgeropen"
	"github.com/ksb-project/ksb/internal/field"
)

const (
	// MaxBlobSize caps one stored blob: 1 MiB - 1, the largest value Badger
	// keeps inline in its LSM tree (values of 1 MiB and more
	// go to its value log). Inline blobs have their
	// space reclaimed by compaction when replaced or deleted, whereas larger
	// values would go to Badger's value log, which only a separate garbage
	// collector shrinks, so a peer replacing big blobs could grow the disk past
	// its quota. The cap is far above real blobs: a sealed keyshare is the
	// xz-compressed share file in an age envelope, and the largest realistic
	// share, a 40-member go-tss ECDSA vault, is about 165 KiB of JSON (the
	// 20-party tss-lib fixture is 60 KiB, ~3 KiB per party, plus a third for
	// go-tss's base64) and seals to well under 100 KiB.
	MaxBlobSize = inlineLimit - 1

	// MaxVaultLen caps a vault public key string: the attestation chain's
	// limit (internal/field), so that every blob the store keeps can be
	// attested. A bech32 "thorpub1…" key is about 80 characters and a hex
	// secp256k1 key 66; 160 leaves room for other forms without letting a
	// peer make keys arbitrarily long.
	MaxVaultLen = field.MaxVaultLen

	// MaxMetaKeyLen caps a meta key. Daemon records are keyed by a short
	// namespace and a few hex identifiers; 512 bytes is generous for that and
	// far below Badger's 65000-byte key limit.
	MaxMetaKeyLen = 512

	// MaxMetaSize caps a meta value. It equals MaxBlobSize so that anything the
	// store accepts as a blob (e.g. an owner's own sealed share awaiting
	// re-push) can also be kept as a record, and it stays inline for the same
	// reason.
	MaxMetaSize = MaxBlobSize

	// ownerLen is the length of a compressed secp256k1 public key.
	ownerLen = 33

	// headerVersion is the first byte of every entry header; a reader refuses any
	// other so that a future layout change cannot be misread. Version 2:
	// copies held per custody.
	headerVersion = 2

	// headerFixedLen is version + owner + digest + size + received + copy
	// index + copies + path length; the path hashes and the vault follow.
	headerFixedLen = 1 + ownerLen + sha256.Size + 8 + 8 + 3

	// pathHashSize is the size of a commit path hash (SHA-256).
	pathHashSize = custody.HashSize

	// maxCommitPath caps a commit path: a commitment has at most
	// custody.MaxCopies = 2^6 copies, so a copy root is at most 6 levels
	// below the commitment root.
	maxCommitPath = 6

	// maxSlot is the largest slot of a custody: the chain packs a slot into
	// 8 bits of a custody id (attest.MaxSlots = 256).
	maxSlot = 255

	// maxTxnRetries bounds how often a write is retried after Badger reports a
	// conflict with a concurrent write to the same key. A conflict means the
	// other write committed, so a retry sees it; needing more than a handful of
	// rounds would mean a writer storm on one (owner, vault), and the caller
	// should see an error rather than spin.
	maxTxnRetries = 8
)

// Badger tuning. The defaults target large servers; a holder keeps at most a
// few thousand blobs of ~100 KiB next to a blockchain node, on a small machine.
const (
	// inlineLimit is Badger's ValueThreshold, set explicitly to its maximum:
	// values shorter than this stay in the LSM tree. In-memory databases refuse
	// values longer than it.
	inlineLimit = 1 << 20

	// memTableSize is 16 MiB instead of 64: less memory per memtable, while
	// Badger's per-transaction limit (15% of it, 2.4 MiB) stays above
	// inlineLimit plus a header, so every Put fits in one transaction.
	memTableSize = 16 << 20

	// numMemtables is 2 instead of 5: writes are few and small.
	numMemtables = 2

	// numCompactors is the smallest non-zero count Badger accepts.
	numCompactors = 2

	// valueLogFileSize is Badger's smallest value log file, 1 MiB instead
	// of 1 GiB. Every value stays inline (inlineLimit), so the value log
	// stays empty, but with SyncWrites Badger syncs (msyncs) its mapping
	// on every commit all the same: over a 2 GiB mapping that took half
	// as long as the sync of the write-ahead log itself (0.45 against
	// 0.9 ms, strace -T of BenchmarkPut60KB), over 2 MiB next to nothing.
	valueLogFileSize = 1 << 20
)

// Entry describes one stored copy: the custody it is held for, whose copy
// it is, and how the holder proves it (copy index, r and commit path).
type Entry struct {
	// Custody is the chain's custody (commitment id, slot) the copy is
	// held for: the key of the entry.
	Custody custody.CustodyID
	// Owner is the 33-byte compressed secp256k1 public key of the node
	// whose share this is (the commitment's owner).
	Owner []byte
	// Vault is the vault public key string (as keyshare.Info.VaultPubKey
	// and `ksb inspect` print it).
	Vault string
	// CopyIndex is which of the commitment's Copies copies this is, and
	// CommitPath the path from its copy root to the commitment root
	// (custody.CommitPath): with the blob, all a holder needs to prove
	// possession (custody.ProveHeld).
	CopyIndex  int
	Copies     int
	CommitPath [][]byte
	// Digest is the sha256 of the blob, Size its length in bytes.
	Digest [32]byte
	Size   int64
	// Received is when this node stored it.
	Received time.Time
}

// Store is a Badger-backed copy store. Its methods are safe for concurrent
// use.
type Store struct {
	db *badger.DB

	mu     sync.Mutex     // guards closed and the Add side of active
	closed bool           // set once by Close
	active sync.WaitGroup // calls in progress; Close waits for them

	// The group committer (group.go).
	puts          chan *putReq
	quit          chan struct{}
	committerDone chan struct{}

	// orderMu is held from a write's commit to its accounting, so that
	// the accounts change in commit order; acctMu guards acct itself, and
	// only for the moment of a change or a read, so that a quota check
	// never waits for a sync (usage.go).
	orderMu sync.Mutex
	acctMu  sync.Mutex
	acct    accounts
}

// Open opens (creating if needed) the store described by opts. Blobs of the
// layout before custodies (keys e/ and d/, held per owner and vault) are
// deleted: no custody chain can count them, and a holder must not keep
// what it cannot prove. Opts.Logger hears how many.
func Open(opts Options) (*Store, error) {
	bo := badger.DefaultOptions(opts.Dir)
	switch {
	case opts.InMemory:
		bo = badger.DefaultOptions("").WithInMemory(true)
	case opts.Dir == "":
		return nil, errors.New("store: no directory given")
	}
	bo = bo.WithSyncWrites(true).
		WithMemTableSize(memTableSize).
		WithValueThreshold(inlineLimit).
		WithNumMemtables(numMemtables).
		WithNumCompactors(numCompactors).
		WithValueLogFileSize(valueLogFileSize).
		WithCompression(options.None). // blobs are ciphertext: incompressible
		WithBlockCacheSize(0).         // only needed for compressed or encrypted tables
		WithMetricsEnabled(false).     // global expvars; we export our own via Stats
		WithLogger(nil)
	if opts.Logger != nil {
		bo = bo.WithLogger(slogAdapter{opts.Logger.With("component", "badger")})
	}
	// badgeropen.Open first removes the empty log files a crash can leave,
	// which Badger itself refuses to open (a holder must come back by itself
	// after any kill; see package badgeropen for why nothing is lost).
	db, err := badgeropen.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: opening badger in %q: %w", opts.Dir, err)
	}
	s := &Store{db: db}
	n, err := s.dropLegacy()
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadAccounts(); err != nil {
		db.Close()
		return nil, err
	}
	s.startCommitter()
	if n > 0 && opts.Logger != nil {
		opts.Logger.Warn("store: deleted blobs of the layout before custodies (no custody chain counts them)", "count", n)
	}
	return s, nil
}

// dropLegacy deletes the keys of the pre-custody layout and returns how
// many blobs they held.
func (s *Store) dropLegacy() (int, error) {
	blobs := 0
	for _, prefix := range []string{legacyEntryPrefix, legacyDataPrefix} {
		var keys [][]byte
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("store: listing legacy keys: %w", err)
		}
		if prefix == legacyEntryPrefix {
			blobs = len(keys)
		}
		wb := s.db.NewWriteBatch()
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				wb.Cancel()
				return 0, fmt.Errorf("store: deleting legacy keys: %w", err)
			}
		}
		if err := wb.Flush(); err != nil {
			return 0, fmt.Errorf("store: deleting legacy keys: %w", err)
		}
	}
	return blobs, nil
}

// Close waits for calls in progress and closes the database. Later calls,
// including a second Close, return [ErrClosed].
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.active.Wait()
	s.stopCommitter()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: closing badger: %w", err)
	}
	return nil
}

// enter registers a call in progress, or reports ErrClosed. It never blocks,
// so a callback of ScanMeta may call other methods.
func (s *Store) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.active.Add(1)
	return nil
}

func (s *Store) leave() { s.active.Done() }

// Put stores blob as the copy of e.Custody durably (synced to disk before
// it returns), with its owner index. It checks e's fields (ErrBadOwner,
// ErrBadVault, ErrBadCustody, ErrBadPath) and that len(blob) == e.Size and
// sha256(blob) == e.Digest ([ErrSizeMismatch] / [ErrDigestMismatch]); a
// zero e.Digest is set to sha256(blob) instead (the copy is hashed once,
// here); nothing is stored on any refusal. It does not check the blob against a
// commitment: the caller has (custody.VerifyCopy).
//
// Putting the same digest for the same custody again is a no-op (added is
// false) unless the stored blob no longer matches it. A different digest
// replaces the stored copy: only one copy verifies against a custody's
// committed root, so either heals a copy corrupted on disk. A zero e.Received is set to the current time.
func (s *Store) Put(e Entry, blob []byte) (added bool, err error) {
	_, added, err = s.PutWithMeta(e, blob)
	return added, err
}

// PutWithMeta is Put that also applies meta (as [Store.WriteMeta] would, with
// its checks) in the copy's own transaction: the copy and the records are
// durable together or not at all, for the price of one sync. The records are
// written also when the copy is already stored (added false). It returns e
// as written (its Digest and Received set if they were zero). A holder
// queues the attestation of each copy it accepts this way.
func (s *Store) PutWithMeta(e Entry, blob []byte, meta ...MetaWrite) (written Entry, added bool, err error) {
	if err := checkMetaWrites(meta); err != nil {
		return Entry{}, false, err
	}
	added, err = s.put(&e, blob, meta)
	if err != nil {
		return Entry{}, false, err
	}
	return e, added, nil
}

func (s *Store) put(ep *Entry, blob []byte, meta []MetaWrite) (added bool, err error) {
	e := *ep
	defer func() { *ep = e }()
	if err := checkEntry(e); err != nil {
		return false, err
	}
	switch {
	case e.Size > MaxBlobSize || len(blob) > MaxBlobSize:
		return false, fmt.Errorf("%w: blob of %d bytes (entry says %d), limit %d", ErrTooLarge, len(blob), e.Size, MaxBlobSize)
	case len(blob) == 0:
		return false, ErrEmptyBlob
	case int64(len(blob)) != e.Size:
		return false, fmt.Errorf("%w: blob is %d bytes, entry says %d", ErrSizeMismatch, len(blob), e.Size)
	}
	if d := sha256.Sum256(blob); e.Digest == ([sha256.Size]byte{}) {
		e.Digest = d
	} else if d != e.Digest {
		return false, ErrDigestMismatch
	}
	if e.Received.IsZero() {
		e.Received = time.Now()
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()
	if unsafeAck {
		return s.ackBeforeWrite(e, blob, meta) // a deliberately broken build only
	}
	return s.write(e, blob, meta)
}

// write is Put's write, once e and blob are checked: in the committer's
// next group (group.go), durable when it returns.
func (s *Store) write(e Entry, blob []byte, meta []MetaWrite) (added bool, err error) {
	return s.writeGrouped(e, blob, meta)
}

// blobIntact reports whether the stored blob of e's custody still hashes to
// e's digest (a duplicate Put rewrites a copy corrupted on disk).
func blobIntact(txn *badger.Txn, e Entry) bool {
	item, err := txn.Get(blobKey(e.Custody))
	if err != nil {
		return false
	}
	ok := false
	_ = item.Value(func(v []byte) error {
		ok = int64(len(v)) == e.Size && sha256.Sum256(v) == e.Digest
		return nil
	})
	return ok
}

// errDuplicate aborts Put's transaction when the copy is already stored.
var errDuplicate = errors.New("duplicate")

// Get returns the entry and blob stored for custody id, or [ErrNotFound].
// A blob that no longer matches its recorded digest gives [ErrCorrupt].
func (s *Store) Get(id custody.CustodyID) (Entry, []byte, error) {
	if err := s.enter(); err != nil {
		return Entry{}, nil, err
	}
	defer s.leave()
	var (
		e    Entry
		blob []byte
	)
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if e, err = getEntry(txn, id); err != nil {
			return err
		}
		item, err := txn.Get(blobKey(id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("%w: header without blob", ErrCorrupt)
		}
		if err != nil {
			return err
		}
		blob, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return Entry{}, nil, fmt.Errorf("store: getting copy %s: %w", idString(id), err)
	}
	if int64(len(blob)) != e.Size || sha256.Sum256(blob) != e.Digest {
		return Entry{}, nil, fmt.Errorf("store: getting copy %s: %w: blob does not match its digest", idString(id), ErrCorrupt)
	}
	return e, blob, nil
}

// Stat returns the entry of custody id without its blob, or [ErrNotFound].
func (s *Store) Stat(id custody.CustodyID) (Entry, error) {
	if err := s.enter(); err != nil {
		return Entry{}, err
	}
	defer s.leave()
	var e Entry
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		e, err = getEntry(txn, id)
		return err
	})
	if err != nil {
		return Entry{}, fmt.Errorf("store: reading copy %s: %w", idString(id), err)
	}
	return e, nil
}

// Entries lists the entries of owner, or of every owner when owner is nil
// or empty, in custody order (commitment id, then slot). Listing one
// owner's entries reads the owner index, then their headers.
func (s *Store) Entries(owner []byte) ([]Entry, error) {
	var out []Entry
	err := s.scanEntries(owner, func(e Entry) { out = append(out, e) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes the copy of custody id, or returns [ErrNotFound].
func (s *Store) Delete(id custody.CustodyID) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	// Committed and accounted under orderMu, like the committer's groups.
	s.orderMu.Lock()
	defer s.orderMu.Unlock()
	var err error
	for attempt := 0; ; attempt++ {
		err = s.db.Update(func(txn *badger.Txn) error {
			e, err := getEntry(txn, id)
			if err != nil && !errors.Is(err, ErrCorrupt) {
				return err
			}
			if err == nil {
				if err := txn.Delete(ownerKey(e.Owner, id)); err != nil {
					return err
				}
			}
			if err := txn.Delete(headerKey(id)); err != nil {
				return err
			}
			return txn.Delete(blobKey(id))
		})
		if errors.Is(err, badger.ErrConflict) && attempt < maxTxnRetries {
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("store: deleting copy %s: %w", idString(id), err)
	}
	s.acctMu.Lock()
	s.acct.set(id, "", 0)
	s.acctMu.Unlock()
	return nil
}

// Usage returns how many copies owner has stored and their total size, for
// quotas, from the accounts kept in memory (usage.go): it reflects every Put
// and Delete that has returned, and reads nothing from the database.
func (s *Store) Usage(owner []byte) (blobs int, bytes int64, err error) {
	if len(owner) == 0 {
		return 0, 0, ErrBadOwner
	}
	if err := checkOwner(owner); err != nil {
		return 0, 0, err
	}
	if err := s.enter(); err != nil {
		return 0, 0, err
	}
	defer s.leave()
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	u := s.acct.usage[string(owner)]
	return u.blobs, u.bytes, nil
}

// Stats returns how many copies the whole store holds and their total
// size, for metrics.
func (s *Store) Stats() (blobs int, bytes int64, err error) {
	err = s.scanEntries(nil, func(e Entry) { blobs++; bytes += e.Size })
	if err != nil {
		return 0, 0, err
	}
	return blobs, bytes, nil
}

// scanEntries calls fn for each entry of owner (all owners if owner is
// empty) in custody order. It reads only headers.
func (s *Store) scanEntries(owner []byte, fn func(Entry)) error {
	if len(owner) != 0 {
		if err := checkOwner(owner); err != nil {
			return err
		}
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	err := s.db.View(func(txn *badger.Txn) error {
		if len(owner) == 0 {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(headerPrefix)})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				id, err := parseCustodyKey(it.Item().Key(), headerPrefix)
				if err != nil {
					return err
				}
				var e Entry
				if err := it.Item().Value(func(v []byte) error {
					e, err = decodeHeader(id, v)
					return err
				}); err != nil {
					return err
				}
				fn(e)
			}
			return nil
		}
		prefix := ownerPrefix(owner)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		var ids []custody.CustodyID
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := parseCustodyKey(it.Item().Key(), string(prefix))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			e, err := getEntry(txn, id)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: owner index names copy %s, which is absent", ErrCorrupt, idString(id))
			}
			if err != nil {
				return err
			}
			fn(e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: listing entries: %w", err)
	}
	return nil
}

// PutMeta stores value under key in the daemon's record area, durably.
func (s *Store) PutMeta(key string, value []byte) error {
	if err := checkMetaKey(key); err != nil {
		return err
	}
	if len(value) > MaxMetaSize {
		return fmt.Errorf("%w: meta value of %d bytes, limit %d", ErrTooLarge, len(value), MaxMetaSize)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	// In the committer's next group: blind writes to distinct keys never
	// conflict; two writes to the same key are applied in order and the
	// later one wins, as for any map.
	if err := s.writeMetaGrouped(MetaWrite{Key: key, Value: value}); err != nil {
		return fmt.Errorf("store: putting meta %q: %w", key, err)
	}
	return nil
}

// GetMeta returns the value stored under key, or [ErrNotFound].
func (s *Store) GetMeta(key string) ([]byte, error) {
	if err := checkMetaKey(key); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: getting meta %q: %w", key, err)
	}
	return v, nil
}

// DeleteMeta removes key. Deleting a key that is not there is not an error:
// the record is gone either way.
func (s *Store) DeleteMeta(key string) error {
	if err := checkMetaKey(key); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.writeMetaGrouped(MetaWrite{Key: key, Delete: true}); err != nil {
		return fmt.Errorf("store: deleting meta %q: %w", key, err)
	}
	return nil
}

// ScanMeta calls fn with every record whose key starts with prefix, in key
// order, and stops at the first error fn returns, which ScanMeta returns
// unchanged. fn may keep value and may call other methods of s; it sees a
// consistent snapshot taken when the scan began.
func (s *Store) ScanMeta(prefix string, fn func(key string, value []byte) error) error {
	if len(prefix) > MaxMetaKeyLen {
		return fmt.Errorf("%w: prefix of %d bytes, limit %d", ErrBadMetaKey, len(prefix), MaxMetaKeyLen)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	var fnErr error
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: metaKey(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if fnErr = fn(string(item.Key()[len(metaPrefix):]), v); fnErr != nil {
				return fnErr
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("store: scanning meta %q: %w", prefix, err)
	}
	return nil
}

const (
	headerPrefix = "h/"
	blobPrefix   = "b/"
	ownerIdx     = "o/"
	metaPrefix   = "m/"

	// legacyEntryPrefix and legacyDataPrefix are the keys of the layout
	// before custodies (per owner and vault), deleted by Open.
	legacyEntryPrefix = "e/"
	legacyDataPrefix  = "d/"

	// custodyKeyLen is the length of a custody's key part: 16 hex digits of
	// commitment id, 2 of slot.
	custodyKeyLen = 18
)

// custodyPart is the custody's key part: fixed-width hex, so that key
// order is custody order.
func custodyPart(id custody.CustodyID) string {
	return fmt.Sprintf("%016x%02x", id.Commitment, id.Slot)
}

func headerKey(id custody.CustodyID) []byte { return []byte(headerPrefix + custodyPart(id)) }

func blobKey(id custody.CustodyID) []byte { return []byte(blobPrefix + custodyPart(id)) }

func ownerPrefix(owner []byte) []byte {
	k := make([]byte, 0, len(ownerIdx)+2*ownerLen+1+custodyKeyLen)
	k = append(k, ownerIdx...)
	k = hex.AppendEncode(k, owner)
	return append(k, '/')
}

func ownerKey(owner []byte, id custody.CustodyID) []byte {
	return append(ownerPrefix(owner), custodyPart(id)...)
}

func metaKey(key string) []byte { return []byte(metaPrefix + key) }

// parseCustodyKey reads the custody of a key prefix + custodyPart.
func parseCustodyKey(k []byte, prefix string) (custody.CustodyID, error) {
	rest, ok := bytes.CutPrefix(k, []byte(prefix))
	if !ok || len(rest) != custodyKeyLen {
		return custody.CustodyID{}, fmt.Errorf("%w: malformed key %q", ErrCorrupt, k)
	}
	c, err1 := strconv.ParseUint(string(rest[:16]), 16, 64)
	sl, err2 := strconv.ParseUint(string(rest[16:]), 16, 8)
	if err1 != nil || err2 != nil {
		return custody.CustodyID{}, fmt.Errorf("%w: malformed key %q", ErrCorrupt, k)
	}
	return custody.CustodyID{Commitment: c, Slot: sl}, nil
}

func idString(id custody.CustodyID) string { return fmt.Sprintf("%d/%d", id.Commitment, id.Slot) }

// getEntry reads and decodes the header of custody id; ErrNotFound if
// absent.
func getEntry(txn *badger.Txn, id custody.CustodyID) (Entry, error) {
	item, err := txn.Get(headerKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := item.Value(func(v []byte) error {
		e, err = decodeHeader(id, v)
		return err
	}); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// encodeHeader is the entry header (see the key layout in doc.go).
func encodeHeader(e Entry) []byte {
	h := make([]byte, 0, headerFixedLen+len(e.CommitPath)*pathHashSize+len(e.Vault))
	h = append(h, headerVersion)
	h = append(h, e.Owner...)
	h = append(h, e.Digest[:]...)
	h = binary.BigEndian.AppendUint64(h, uint64(e.Size))
	h = binary.BigEndian.AppendUint64(h, uint64(e.Received.UnixNano()))
	h = append(h, byte(e.CopyIndex), byte(e.Copies), byte(len(e.CommitPath)))
	for _, p := range e.CommitPath {
		h = append(h, p...)
	}
	return append(h, e.Vault...)
}

func decodeHeader(id custody.CustodyID, h []byte) (Entry, error) {
	if len(h) < headerFixedLen || h[0] != headerVersion {
		return Entry{}, fmt.Errorf("%w: entry header of %d bytes, version %d", ErrCorrupt, len(h), firstByte(h))
	}
	e := Entry{Custody: id}
	e.Owner = bytes.Clone(h[1 : 1+ownerLen])
	h = h[1+ownerLen:]
	copy(e.Digest[:], h[:32])
	e.Size = int64(binary.BigEndian.Uint64(h[32:40]))
	e.Received = time.Unix(0, int64(binary.BigEndian.Uint64(h[40:48]))).UTC()
	e.CopyIndex, e.Copies = int(h[48]), int(h[49])
	n := int(h[50])
	h = h[51:]
	if n > maxCommitPath || len(h) < n*pathHashSize {
		return Entry{}, fmt.Errorf("%w: commit path of %d hashes in a header", ErrCorrupt, n)
	}
	for i := range n {
		e.CommitPath = append(e.CommitPath, bytes.Clone(h[i*pathHashSize:(i+1)*pathHashSize]))
	}
	e.Vault = string(h[n*pathHashSize:])
	if err := checkEntry(e); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if e.Size <= 0 || e.Size > MaxBlobSize {
		return Entry{}, fmt.Errorf("%w: entry size %d", ErrCorrupt, e.Size)
	}
	return e, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// checkEntry checks what Put keeps besides the blob: owner, vault,
// custody, copy index and commit path.
func checkEntry(e Entry) error {
	if err := checkOwner(e.Owner); err != nil {
		return err
	}
	if err := checkVault(e.Vault); err != nil {
		return err
	}
	if e.Custody.Slot > maxSlot {
		return fmt.Errorf("%w: slot %d, at most %d", ErrBadCustody, e.Custody.Slot, maxSlot)
	}
	if e.Copies < 1 || e.Copies > custody.MaxCopies || e.CopyIndex < 0 || e.CopyIndex >= e.Copies {
		return fmt.Errorf("%w: copy %d of %d", ErrBadCustody, e.CopyIndex, e.Copies)
	}
	if len(e.CommitPath) > maxCommitPath {
		return fmt.Errorf("%w: %d hashes, at most %d", ErrBadPath, len(e.CommitPath), maxCommitPath)
	}
	for i, p := range e.CommitPath {
		if len(p) != pathHashSize {
			return fmt.Errorf("%w: hash %d is %d bytes, want %d", ErrBadPath, i, len(p), pathHashSize)
		}
	}
	return nil
}

// checkOwner checks an owner key as every layer does (field.OwnerKey).
func checkOwner(owner []byte) error {
	if err := field.OwnerKey(owner); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOwner, err)
	}
	return nil
}

// checkVault checks a vault key as every layer does (field.Vault): the
// store never keeps a blob the chain would refuse to attest.
func checkVault(vault string) error {
	if err := field.Vault(vault); err != nil {
		return fmt.Errorf("%w: %v", ErrBadVault, err)
	}
	return nil
}

// A blob the store keeps is never over the size an attestation may claim.
var _ [field.MaxSize - MaxBlobSize]struct{}

func checkMetaKey(key string) error {
	if key == "" || len(key) > MaxMetaKeyLen {
		return fmt.Errorf("%w: length %d, want 1 to %d", ErrBadMetaKey, len(key), MaxMetaKeyLen)
	}
	return nil
}
