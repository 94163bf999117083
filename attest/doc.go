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
// State lives in a Badger database in the chain home. Every block's writes go
// into one Badger transaction committed in ABCI Commit, together with the
// height and app hash, so the application restarts at its last committed block
// and CometBFT replays the rest. The app hash is
//
//	sha256("ksb/attest/state/v1\x00" || for each state key k in byte order:
//	       uvarint(len k) || k || uvarint(len v) || v)
//
// a commitment over the whole state: two validators agree on it only if they
// hold the same nodes, vaults, attestations and sequences.
//
// # Queries
//
// ABCI queries (abci_query over CometBFT RPC, curl included) return JSON at
// /params, /nodes, /vaults, /sequence/{address}, /attestations/owner/{address},
// /attestations/holder/{address}, /coverage and /coverage/{vault}. See
// [Coverage] for what "safe" means.
package attest
