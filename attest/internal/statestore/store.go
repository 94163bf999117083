package statestore

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	dbm "github.com/cometbft/cometbft-db"
	"github.com/cosmos/iavl"
	idb "github.com/cosmos/iavl/db"
)

const (
	// DefaultKeepRecent is how many committed versions stay readable and
	// provable: about 17 minutes of one-second blocks, long enough for a
	// client to query height h, wait for header h+1 (which carries h's app
	// hash) and fetch every proof it needs at h. Keeping a version costs
	// only what its block changed (about log2(entries) nodes per change);
	// an empty block costs one root reference.
	DefaultKeepRecent = 1000

	// DefaultPruneInterval is how many commits pass between two prunings.
	// Pruning a version costs about as much as committing the next one (it
	// walks the nodes that version replaced); doing it every tenth commit
	// writes those deletions in one batch and one fsync instead of ten.
	DefaultPruneInterval = 10

	// DefaultCacheNodes is the IAVL node cache of the working tree, in nodes.
	// A node with ksb's keys and values (~100 bytes each) takes about 300
	// bytes, so this is ~60 MB: every node of a 10^5-entry state, and the
	// upper levels of a larger one, so that a change reads at most the
	// bottom of its path from Pebble.
	DefaultCacheNodes = 200_000

	// DefaultReadCacheNodes is the node cache of the committed versions that
	// queries and CheckTx read (a separate tree, see Store).
	DefaultReadCacheNodes = 50_000

	// DefaultBlockCacheBytes is Pebble's block cache. Pebble's 8 MiB default
	// makes every node-cache miss a disk read once the state outgrows it.
	DefaultBlockCacheBytes = 64 << 20

	// flushThreshold is larger than any version's batch (a block of
	// MaxBlockItems entries writes a few tens of MB of nodes), so IAVL
	// writes each version, and each pruning, in one atomic Pebble batch.
	// With IAVL's 100 kB default a version is written in many batches, and a
	// crash between two of them leaves a version that cannot be loaded.
	flushThreshold = 1 << 30

	// dbName is the Pebble database inside Options.Dir (dir/state.db).
	dbName = "state"
)

// Options configure a Store. Start from DefaultOptions.
type Options struct {
	// Dir is the directory of the store; it is created if needed.
	Dir string
	// KeepRecent is how many of the latest committed versions stay
	// readable (≥ 1): at least that many, and up to PruneInterval-1 more
	// between two prunings.
	KeepRecent int64
	// PruneInterval is the number of commits between two prunings (≥ 1).
	PruneInterval int64
	// CacheNodes and ReadCacheNodes size the node caches, in nodes.
	CacheNodes     int
	ReadCacheNodes int
	// BlockCacheBytes is Pebble's block cache.
	BlockCacheBytes int64
	// Sync makes Commit return only once the version is on disk (fsync).
	// Without it a power loss may lose the last versions; CometBFT then
	// replays their blocks, so it is a durability choice, not a correctness
	// one.
	Sync bool
	// Logger receives recovery warnings and Pebble's messages; nil discards.
	Logger *slog.Logger

	// Tests only (export_test.go).
	flushThreshold int
	wrapDB         func(idb.DB) idb.DB
}

// DefaultOptions returns the options of a validator's state in dir.
func DefaultOptions(dir string) Options {
	return Options{
		Dir:             dir,
		KeepRecent:      DefaultKeepRecent,
		PruneInterval:   DefaultPruneInterval,
		CacheNodes:      DefaultCacheNodes,
		ReadCacheNodes:  DefaultReadCacheNodes,
		BlockCacheBytes: DefaultBlockCacheBytes,
		Sync:            true,
	}
}

// WithKeepRecent returns o with KeepRecent set.
func (o Options) WithKeepRecent(n int64) Options { o.KeepRecent = n; return o }

// WithPruneInterval returns o with PruneInterval set.
func (o Options) WithPruneInterval(n int64) Options { o.PruneInterval = n; return o }

// WithCacheNodes returns o with CacheNodes set.
func (o Options) WithCacheNodes(n int) Options { o.CacheNodes = n; return o }

// WithBlockCacheBytes returns o with BlockCacheBytes set.
func (o Options) WithBlockCacheBytes(n int64) Options { o.BlockCacheBytes = n; return o }

// WithSync returns o with Sync set.
func (o Options) WithSync(sync bool) Options { o.Sync = sync; return o }

// WithLogger returns o with Logger set.
func (o Options) WithLogger(l *slog.Logger) Options { o.Logger = l; return o }

// Store is an authenticated, versioned key-value store (see the package
// documentation). It is safe for concurrent use.
//
// It holds two IAVL trees on the same database: the working tree, which
// only the block being executed reads and writes, and a reader that loads
// committed versions for Snapshots. IAVL shares node objects between a saved
// version and the working tree derived from it, and writes to them while
// updating the working tree, so a Snapshot must not read nodes the working
// tree holds; the reader has its own nodes and node cache.
type Store struct {
	opts Options
	log  *slog.Logger
	db   dbm.DB

	mu   sync.Mutex // the working tree
	tree *iavl.MutableTree

	reader *iavl.MutableTree // only GetImmutable is ever called on it
	latest atomic.Pointer[Snapshot]
	first  atomic.Int64 // oldest version kept (0: none)

	// Readers in flight, so that Close waits for them instead of closing
	// Pebble under them (Pebble panics on a closed database).
	rmu     sync.Mutex
	rcond   *sync.Cond
	readers int
	closed  bool
}

