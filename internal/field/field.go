package field

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ksb-project/ksb/identity"
)

const (
	// MaxVaultLen caps a vault public key string. It covers a bech32
	// "thorpub1…" key (about 80 characters) and the hex of an uncompressed
	// 65-byte key (130). It is the attestation chain's limit since its first
	// version (a consensus rule: lowering it would split validators that
	// replay old blocks); the store and the push protocol use the same.
	MaxVaultLen = 160

	// OwnerKeySize is the length of an owner key, a compressed secp256k1
	// public key (the owner node's identity key).
	OwnerKeySize = identity.PubKeySize

	// MaxAddressLen is the longest string bech32 allows (BIP 173).
	MaxAddressLen = 90

	// DigestSize is the size of a blob digest: sha256 of the sealed blob.
	DigestSize = sha256.Size

	// MaxSize caps the size an attestation may claim for a blob. A sealed
	// keyshare is tens of kilobytes, so anything over 1 GiB is an error, not
	// a keyshare; the store's own cap is far lower.
	MaxSize = 1 << 30
)

// Vault checks a vault public key string, as `ksb inspect` prints it: 1 to
// MaxVaultLen characters of [A-Za-z0-9._:-] — bech32 and hex keys, and no
// '/', which separates the parts of store and chain state keys. The error
// wraps ErrVault.
func Vault(v string) error {
	if v == "" || len(v) > MaxVaultLen {
		return fmt.Errorf("%w: %d characters, want 1 to %d", ErrVault, len(v), MaxVaultLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !vaultChar(c) {
			what := fmt.Sprintf("character %q", c)
			if c < ' ' || c > '~' {
				what = fmt.Sprintf("byte %#02x", c)
			}
			return fmt.Errorf("%w %q: %s at %d not allowed (want [A-Za-z0-9._:-])", ErrVault, printable(v), what, i)
		}
	}
	return nil
}

func vaultChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
}

// printable shortens v for an error message: a refused key may be long.
func printable(v string) string {
	const max = 48
	if len(v) > max {
		return v[:max] + "…"
	}
	return v
}

// OwnerKey checks an owner key: OwnerKeySize bytes, a compressed secp256k1
// public key on the curve (identity.ParsePubKey). The error wraps ErrOwner.
func OwnerKey(pub []byte) error {
	if _, err := identity.ParsePubKey(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrOwner, err)
	}
	return nil
}

// Address checks a node address: at most MaxAddressLen characters, lower
// case, bech32 with prefix hrp over a 20-byte key hash (identity.ParseAddress).
// The error wraps ErrAddress.
func Address(a, hrp string) error {
	if len(a) > MaxAddressLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrAddress, len(a), MaxAddressLen)
	}
	got, _, err := identity.ParseAddress(a)
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrAddress, a, err)
	}
	if got != hrp || a != strings.ToLower(a) {
		return fmt.Errorf("%w %q: want a lower-case %q address", ErrAddress, a, hrp)
	}
	return nil
}

// Digest checks a digest's length. The error wraps ErrDigest.
func Digest(d []byte) error {
	if len(d) != DigestSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrDigest, len(d), DigestSize)
	}
	return nil
}

// ParseDigestHex decodes a digest written as lower-case hex. The error wraps
// ErrDigest.
func ParseDigestHex(s string) ([DigestSize]byte, error) {
	var d [DigestSize]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != DigestSize || hex.EncodeToString(b) != s {
		return d, fmt.Errorf("%w: %q is not %d lower-case hex characters", ErrDigest, printable(s), 2*DigestSize)
	}
	copy(d[:], b)
	return d, nil
}

// Size checks a blob size in bytes: 1 to MaxSize. The error wraps ErrSize.
func Size(n uint64) error {
	if n == 0 || n > MaxSize {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrSize, n, MaxSize)
	}
	return nil
}
