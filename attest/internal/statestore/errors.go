package statestore

import "errors"

var (
	// ErrClosed is returned by every method of a closed Store, and by the
	// Snapshots taken from it.
	ErrClosed = errors.New("state store closed")

	// ErrEmptyKey is returned when a key is empty: ICS23 cannot prove it.
	ErrEmptyKey = errors.New("empty key")

	// ErrEmptyValue is returned by Set for an empty value: ICS23 cannot prove
	// it. Callers that need an empty value must encode it.
	ErrEmptyValue = errors.New("empty value")

	// ErrVersionNotCommitted is returned by At for a version above the latest
	// committed one.
	ErrVersionNotCommitted = errors.New("version not committed")

	// ErrVersionPruned is returned by At for a version older than the ones
	// kept (Options.KeepRecent), and by a Snapshot read whose version was
	// pruned while it read.
	ErrVersionPruned = errors.New("version not kept")

	// ErrBadVersion is returned by SetInitialVersion and At for a version
	// below 1, and by SetInitialVersion once a version is committed.
	ErrBadVersion = errors.New("bad version")

	// ErrBadProof is returned by VerifyProofOp when a proof does not show
	// what it is checked for.
	ErrBadProof = errors.New("proof does not verify")
)
