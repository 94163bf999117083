package envelope

import (
	"errors"
	"fmt"
	"strconv"
)

// MaxCopies is the most copies SealCopies makes: the chain's cap on the
// replication factor r (attest.MaxReplication, 64). All copies are in memory
// at once, so at the largest plaintext that is 64 × DefaultMaxBlob ≈ 68 MiB,
// a quarter of the 256 MiB scrypt already needs; each copy adds one age
// encryption and one opening check (milliseconds for a real share).
const MaxCopies = 64

// copyCheck runs the post-seal checks on one copy; tests replace it
// (export_test.go) to force chance matches.
var copyCheck = postCheck

// SealCopies seals plaintext into copies independent age files, for r
// holders that must not be able to answer for one another: one scrypt
// (one salt, one derived key, the same stanza line in every copy), and per
// copy a fresh age file key, so a fresh payload nonce and key and a payload
// that shares no byte with any other copy's. Every copy opens with Open and
// with `age -d | xz -d`, is the size of every other, and passes the five
// post-seal checks; a chance match in one copy seals that copy again (up to
// the same bounded number of attempts as Seal), a chance match in the
// shared stanza line draws a new salt (and runs scrypt again).
//
// The checks and errors are Seal's; copies outside 1..MaxCopies is
// ErrBadOptions. docs/envelope.md says why wrapping r file keys with one
// scrypt key is sound.
func SealCopies(plaintext []byte, mnemonic string, copies int, opts *SealOptions) ([][]byte, error) {
	if copies < 1 || copies > MaxCopies {
		return nil, fmt.Errorf("%w: %d copies, want 1 to %d", ErrBadOptions, copies, MaxCopies)
	}
	z, pass, wf, err := prepareSeal(plaintext, mnemonic, opts)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		r, err := newKeyRecipient(pass, wf)
		if err != nil {
			return nil, err
		}
		// Every copy's stanza line is "-> scrypt <salt> <wf>": a match in it
		// would be in every copy, whatever its file key.
		err = containmentCheck([]byte(b64(r.salt)+" "+strconv.Itoa(wf)), plaintext, pass)
		if err != nil {
			if attempt == sealAttempts {
				var se *SanityError
				if errors.As(err, &se) {
					se.Attempts = attempt
				}
				return nil, err
			}
			continue
		}
		out := make([][]byte, copies)
		for i := range out {
			if out[i], err = sealCopy(z, plaintext, pass, r); err != nil {
				return nil, fmt.Errorf("copy %d: %w", i, err)
			}
		}
		return out, nil
	}
}

// sealCopy encrypts z to r with a fresh file key and checks the result,
// encrypting again after a chance match, at most sealAttempts times.
func sealCopy(z, plaintext []byte, pass string, r *keyRecipient) ([]byte, error) {
	open := func(b []byte) ([]byte, error) { return openWith(b, (*keyIdentity)(r), DefaultLimits()) }
	for attempt := 1; ; attempt++ {
		blob, err := encryptTo(z, r)
		if err != nil {
			return nil, err
		}
		err = copyCheck(blob, plaintext, pass, open)
		if err == nil {
			return blob, nil
		}
		var se *SanityError
		if !errors.As(err, &se) || se.Check == 2 || attempt == sealAttempts {
			if se != nil {
				se.Attempts = attempt
			}
			return nil, err
		}
	}
}
