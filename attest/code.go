package attest

import "errors"

// Result codes of CheckTx, FinalizeBlock and Query. 0 is success; every other
// code names the sentinel error of the same meaning. docs/attestation.md
// lists them with where each is given.
const (
	CodeOK           uint32 = 0
	CodeMalformed    uint32 = 1  // ErrMalformed
	CodeTooLarge     uint32 = 2  // ErrTooLarge
	CodeBadSignature uint32 = 3  // ErrBadSignature
	CodeWrongChain   uint32 = 4  // ErrWrongChain
	CodeBadSequence  uint32 = 5  // ErrBadSequence
	CodeUnauthorized uint32 = 6  // ErrUnauthorized
	CodeInvalid      uint32 = 7  // ErrInvalid
	CodeNotFound     uint32 = 8  // ErrNotFound
	CodeExists       uint32 = 9  // ErrExists
	CodeBadQuery     uint32 = 10 // ErrBadQuery
	CodeInternal     uint32 = 11 // ErrInternal
	CodeMempoolFull  uint32 = 12 // ErrMempoolFull (CheckTx only)
	CodeNoChallenge  uint32 = 13 // ErrNoChallenge
	CodeWrongSegment uint32 = 14 // ErrWrongSegment
	CodeBadProof     uint32 = 15 // ErrBadProof
	CodeNotAssigned  uint32 = 16 // ErrNotAssigned
	CodeRateLimited  uint32 = 17 // ErrRateLimited
)

// Codespace is the codespace of every non-zero code the application returns.
const Codespace = "ksb"

var codeErrs = []struct {
	code uint32
	err  error
}{
	{CodeMalformed, ErrMalformed},
	{CodeTooLarge, ErrTooLarge},
	{CodeBadSignature, ErrBadSignature},
	{CodeWrongChain, ErrWrongChain},
	{CodeBadSequence, ErrBadSequence},
	{CodeUnauthorized, ErrUnauthorized},
	{CodeInvalid, ErrInvalid},
	{CodeNotFound, ErrNotFound},
	{CodeExists, ErrExists},
	{CodeBadQuery, ErrBadQuery},
	{CodeInternal, ErrInternal},
	{CodeMempoolFull, ErrMempoolFull},
	{CodeNoChallenge, ErrNoChallenge},
	{CodeWrongSegment, ErrWrongSegment},
	{CodeBadProof, ErrBadProof},
	{CodeNotAssigned, ErrNotAssigned},
	{CodeRateLimited, ErrRateLimited},
}

// errCode returns the code of the first sentinel err wraps; CodeInternal for
// any other error.
func errCode(err error) uint32 {
	if err == nil {
		return CodeOK
	}
	// ErrTooLarge is checked before ErrMalformed: a decoding error may wrap
	// both, and the cap is the more precise reason.
	if errors.Is(err, ErrTooLarge) {
		return CodeTooLarge
	}
	for _, ce := range codeErrs {
		if errors.Is(err, ce.err) {
			return ce.code
		}
	}
	return CodeInternal
}

func codeErr(code uint32) error {
	for _, ce := range codeErrs {
		if ce.code == code {
			return ce.err
		}
	}
	return nil
}
