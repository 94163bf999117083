package custody

import (
	"errors"
	"fmt"
)

// ErrInvalidProof matches (with errors.Is) every refusal of [Verify] and
// [VerifyCopy]: the proof or copy does not show possession of the committed
// copy. The error is a [*ProofError]; its cause, returned by Unwrap, is one
// of the errors below, so callers can map each to its own result code.
var ErrInvalidProof = errors.New("custody: invalid proof")

// Causes of a [ProofError].
var (
	// ErrWrongCopy: the proof is for another copy index, or for a
	// commitment of another number of copies, than the custody's.
	ErrWrongCopy = errors.New("wrong copy")

	// ErrWrongSegment: the proof is for another segment than the one
	// challenged.
	ErrWrongSegment = errors.New("wrong segment index")

	// ErrSegmentLength: the segment has the wrong number of bytes
	// ([SegmentSize], or the remainder for the last segment of a blob).
	ErrSegmentLength = errors.New("wrong segment length")

	// ErrWrongSize: a whole copy ([VerifyCopy]) is not of the committed size.
	ErrWrongSize = errors.New("wrong copy size")

	// ErrPathShape: a path has the wrong number of hashes for the committed
	// tree, or a hash that is not 32 bytes long. Checked before any hashing.
	ErrPathShape = errors.New("malformed path")

	// ErrPathMismatch: the segment (or copy) and its paths are well formed
	// but do not hash to the committed root: the data or a path hash is not
	// the committed one.
	ErrPathMismatch = errors.New("path does not reach the committed root")
)

// ErrInvalidArgument is returned when the caller's own arguments are out of
// range: a size of 0 or over [MaxSize], a number of copies outside
// 1..[MaxCopies], a copy or segment index outside its range, an epoch
// position outside its round, duplicate custodies or members. It is never a
// [*ProofError]: it says the caller (the chain's state, the holder's store)
// is inconsistent, not that a prover misbehaved.
var ErrInvalidArgument = errors.New("custody: invalid argument")

// ProofError reports why a proof or a copy was refused. It matches
// [ErrInvalidProof] with errors.Is, and Unwrap returns the cause.
type ProofError struct {
	// Err is the cause: one of ErrWrongCopy, ErrWrongSegment,
	// ErrSegmentLength, ErrWrongSize, ErrPathShape, ErrPathMismatch.
	Err error
	// Detail says what was found and what was expected. It never holds
	// segment bytes.
	Detail string
}

func (e *ProofError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v: %v", ErrInvalidProof, e.Err)
	}
	return fmt.Sprintf("%v: %v: %s", ErrInvalidProof, e.Err, e.Detail)
}

// Unwrap returns the cause.
func (e *ProofError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrInvalidProof].
func (e *ProofError) Is(target error) bool { return target == ErrInvalidProof }

func refuse(cause error, format string, args ...any) error {
	return &ProofError{Err: cause, Detail: fmt.Sprintf(format, args...)}
}

func badArg(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}
