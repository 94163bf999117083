// Package store keeps the sealed copies a holder node has accepted from
// other nodes, in one Badger database, together with a small key/value area
// for the daemon's own records.
//
// A copy is stored under the custody it is held for: the chain's
// (commitment id, slot) pair, which names exactly one copy of one share
// version (the chain checks every copy against its committed root, so one
// custody has one possible content). With it the entry keeps the owner (the
// 33-byte compressed secp256k1 key of the node whose share it is), the
// vault, the copy index, the commitment's number of copies r, and the
// commit path from the copy's root to the commitment root: everything the
// holder needs to answer a challenge (custody.ProveHeld) and an owner needs
// to check a fetched copy (custody.VerifyCopy). An index by owner serves
// fetches and recovery requests, which ask for one owner's copies. The store
// never interprets a blob; it checks its length and SHA-256 against the
// [Entry] before storing it and again when reading it back.
//
// Every write is synced to disk before it returns (Badger's SyncWrites), so a
// write that was acknowledged survives a crash of the process or the machine.
// Copies stored at the same time share a sync (group commit): one committer
// writes every Put waiting at that moment in one transaction, and each Put
// returns once that transaction is durable. [Store.PutWithMeta] writes
// daemon records in the copy's own transaction (a holder's queued
// attestation): durable with the copy, for the same sync.
//
// # Key layout
//
// All keys are ASCII. <custody> is the commitment id as 16 lower-case hex
// digits followed by the slot as 2 (so key order is custody order); <owner>
// is the lower-case hex of the 33-byte owner key:
//
//	h/<custody>          entry header: version (1 byte, 2), owner key (33),
//	                     SHA-256 digest (32), size (8, big-endian), received
//	                     time (8, big-endian Unix nanoseconds), copy index (1),
//	                     copies (1), commit path length n (1), n 32-byte
//	                     hashes, then the vault key
//	b/<custody>          the copy itself
//	o/<owner>/<custody>  the owner index (empty value)
//	m/<key>              daemon records written with [Store.PutMeta],
//	                     [Store.WriteMeta] or [Store.PutWithMeta]
//
// A header, its copy and its index entry are written and deleted in one
// transaction; listing entries reads only the small headers, and an
// owner's usage is kept in memory (computed from the headers by [Open]). Vault strings are 1 to [MaxVaultLen] characters of [A-Za-z0-9._:-]
// (the attestation chain's rule). Keys of the layout before custodies (e/
// and d/, one blob per owner and vault) are deleted by [Open]: no custody
// chain counts them.
//
// # Space
//
// Blobs and records are capped just under 1 MiB ([MaxBlobSize]) so that Badger
// keeps every one of them inline in its LSM tree, where compaction reclaims the
// space of replaced and deleted blobs; nothing lands in Badger's value log,
// which would need a separate garbage collector.
package store