// Open opens (or creates) the store in opts.Dir and loads its latest
// version. If that version is incomplete (a crash during its commit with a
// store written by a version of this package that flushed in several
// batches, or storage that lost part of a batch), it is dropped, the one
// before it is loaded, and the event is logged as an error; the caller
// (CometBFT's handshake) then replays the lost block.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("state store: no directory")
	}
	if opts.KeepRecent < 1 || opts.PruneInterval < 1 || opts.CacheNodes < 0 || opts.ReadCacheNodes < 0 || opts.BlockCacheBytes < 0 {
		return nil, fmt.Errorf("state store %s: bad options (keep %d, prune interval %d, caches %d/%d/%d)",
			opts.Dir, opts.KeepRecent, opts.PruneInterval, opts.CacheNodes, opts.ReadCacheNodes, opts.BlockCacheBytes)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	cache := pebble.NewCache(opts.BlockCacheBytes)
	defer cache.Unref() // the database holds its own reference
	pdb, err := dbm.NewPebbleDBWithOpts(dbName, opts.Dir, &pebble.Options{Cache: cache, Logger: pebbleLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("opening state store %s: %w", opts.Dir, err)
	}
	var db idb.DB = dbAdapter{pdb}
	if opts.wrapDB != nil {
		db = opts.wrapDB(db)
	}
	s := &Store{opts: opts, log: log, db: pdb}
	s.rcond = sync.NewCond(&s.rmu)
	version, err := s.load(db)
	if err != nil {
		if s.tree != nil {
			s.tree.Close()
		}
		pdb.Close()
		return nil, fmt.Errorf("loading state store %s: %w", opts.Dir, err)
	}
	s.reader = iavl.NewMutableTree(db, opts.ReadCacheNodes, true, iavlLogger{log})
	if version > 0 {
		if vs := s.tree.AvailableVersions(); len(vs) > 0 {
			s.first.Store(int64(vs[0]))
		}
	}
	snap, err := s.snapshot(version)
	if err != nil {
		s.tree.Close()
		s.reader.Close()
		pdb.Close()
		return nil, fmt.Errorf("loading state store %s: %w", opts.Dir, err)
	}
	s.latest.Store(snap)
	return s, nil
}

// load creates the working tree and loads the latest version, dropping an
// incomplete one (see Open).
func (s *Store) load(db idb.DB) (int64, error) {
	ft := flushThreshold
	if s.opts.flushThreshold > 0 {
		ft = s.opts.flushThreshold
	}
	newTree := func() *iavl.MutableTree {
		// skipFastStorageUpgrade: IAVL's "fast index" serves iterators of
		// the latest version from a table that the next commit rewrites,
		// so a query iterating while a block commits could mix two
		// versions. Without it every read walks the tree of its version.
		return iavl.NewMutableTree(db, s.opts.CacheNodes, true, iavlLogger{s.log},
			iavl.FlushThresholdOption(ft), iavl.SyncOption(s.opts.Sync))
	}
	s.tree = newTree()
	version, err := s.tree.Load()
	if err == nil {
		return version, nil
	}
	if !errors.Is(err, iavl.ErrVersionDoesNotExist) {
		return 0, err
	}
	latest, lerr := s.tree.GetLatestVersion()
	if lerr != nil {
		return 0, errors.Join(err, lerr)
	}
	s.log.Error("state store: the latest version is incomplete (a crash while it was written?); dropping it, its block will be replayed",
		"version", latest, "dir", s.opts.Dir, "err", err)
	s.tree.Close()
	s.tree = newTree()
	if latest > 1 && s.tree.VersionExists(latest-1) {
		if err := s.tree.LoadVersionForOverwriting(latest - 1); err != nil {
			return 0, fmt.Errorf("dropping incomplete version %d: %w", latest, err)
		}
		return latest - 1, nil
	}
	// The incomplete version is the only one.
	if err := s.tree.DeleteVersionsFrom(latest); err != nil {
		return 0, fmt.Errorf("dropping incomplete version %d: %w", latest, err)
	}
	s.tree.Close()
	s.tree = newTree()
	return s.tree.Load()
}

// acquire registers a reader, or fails once the store is closed.
func (s *Store) acquire() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.readers++
	return nil
}

func (s *Store) release() {
	s.rmu.Lock()
	s.readers--
	if s.readers == 0 {
		s.rcond.Broadcast()
	}
	s.rmu.Unlock()
}

// Close discards the working tree and closes the store, after the reads in
// flight.
func (s *Store) Close() error {
	s.rmu.Lock()
	if s.closed {
		s.rmu.Unlock()
		return nil
	}
	s.closed = true
	for s.readers > 0 {
		s.rcond.Wait()
	}
	s.rmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree.Rollback()
	return errors.Join(s.tree.Close(), s.reader.Close(), s.db.Close())
}

