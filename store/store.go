package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

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
	// other so that a future layout change cannot be misread.
	headerVersion = 1

	// headerLen is version + digest + size + received.
	headerLen = 1 + sha256.Size + 8 + 8

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
)

// Entry describes one stored blob.
type Entry struct {
	Owner    []byte    // 33-byte compressed secp256k1 public key of the blob's owner
	Vault    string    // vault public key string (as keyshare.Info.VaultPubKey / `ksb inspect` prints it)
	Digest   [32]byte  // sha256 of the blob
	Size     int64     // blob length in bytes
	Received time.Time // when this node stored it
}

// Store is a Badger-backed blob store. Its methods are safe for concurrent use.
type Store struct {
	db *badger.DB

	mu     sync.Mutex     // guards closed and the Add side of active
	closed bool           // set once by Close
	active sync.WaitGroup // calls in progress; Close waits for them
}

// Open opens (creating if needed) the store described by opts.
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
	return &Store{db: db}, nil
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

// Put stores blob for (e.Owner, e.Vault) durably (synced to disk before it
// returns). It verifies len(blob)==e.Size and sha256(blob)==e.Digest
// ([ErrSizeMismatch] / [ErrDigestMismatch], nothing stored). Putting the same
// digest again is a no-op (returns replaced=nil, err=nil). A different digest
// for the same (owner, vault) atomically replaces the old one (the old Entry is
// returned so the caller can release it on chain). A zero e.Received is set to
// the current time.
func (s *Store) Put(e Entry, blob []byte) (replaced *Entry, err error) {
	if err := checkOwner(e.Owner); err != nil {
		return nil, err
	}
	if err := checkVault(e.Vault); err != nil {
		return nil, err
	}
	switch {
	case e.Size > MaxBlobSize || len(blob) > MaxBlobSize:
		return nil, fmt.Errorf("%w: blob of %d bytes (entry says %d), limit %d", ErrTooLarge, len(blob), e.Size, MaxBlobSize)
	case len(blob) == 0:
		return nil, ErrEmptyBlob
	case int64(len(blob)) != e.Size:
		return nil, fmt.Errorf("%w: blob is %d bytes, entry says %d", ErrSizeMismatch, len(blob), e.Size)
	}
	if sha256.Sum256(blob) != e.Digest {
		return nil, ErrDigestMismatch
	}
	if e.Received.IsZero() {
		e.Received = time.Now()
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if unsafeAck {
		return s.ackBeforeWrite(e, blob) // a deliberately broken build only
	}
	return s.write(e, blob)
}

// write is Put's transaction, once e and blob are checked.
func (s *Store) write(e Entry, blob []byte) (replaced *Entry, err error) {
	ek, dk := entryKey(e.Owner, e.Vault), dataKey(e.Owner, e.Vault)
	hdr := encodeHeader(e)
	for attempt := 0; ; attempt++ {
		replaced = nil
		err = s.db.Update(func(txn *badger.Txn) error {
			old, err := getEntry(txn, ek)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return err
			case old.Digest == e.Digest:
				return errDuplicate
			default:
				replaced = &old
			}
			if err := txn.Set(ek, hdr); err != nil {
				return err
			}
			return txn.Set(dk, blob)
		})
		if errors.Is(err, badger.ErrConflict) && attempt < maxTxnRetries {
			continue
		}
		break
	}
	switch {
	case errors.Is(err, errDuplicate):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("store: putting blob: %w", err)
	}
	return replaced, nil
}

// errDuplicate aborts Put's transaction when the blob is already stored.
var errDuplicate = errors.New("duplicate")

// Get returns the entry and blob stored for (owner, vault), or [ErrNotFound].
// A blob that no longer matches its recorded digest gives [ErrCorrupt].
func (s *Store) Get(owner []byte, vault string) (Entry, []byte, error) {
	if err := checkOwner(owner); err != nil {
		return Entry{}, nil, err
	}
	if err := checkVault(vault); err != nil {
		return Entry{}, nil, err
	}
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
		if e, err = getEntry(txn, entryKey(owner, vault)); err != nil {
			return err
		}
		item, err := txn.Get(dataKey(owner, vault))
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
		return Entry{}, nil, fmt.Errorf("store: getting blob: %w", err)
	}
	if int64(len(blob)) != e.Size || sha256.Sum256(blob) != e.Digest {
		return Entry{}, nil, fmt.Errorf("store: getting blob: %w: blob does not match its digest", ErrCorrupt)
	}
	return e, blob, nil
}

