package identity

import "errors"

var (
	// ErrInvalidMnemonic is returned when a mnemonic has a word outside the BIP39
	// English word list, a word count BIP39 does not allow, or a bad checksum.
	ErrInvalidMnemonic = errors.New("invalid BIP39 mnemonic")

	// ErrNoMnemonic is returned by Read when no source gave a mnemonic: no file
	// was named, the environment variable is unset and standard input is not a
	// terminal.
	ErrNoMnemonic = errors.New("no mnemonic: use --mnemonic-file FILE, --mnemonic-file - (standard input), KSB_MNEMONIC, or a terminal")

	// ErrInsecureFile matches an *InsecureFileError: a mnemonic file its
	// group or other users may read or write.
	ErrInsecureFile = errors.New("mnemonic file is not private")
	// ErrBadHRP is returned for a bech32 human-readable prefix that BIP-173
	// does not allow, or that cannot prefix a node address.
	ErrBadHRP = errors.New("bad bech32 prefix")
	// ErrBadSignature is returned by Verify when a signature is malformed, not in
	// canonical low-S form, or does not verify under the public key.
	ErrBadSignature = errors.New("bad signature")

	// ErrBadPubKey is returned when bytes are not a 33-byte compressed secp256k1
	// public key on the curve.
	ErrBadPubKey = errors.New("bad secp256k1 public key")

	// ErrBadAddress is returned when a string is not a bech32 node address with a
	// 20-byte payload.
	ErrBadAddress = errors.New("bad node address")
)
