package envelope

import "io"

// Internals exposed to the black-box tests in package envelope_test.

// SealAttempts is how many times Seal tries before a persistent chance match
// fails it.
const SealAttempts = sealAttempts

// FixedPrefix is the part of every scrypt age file the containment checks
// skip.
const FixedPrefix = fixedPrefix

// SetSaltSource makes Seal read its scrypt salts from r until restore is
// called.
func SetSaltSource(r io.Reader) (restore func()) {
	old := saltSource
	saltSource = r
	return func() { saltSource = old }
}

// PostCheck runs the five post-seal checks; open stands for the round trip.
func PostCheck(blob, plaintext []byte, passphrase string, open func([]byte) ([]byte, error)) error {
	return postCheck(blob, plaintext, passphrase, open)
}

// WorkFactor is the work factor Seal uses for opts.
func WorkFactor(opts *SealOptions) (int, error) { return opts.workFactor() }

// FailCopyChecks makes the next n post-seal checks of SealCopies' copies
// fail as a chance match of check 5 would, until restore is called. It
// returns the number of checks run so far.
func FailCopyChecks(n int) (checks func() int, restore func()) {
	old := copyCheck
	ran := 0
	copyCheck = func(blob, plaintext []byte, pass string, open func([]byte) ([]byte, error)) error {
		ran++
		if ran <= n {
			return &SanityError{Check: 5}
		}
		return old(blob, plaintext, pass, open)
	}
	return func() int { return ran }, func() { copyCheck = old }
}
