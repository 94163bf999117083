// Package verify reads the ksb chain's state without trusting the RPC node
// that serves it, the way an IBC relayer or a CometBFT light client does.
//
// A Client starts from a trust anchor — a trusted height and the hash of
// its header, or the chain's genesis file for a new network — and uses
// CometBFT's light client (github.com/cometbft/cometbft/light) with a
// primary RPC and at least one witness (the primary again when only one RPC
// is given: that cross-checks nothing, and is said so in the docs) to verify
// the header h+1 that carries the app hash of state h (CometBFT puts block
// h's resulting app hash in header h+1). A State then reads raw state keys
// from the primary's /state query with prove=true and checks each ICS23
// proof, membership or absence, against that app hash with ics23.IavlSpec
// (github.com/cosmos/ics23/go). Coverage is computed on the client by
// attest.ComputeCoverage — the function the application itself answers
// /coverage with — from verified values only; the RPC's JSON is never read.
//
// ICS23 has no range proofs, so State only reads keys it names: the coverage
// key chain (attest.CoverageKeys) is laid out so that every key follows from
// a value read before it.
//
// Every refusal wraps one of the sentinel errors of errors.go:
// ErrHeaderVerification, ErrWitnessConflict, ErrProofInvalid,
// ErrValueMismatch, ErrMissingProof. See docs/attestation.md, "Verifying an
// answer".
package verify
