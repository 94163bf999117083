// Package statestore is the attestation chain's authenticated state: a
// versioned key-value store whose root hash is the app hash and whose every
// answer can be proven to a client that trusts only that hash.
//
// It is an IAVL tree (github.com/cosmos/iavl v1.3, the Cosmos SDK's store) on
// a Pebble database (through cometbft-db, the engine CometBFT already uses).
// One version is saved per block, version = height. Proofs are ICS23
// commitment proofs (github.com/cosmos/ics23/go) checked against [ProofSpec]
// (ics23.IavlSpec): membership for a present key, non-membership for an
// absent one, the format IBC clients verify.
//
// # Writing
//
// Set, Delete, Get and Iterate act on the working tree: the block being
// executed. WorkingHash is the root the block will commit (FinalizeBlock's
// app hash), Commit saves it as the next version and Rollback discards it.
// Each version is written to Pebble in one atomic, fsynced batch, so a crash
// at any point leaves either the previous version or the new one; if a
// version is nevertheless found incomplete at Open, it is dropped and the
// previous one loaded (the block is then replayed by CometBFT).
//
// # Reading and proving
//
// Latest and At return a [Snapshot]: an immutable committed version, safe for
// concurrent use while the next block is written and committed. Recent
// versions (Options.KeepRecent) are kept; older ones are pruned every
// Options.PruneInterval commits.
//
// # Keys and values
//
// Keys and values are byte strings; neither may be empty, because an ICS23
// proof cannot show an empty key or value (its leaf operation refuses them).
package statestore
