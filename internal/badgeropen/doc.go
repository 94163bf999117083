// Package badgeropen opens a Badger database the way ksb needs after a crash:
// it first removes the zero-length write-ahead-log files (.mem) and value-log
// files (.vlog) a kill can leave, which Badger v4 (through v4.9.6) refuses to
// open (dgraph-io/badger#2207; the fix, PR #2331, is not released).
//
// # Where the empty files come from
//
// Badger creates a new memtable log at every open and whenever a memtable
// fills, and a new value log at every open, in two steps:
// open(O_CREATE) — an empty file — then ftruncate to its full size, mmap, and
// a 20-byte header. A process killed between the two steps leaves a 0-byte
// file. On the next open Badger treats the file as new (ristretto's
// z.NewFile) and fails: "while opening memtables err: while opening fid: N
// err: Create a new file" (or "Open existing file: …vlog err: Create a new
// file").
//
// # Why removing them loses nothing
//
// Badger writes an entry into a log file only after the file has its size
// and header, so a 0-byte file has never held an entry; nothing refers to it
// (memtable logs are not in the MANIFEST, and value pointers name offsets
// past the header of a file that was written). Badger itself deletes a
// memtable log that replays empty, and a value log that holds only its
// header. Removing the 0-byte file is what Badger would do with it one step
// later; the next file it creates takes the same number.
//
// The directory is cleaned only while this process holds Badger's own lock
// on it (flock of the directory, as badger.Open takes), so the files of a
// database another process has open — where an empty file is a log being
// created this instant — are never touched. The alternative, retrying
// badger.Open once (the failed open sizes the file, so a second open
// succeeds), was not chosen: Badger v4.9.6 does not clean up after that
// failure (its deferred cleanup checks a shadowed error), so each retry would
// leak goroutines and mapped memtables.
package badgeropen
