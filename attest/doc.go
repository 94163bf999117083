// Package attest is the ksb custody chain: the transactions owners, holders
// and the network's authority sign, the CometBFT (v1) ABCI application that
// keeps commitments, custodies, challenges and repairs in chain state, the
// JSON queries over them (coverage above all), a client for any CometBFT node
// running the application, and an in-process validator node.
// docs/attestation.md is the reference; the pure rules it applies
// (commitment roots, proofs, seeds, assignment, challenge sampling, statuses,
// coverage) are package custody's.
//
// # Transactions
//
// Seven messages travel in a signed [Tx], defined in
// proto/ksb/attest/v2/tx.proto and generated into package attestpb:
// [Commit] (an owner commits share versions; the chain assigns their
// holders), [Attest] (a holder holds its copy of assigned custodies),
// [Prove] (a holder answers an epoch's challenges), [Release] (it no longer
// holds some), [Drill] (an owner reports a restore drill), [Churn] (the
// authority adds and removes nodes, creates and retires vaults) and
// [UpdateNode]. Signers are account numbers; the chain ID is in the sign
// bytes only. [DecodeTx] accepts only the canonical encoding, with no
// unknown field and every count capped. [SignTx] builds a transaction; a
// [Sender] learns the signer's account and sequence, signs, broadcasts and
// waits for the commit.
//
// # What the chain does by itself
//
// In the block that carries a Commit it draws the commitment's holders from
// the block hash; at each epoch's first block it derives the epoch's
// challenges; at the end of a proof window it turns misses into stale and
// failed custodies (and fails a holder that missed two whole epochs); when a
// custody of a live commitment fails or its holder leaves, the same block
// assigns a replacement and a source to send it a copy, and draws another
// source past a deadline; and it deletes superseded and retired commitments
// after a retention grace. Nothing a transaction carries can make a block
// fail: every refusal is a result code (code.go).
//
// # State and app hash
//
// State is an IAVL tree (github.com/cosmos/iavl) on Pebble in the chain home
// (internal/statestore); the app hash is its root. FinalizeBlock applies a
// block to the working tree and returns the new root; Commit saves it as
// version = height in one atomic, fsynced write, so the application restarts
// at its last committed block and CometBFT replays the rest; a block that
// fails half-way (a storage error) is rolled back whole. A block costs its
// changes times the tree's depth, not the size of the state. The root
// commits to the whole state: two validators agree on it only if they hold
// the same accounts, nodes, vaults, commitments, custodies, challenges and
// timers. The tree cannot hold an empty value, so a value of no bytes (an
// index key's) is stored as the single byte 0x00, and no record may be that
// byte itself.
//
// State keys are listed in keys.go (and docs/attestation.md); every key
// coverage needs is named by the value before it, so [ComputeVaultCoverage]
// runs on a [StateGetter] that a verifying client can back with proven
// reads of /state/{key}.
//
// # Queries
//
// ABCI queries (abci_query over CometBFT RPC, curl included) return JSON at
// /params, /nodes, /vaults, /sequence/{address}, /epoch,
// /commitments/owner/{address}, /commitment/{id}, /custody/{c}/{slot},
// /custodies/holder/{address}, /challenges/holder/{address},
// /repairs/source/{address}, /repairs/replacement/{address}, /coverage and
// /coverage/{vault}, and a state key's raw value at /state/{key}. See
// [VaultCoverage] for what "safe" means. With prove=true an answer carries
// ICS23 proofs of every state key it read against the app hash of its
// height, which the header of the next height holds ([VerifyStateProof]); a
// recent height can be queried while it is kept.
package attest
