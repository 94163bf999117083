package keyshare

import (
	"errors"
	"fmt"
)

// ErrNotKeyshare matches (with errors.Is) every refusal of [Parse] and
// [ParseFile]: the input is not a keyshare file ksb backs up. The error is a
// [*NotKeyshareError]; its cause is one of the errors below.
var ErrNotKeyshare = errors.New("not a keyshare file")

// Causes of a [NotKeyshareError].
var (
	// ErrEmpty: the file is empty or only white space.
	ErrEmpty = errors.New("empty")

	// ErrTooLarge: the file is longer than [MaxFileSize].
	ErrTooLarge = errors.New("too large")

	// ErrNotRegularFile: ParseFile was given a directory, device, pipe or
	// socket.
	ErrNotRegularFile = errors.New("not a regular file")

	// ErrSyntax: the file is not well-formed JSON, typically because it was
	// truncated.
	ErrSyntax = errors.New("malformed JSON")

	// ErrUnknownFormat: the file is JSON but neither a go-tss KeygenLocalState
	// nor tss-lib save data.
	ErrUnknownFormat = errors.New("neither go-tss KeygenLocalState nor tss-lib save data")

	// ErrMissingField: a field every share of the format has is absent or null.
	ErrMissingField = errors.New("missing field")

	// ErrBadField: a field has the wrong type or an impossible value.
	ErrBadField = errors.New("malformed field")

	// ErrNotOnCurve: a public key point is not on its curve.
	ErrNotOnCurve = errors.New("point not on curve")

	// ErrInconsistent: two parts of the file disagree, e.g. a go-tss pub_key
	// that is not the save data's vault key, or per-party lists of different
	// lengths.
	ErrInconsistent = errors.New("inconsistent share")
)

// NotKeyshareError reports why input is not a keyshare file. It matches
// [ErrNotKeyshare] with errors.Is, and Unwrap returns the cause.
type NotKeyshareError struct {
	// Field is the JSON path of the offending field, e.g.
	// "local_data.ECDSAPub.Coords"; empty when the problem is the whole file.
	Field string
	// Err is the cause: one of the sentinel errors of this package, possibly
	// wrapped with detail.
	Err error
}

func (e *NotKeyshareError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %v", ErrNotKeyshare, e.Err)
	}
	return fmt.Sprintf("%v: %s: %v", ErrNotKeyshare, e.Field, e.Err)
}

// Unwrap returns the cause.
func (e *NotKeyshareError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrNotKeyshare].
func (e *NotKeyshareError) Is(target error) bool { return target == ErrNotKeyshare }

// refuse builds a *NotKeyshareError for field with cause err.
func refuse(field string, err error) error {
	return &NotKeyshareError{Field: field, Err: err}
}

// refusef is refuse with detail added to the cause.
func refusef(field string, err error, format string, args ...any) error {
	return &NotKeyshareError{Field: field, Err: fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))}
}