// Entries lists the entries of owner, or of every owner when owner is nil or
// empty, sorted by owner and then vault.
func (s *Store) Entries(owner []byte) ([]Entry, error) {
	var out []Entry
	err := s.scanEntries(owner, func(e Entry) { out = append(out, e) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes the blob of (owner, vault), or returns [ErrNotFound].
func (s *Store) Delete(owner []byte, vault string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	if err := checkVault(vault); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	ek, dk := entryKey(owner, vault), dataKey(owner, vault)
	var err error
	for attempt := 0; ; attempt++ {
		err = s.db.Update(func(txn *badger.Txn) error {
			if _, err := txn.Get(ek); err != nil {
				if errors.Is(err, badger.ErrKeyNotFound) {
					return ErrNotFound
				}
				return err
			}
			if err := txn.Delete(ek); err != nil {
				return err
			}
			return txn.Delete(dk)
		})
		if errors.Is(err, badger.ErrConflict) && attempt < maxTxnRetries {
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("store: deleting blob: %w", err)
	}
	return nil
}

// Usage returns how many blobs owner has stored and their total size, for
// quotas.
func (s *Store) Usage(owner []byte) (blobs int, bytes int64, err error) {
	if len(owner) == 0 {
		return 0, 0, ErrBadOwner
	}
	err = s.scanEntries(owner, func(e Entry) { blobs++; bytes += e.Size })
	if err != nil {
		return 0, 0, err
	}
	return blobs, bytes, nil
}

// Stats returns how many blobs the whole store holds and their total size,
// for metrics.
func (s *Store) Stats() (blobs int, bytes int64, err error) {
	err = s.scanEntries(nil, func(e Entry) { blobs++; bytes += e.Size })
	if err != nil {
		return 0, 0, err
	}
	return blobs, bytes, nil
}

// scanEntries calls fn for each entry of owner (all owners if owner is empty)
// in key order. It reads only headers.
func (s *Store) scanEntries(owner []byte, fn func(Entry)) error {
	prefix := []byte(entryPrefix)
	if len(owner) != 0 {
		if err := checkOwner(owner); err != nil {
			return err
		}
		prefix = entryKey(owner, "")
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			owner, vault, err := parseEntryKey(item.Key())
			if err != nil {
				return err
			}
			var e Entry
			if err := item.Value(func(v []byte) error {
				e, err = decodeHeader(v)
				return err
			}); err != nil {
				return err
			}
			e.Owner, e.Vault = owner, vault
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
	// Blind writes to distinct keys never conflict; two writes to the same key
	// are ordered by Badger and the later one wins, as for any map.
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(metaKey(key), value)
	}); err != nil {
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
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Delete(metaKey(key))
	}); err != nil {
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
	entryPrefix = "e/"
	dataPrefix  = "d/"
	metaPrefix  = "m/"
)

func blobKey(prefix string, owner []byte, vault string) []byte {
	k := make([]byte, 0, len(prefix)+2*ownerLen+1+len(vault))
	k = append(k, prefix...)
	k = hex.AppendEncode(k, owner)
	k = append(k, '/')
	return append(k, vault...)
}

func entryKey(owner []byte, vault string) []byte { return blobKey(entryPrefix, owner, vault) }

func dataKey(owner []byte, vault string) []byte { return blobKey(dataPrefix, owner, vault) }

func metaKey(key string) []byte { return []byte(metaPrefix + key) }

// parseEntryKey splits e/<owner hex>/<vault>.
func parseEntryKey(k []byte) (owner []byte, vault string, err error) {
	rest, ok := bytes.CutPrefix(k, []byte(entryPrefix))
	if !ok || len(rest) < 2*ownerLen+2 || rest[2*ownerLen] != '/' {
		return nil, "", fmt.Errorf("%w: malformed key %q", ErrCorrupt, k)
	}
	owner, err = hex.DecodeString(string(rest[:2*ownerLen]))
	if err != nil {
		return nil, "", fmt.Errorf("%w: malformed key %q", ErrCorrupt, k)
	}
	return owner, string(rest[2*ownerLen+1:]), nil
}

// getEntry reads and decodes the header at ek; ErrNotFound if absent.
func getEntry(txn *badger.Txn, ek []byte) (Entry, error) {
	item, err := txn.Get(ek)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, err
	}
	owner, vault, err := parseEntryKey(ek)
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := item.Value(func(v []byte) error {
		e, err = decodeHeader(v)
		return err
	}); err != nil {
		return Entry{}, err
	}
	e.Owner, e.Vault = owner, vault
	return e, nil
}

func encodeHeader(e Entry) []byte {
	h := make([]byte, 0, headerLen)
	h = append(h, headerVersion)
	h = append(h, e.Digest[:]...)
	h = binary.BigEndian.AppendUint64(h, uint64(e.Size))
	return binary.BigEndian.AppendUint64(h, uint64(e.Received.UnixNano()))
}

func decodeHeader(h []byte) (Entry, error) {
	if len(h) != headerLen || h[0] != headerVersion {
		return Entry{}, fmt.Errorf("%w: entry header of %d bytes, version %d", ErrCorrupt, len(h), firstByte(h))
	}
	var e Entry
	copy(e.Digest[:], h[1:33])
	e.Size = int64(binary.BigEndian.Uint64(h[33:41]))
	if e.Size <= 0 || e.Size > MaxBlobSize {
		return Entry{}, fmt.Errorf("%w: entry size %d", ErrCorrupt, e.Size)
	}
	e.Received = time.Unix(0, int64(binary.BigEndian.Uint64(h[41:49]))).UTC()
	return e, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
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
