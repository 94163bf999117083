package statestore

import idb "github.com/cosmos/iavl/db"

// WithFlushThreshold sets IAVL's flush threshold, in bytes: a version larger
// than it is written in several batches (IAVL's default behaviour, which
// Open replaces by one batch per version).
func WithFlushThreshold(o Options, n int) Options { o.flushThreshold = n; return o }

// WithDBWrapper wraps the database the trees read and write.
func WithDBWrapper(o Options, w func(idb.DB) idb.DB) Options { o.wrapDB = w; return o }
