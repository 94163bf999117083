package envelope

import (
	"errors"
	"fmt"
)

var (
	// ErrWeakMnemonic is returned by CheckMnemonic and Seal when the mnemonic
	// fails a pre-seal check: it does not have 24 words, is not valid BIP39
	// (the error then also wraps identity.ErrInvalidMnemonic), or the entropy
	// of its byte distribution is below MinEntropy.
	ErrWeakMnemonic = errors.New("envelope: mnemonic refused")

	// ErrSanityCheck is returned by Seal when a post-seal check fails; the
	// error is a *SanityError saying which check and after how many attempts.
	ErrSanityCheck = errors.New("envelope: post-seal sanity check failed")

	// ErrWrongMnemonic is returned by Open when the mnemonic does not unwrap
	// the blob's file key, or is not a valid BIP39 mnemonic (then it also
	// wraps identity.ErrInvalidMnemonic). age cannot tell a wrong passphrase
	// from an altered scrypt stanza (salt, work factor or wrapped key): both
	// fail the same authentication, so both give this error.
	ErrWrongMnemonic = errors.New("envelope: wrong mnemonic")

	// ErrCorrupted is returned by Open when the blob is an age file but is
	// malformed, truncated or altered: its header does not parse, its header
	// MAC does not match, or its payload fails authentication.
	ErrCorrupted = errors.New("envelope: corrupted blob")

	// ErrOverLimits is returned when a size or cost exceeds a limit; the
	// error is a *LimitError naming the limit.
	ErrOverLimits = errors.New("envelope: over limits")

	// ErrNotAgeFile is returned by Open when the blob does not start with the
	// binary age v1 header line (an empty blob, another format, or an
	// ASCII-armored age file, which envelopes never are).
	ErrNotAgeFile = errors.New("envelope: not a binary age file")

	// ErrNotEnvelope is returned by Open for an age file that is not an
	// envelope: it is not encrypted to exactly one scrypt stanza, or its
	// authenticated plaintext is not exactly one valid xz stream.
	ErrNotEnvelope = errors.New("envelope: not a ksb envelope")

	// ErrBadOptions is returned when SealOptions or Limits hold a value out
	// of range, or a work factor below MinWorkFactor without
	// AllowLowWorkFactor.
	ErrBadOptions = errors.New("envelope: invalid options")
)

// LimitError reports which limit an input exceeded. It wraps ErrOverLimits.
type LimitError struct {
	// What names the limit: "blob size", "plaintext size" or "scrypt work
	// factor".
	What string
	// Limit is the value allowed.
	Limit int64
	// Got is the offending value, or 0 when it is only known to exceed
	// Limit (decompression stops at the first byte over the limit).
	Got int64
}

func (e *LimitError) Error() string {
	if e.Got == 0 {
		return fmt.Sprintf("%v: %s exceeds the maximum %d", ErrOverLimits, e.What, e.Limit)
	}
	return fmt.Sprintf("%v: %s %d exceeds the maximum %d", ErrOverLimits, e.What, e.Got, e.Limit)
}

// Unwrap returns ErrOverLimits.
func (e *LimitError) Unwrap() error { return ErrOverLimits }

// SanityError reports a failed post-seal check. It wraps ErrSanityCheck. It
// never holds secret material: not the matched word, not the passphrase.
type SanityError struct {
	// Check is the number of the failed check in ADR 004's list:
	// 1 the output equals the input; 2 the output does not open back to the
	// input; 3 the output contains the input; 4 the output contains the
	// passphrase; 5 the output contains a word of the passphrase.
	Check int
	// Attempts is how many times Seal sealed before giving up (0 when the
	// check cannot pass for this input, so Seal did not try).
	Attempts int

	cause error // why check 2 failed, if it did
}

var checkNames = map[int]string{
	1: "output equals the input",
	2: "output does not open back to the input",
	3: "output contains the input",
	4: "output contains the passphrase",
	5: "output contains a word of the passphrase",
}

func (e *SanityError) Error() string {
	msg := fmt.Sprintf("%v: check %d (%s)", ErrSanityCheck, e.Check, checkNames[e.Check])
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	if e.Attempts > 0 {
		msg += fmt.Sprintf(" after %d attempt(s)", e.Attempts)
	}
	return msg
}

// Unwrap returns ErrSanityCheck.
func (e *SanityError) Unwrap() error { return ErrSanityCheck }
