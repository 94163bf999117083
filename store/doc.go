// Package store keeps the sealed keyshare backups a holder node has accepted
// from other nodes, in one Badger database, together with a small key/value
// area for the daemon's own records.
//
// A blob is stored under its owner (the 33-byte compressed secp256k1 public
// key of the node that sealed it) and the vault it backs up (the vault public
// key string, as keyshare.Info.VaultPubKey and `ksb inspect` report it). An owner has at most one blob per
// vault: a new digest for the same (owner, vault) replaces the old blob
// atomically, and [Store.Put] returns the replaced [Entry] so that the caller
// can release it on chain. The store never interprets a blob; it checks its
// length and SHA-256 against the [Entry] before storing it and again when
// reading it back.
//
// Every write is synced to disk before it returns (Badger's SyncWrites), so a
// write that was acknowledged survives a crash of the process or the machine.
//
// # Key layout
//
// All keys are ASCII. <owner> is the lower-case hex of the 33-byte owner key
// (66 characters, so every owner prefix has the same length and key order is
// byte order of the owner, then of the vault):
//
//	e/<owner>/<vault>  entry header: version (1 byte, 1), SHA-256 digest (32),
//	                   size (8, big-endian), received time (8, big-endian Unix
//	                   nanoseconds); 49 bytes
//	d/<owner>/<vault>  the blob itself
//	m/<key>            daemon records written with [Store.PutMeta]
//
// Headers and blobs live under separate keys, written in one transaction, so
// that listing entries and computing usage reads only the small headers. Vault
// strings are 1 to [MaxVaultLen] characters of [A-Za-z0-9._:-] — the
// attestation chain's rule, so that every blob kept can be attested — which
// covers both bech32 ("thorpub1…") and hex vault keys and, without '/', keeps
// the layout unambiguous.
//
// # Space
//
// Blobs and records are capped just under 1 MiB ([MaxBlobSize]) so that Badger
// keeps every one of them inline in its LSM tree, where compaction reclaims the
// space of replaced and deleted blobs; nothing lands in Badger's value log,
// which would need a separate garbage collector.
package store