// Get returns the value of key in the working tree, or nil if it is absent.
func (s *Store) Get(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.tree.Get(key)
	return bytes.Clone(v), err
}

// Set sets key to value in the working tree. Both are copied.
func (s *Store) Set(key, value []byte) error {
	switch {
	case len(key) == 0:
		return ErrEmptyKey
	case len(value) == 0:
		return ErrEmptyValue
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.tree.Set(bytes.Clone(key), bytes.Clone(value))
	return err
}

// Delete removes key from the working tree; an absent key is no error.
func (s *Store) Delete(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, err := s.tree.Remove(bytes.Clone(key))
	return err
}

// Iterate calls fn for every key of the working tree that starts with
// prefix, in byte order; fn's error stops it and is returned. The range is
// read before fn is first called, so fn may write to the store (IAVL
// forbids writes while one of its iterators is open); a range is a block's
// worth of keys at most.
func (s *Store) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	type kv struct{ k, v []byte }
	var kvs []kv
	err := func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		var start []byte
		if len(prefix) > 0 {
			start = prefix
		}
		it, err := s.tree.Iterator(start, prefixEnd(prefix), true)
		if err != nil {
			return err
		}
		defer it.Close()
		for ; it.Valid(); it.Next() {
			kvs = append(kvs, kv{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
		}
		return it.Error()
	}()
	if err != nil {
		return err
	}
	for _, e := range kvs {
		if err := fn(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// WorkingVersion is the version Commit will save: the last one + 1, or the
// initial version.
func (s *Store) WorkingVersion() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.WorkingVersion()
}

// WorkingHash is the root hash Commit will save: 32 bytes. Computing it
// hashes the nodes the working tree changed, which Commit then reuses.
func (s *Store) WorkingHash() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.tree.WorkingHash())
}

// SetInitialVersion makes the first Commit save version v (a chain whose
// first block is v > 1). It fails with ErrBadVersion once a version is
// committed.
func (s *Store) SetInitialVersion(v int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v < 1 || s.tree.Version() > 0 {
		return fmt.Errorf("initial version %d on a store at version %d: %w", v, s.tree.Version(), ErrBadVersion)
	}
	s.tree.SetInitialVersion(uint64(v))
	return nil
}

// Rollback discards every change since the last Commit.
func (s *Store) Rollback() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree.Rollback()
}

// Commit saves the working tree as the next version, in one atomic batch
// (fsynced if Options.Sync), returns it as a Snapshot, and every
// PruneInterval versions deletes the versions older than the KeepRecent
// latest ones. A failed pruning is logged and retried at the next interval;
// it does not fail the commit. A failed save leaves the store unusable
// until it is reopened (Open then loads the last complete version).
func (s *Store) Commit() (*Snapshot, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, version, err := s.tree.SaveVersion()
	if err != nil {
		return nil, fmt.Errorf("saving version %d: %w", s.tree.WorkingVersion(), err)
	}
	snap, err := s.snapshot(version)
	if err != nil {
		return nil, err
	}
	s.latest.Store(snap)
	s.first.CompareAndSwap(0, version)
	if version%s.opts.PruneInterval == 0 {
		to := version - s.opts.KeepRecent
		if to >= s.first.Load() {
			if err := s.tree.DeleteVersionsTo(to); err != nil {
				s.log.Warn("state store: pruning failed; retrying at the next interval", "to_version", to, "err", err)
			} else {
				s.first.Store(to + 1)
			}
		}
	}
	return snap, nil
}

// Latest returns the latest committed version; version 0 (empty) before the
// first Commit.
func (s *Store) Latest() *Snapshot { return s.latest.Load() }

// At returns committed version v, if it is still kept.
func (s *Store) At(v int64) (*Snapshot, error) {
	latest := s.latest.Load()
	switch first := s.first.Load(); {
	case v < 1:
		return nil, fmt.Errorf("version %d: %w", v, ErrBadVersion)
	case v == latest.version:
		return latest, nil
	case v > latest.version:
		return nil, fmt.Errorf("version %d, latest is %d: %w", v, latest.version, ErrVersionNotCommitted)
	case v < first:
		return nil, fmt.Errorf("version %d, kept are %d to %d: %w", v, first, latest.version, ErrVersionPruned)
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	return s.snapshot(v)
}

// snapshot loads committed version v from the reader tree.
func (s *Store) snapshot(v int64) (*Snapshot, error) {
	if v == 0 {
		return &Snapshot{st: s}, nil
	}
	t, err := s.reader.GetImmutable(v)
	if errors.Is(err, iavl.ErrVersionDoesNotExist) {
		return nil, fmt.Errorf("version %d: %w", v, ErrVersionPruned)
	}
	if err != nil {
		return nil, fmt.Errorf("loading version %d: %w", v, err)
	}
	return &Snapshot{st: s, tree: t, version: v, hash: t.Hash()}, nil
}

// prefixEnd returns the first key after every key that starts with prefix,
// or nil (no end) if there is none.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
