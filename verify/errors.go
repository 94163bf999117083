package verify

import (
	"errors"
	"fmt"
)

// The failures of a verified read. Every error New, Client.Latest,
// Client.At and State.Get return for a refused answer wraps exactly one of
// them (test with errors.Is); an RPC that cannot be reached or refuses a
// query is an ordinary error wrapping neither.
var (
	// ErrHeaderVerification: the header that carries the app hash could not
	// be verified from the trust anchor — the anchor's header does not have
	// the anchor's hash, a header does not hash to the block ID its commit
	// signs, a commit signature is invalid, less than 2/3 of the trusted
	// voting power signed, the chain ID differs, or the anchor is older
	// than the trust period.
	ErrHeaderVerification = errors.New("verify: header verification failed")

	// ErrWitnessConflict: a witness does not confirm the primary's header —
	// it serves another header at the same height (a fork, or a lie) or one
	// that does not verify — so no witness is left to cross-check against.
	// CometBFT's light client detector found it (light.ErrLightClientAttack,
	// ErrConflictingHeaders, ErrFailedHeaderCrossReferencing, or every
	// witness dropped as faulty).
	ErrWitnessConflict = errors.New("verify: witness conflict")

	// ErrProofInvalid: a proof op does not decode, is not an ICS23 proof of
	// the key asked for (a proof of another key, a batch, the wrong op type)
	// or does not lead to the verified app hash.
	ErrProofInvalid = errors.New("verify: proof invalid")

	// ErrValueMismatch: the answer's value, key or height is not what its
	// proof proves or what was asked: a value beside an absence proof, no
	// value beside a membership proof, a value other than the proof's, an
	// answer for another key or height.
	ErrValueMismatch = errors.New("verify: value does not match its proof")

	// ErrMissingProof: an answer to a prove=true query carries no proof op,
	// or more than one.
	ErrMissingProof = errors.New("verify: missing proof")
)

// ProofError is a refused state read: which key at which height, and why.
// It unwraps to one of ErrProofInvalid, ErrValueMismatch, ErrMissingProof.
type ProofError struct {
	Key    string
	Height int64
	Err    error  // the sentinel
	Detail string // what was seen
}

func (e *ProofError) Error() string {
	return fmt.Sprintf("%v: key %q at height %d: %s", e.Err, e.Key, e.Height, e.Detail)
}

func (e *ProofError) Unwrap() error { return e.Err }

// HeaderError is a header that could not be verified: at which height, the
// sentinel (ErrHeaderVerification or ErrWitnessConflict) and the light
// client's own error.
type HeaderError struct {
	Height int64 // 0: the trust anchor itself, or the latest header
	Err    error // the sentinel
	Cause  error // the light client's error
}

func (e *HeaderError) Error() string {
	if e.Height == 0 {
		return fmt.Sprintf("%v: %v", e.Err, e.Cause)
	}
	return fmt.Sprintf("%v: header %d: %v", e.Err, e.Height, e.Cause)
}

func (e *HeaderError) Unwrap() []error { return []error{e.Err, e.Cause} }

// ErrResponseTooLarge: an RPC answer is longer than MaxResponseBytes. No
// honest answer is; reading it whole would let one RPC exhaust the
// client's memory.
var ErrResponseTooLarge = errors.New("verify: RPC response too large")

// ErrStaleHeader: the latest header the primary serves, verified, is older
// than Config.MaxHeaderAge. A ksb chain makes a block every block interval
// even when idle, so a live chain's latest header is seconds old: the
// primary is behind, or hides newer blocks (a real, signed, old header
// passes every signature and witness check). Client.At still reads any
// height the caller names.
var ErrStaleHeader = errors.New("verify: latest header too old")
