// Package envelope seals a keyshare file so that only the node's mnemonic
// opens it, as ADR 004 specifies, and opens such a sealed blob safely even
// when it comes from someone hostile.
//
// A sealed blob is a binary age v1 file (https://age-encryption.org/v1) with
// exactly one scrypt recipient stanza whose passphrase is the canonical
// mnemonic (identity.ParseMnemonic: 24 full lower-case words, single spaces,
// whatever spelling the caller passed), and whose plaintext is exactly one xz stream
// (LZMA2, CRC64) of the file's exact bytes. Nothing else is inside, so stock
// tools open it when ksb is gone:
//
//	age -d backup.age | xz -d > localstate-<vault>.json
//
// [Seal] runs the ADR's checks. Before sealing ([CheckMnemonic]): the
// mnemonic has 24 words, is valid BIP39, and the Shannon entropy of its byte
// distribution ([Entropy]) is at least [MinEntropy]. After sealing, all five:
// the output differs from the input; it opens back to the input (through the
// full age header, MAC, payload and xz path); it contains neither the input,
// nor the passphrase, nor any word of the passphrase. The word check skips
// only the 32 bytes every age scrypt file starts with,
// "age-encryption.org/v1\n-> scrypt ", which are the same in every file and
// hold the BIP39 words "age" and "cry" by construction. A chance match
// elsewhere (random bytes spelling a short word) makes Seal start over with a
// fresh salt, file key and nonce, a bounded number of times.
//
// Seal derives the scrypt key once and uses it both to wrap the file key and
// to verify the result, so sealing costs one scrypt, as opening does.
//
// [SealCopies] seals one plaintext into r envelopes for r holders with that
// one scrypt: the same salt and key, a fresh age file key (so payload nonce,
// payload key and header MAC) per copy, every post-seal check on every copy.
// The copies have one size, share only their first 58 bytes (version and
// stanza lines), and each opens with Open and with stock age.
//
// [Open] refuses, before any expensive work, blobs larger than
// [Limits.MaxBlob] and scrypt work factors above [Limits.MaxWorkFactor] (at
// most [MaxWorkFactor]: 2^20 × 1 KiB = 1 GiB of memory, or
// [MaxTrustedWorkFactor] for a blob the caller trusts), and stops
// decompressing at [Limits.MaxPlaintext]. Each failure has its own sentinel
// error in errors.go.
//
// The byte format, every check and every limit are described, with reasons,
// in docs/envelope.md.
package envelope
