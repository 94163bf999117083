package field

import "errors"

var (
	// ErrVault is returned for a vault key that is empty, longer than
	// MaxVaultLen, or has a character outside [A-Za-z0-9._:-].
	ErrVault = errors.New("bad vault key")

	// ErrOwner is returned for an owner key that is not a 33-byte compressed
	// secp256k1 public key on the curve.
	ErrOwner = errors.New("bad owner key")

	// ErrAddress is returned for a node address that is not a lower-case
	// bech32 address of the expected prefix over a 20-byte key hash.
	ErrAddress = errors.New("bad node address")

	// ErrDigest is returned for a digest that is not DigestSize bytes (or, in
	// hex, not 2*DigestSize lower-case hex characters).
	ErrDigest = errors.New("bad digest")

	// ErrSize is returned for a blob size of 0 or over MaxSize.
	ErrSize = errors.New("bad blob size")
)
