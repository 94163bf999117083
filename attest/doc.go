// Package attest is the ksb attestation chain: the transactions holders and
// the network's authority sign, the CometBFT (v1) ABCI application that keeps
// custody attestations in chain state, the JSON queries over them (coverage
// above all), a client for any CometBFT node running the application, and an
// in-process validator node.
//
// # Transactions
//
// Four messages travel in a signed [Tx] (schema in proto/attest.proto,
// canonical protobuf encoding): [Attest] (a holder keeps blobs), [Release] (it
// no longer does), [Churn] (the authority adds and removes nodes, creates and
// retires vaults) and [UpdateNode] (a node replaces its multiaddrs). [SignTx]
// builds one; a [Sender] fetches the signer's sequence, signs, broadcasts and
// waits for the commit.
//
// # State and app hash
//
// State is an IAVL tree (github.com/cosmos/iavl) on Pebble in the chain home
// (internal/statestore); the app hash is its root. FinalizeBlock applies a
// block to the working tree and returns the new root; Commit saves it as
// version = height in one atomic, fsynced write, so the application restarts
// at its last committed block and CometBFT replays the rest. A block costs
// its changes times the tree's depth, not the size of the state. The root
// commits to the whole state: two validators agree on it only if they hold
// the same nodes, vaults, attestations and sequences.
//
// # Queries
//
// ABCI queries (abci_query over CometBFT RPC, curl included) return JSON at
// /params, /nodes, /vaults, /sequence/{address}, /attestations/owner/{address},
// /attestations/holder/{address}, /coverage and /coverage/{vault}, and a state
// key's raw value at /state/{key}. See [Coverage] for what "safe" means. With
// prove=true an answer carries ICS23 proofs of every state key it read against
// the app hash of its height, which the header of the next height holds
// ([VerifyStateProof]); a recent height can be queried while it is kept.
package attest
