package store

import "errors"

var (
	// ErrNotFound is returned when no copy is stored for a custody, or no
	// record for a meta key.
	ErrNotFound = errors.New("store: not found")

	// ErrClosed is returned by every method called after [Store.Close], and by a
	// second Close.
	ErrClosed = errors.New("store: closed")

	// ErrBadOwner is returned when an owner is not a 33-byte compressed
	// secp256k1 public key on the curve.
	ErrBadOwner = errors.New("store: owner is not a compressed secp256k1 public key")

	// ErrBadVault is returned when a vault string is empty, longer than
	// [MaxVaultLen], or has a character outside [A-Za-z0-9._:-] (the
	// attestation chain's rule for vault keys).
	ErrBadVault = errors.New("store: bad vault public key string")

	// ErrBadCustody is returned when an entry's slot is over 255 or its copy
	// index is not below its number of copies (1 to custody.MaxCopies).
	ErrBadCustody = errors.New("store: bad custody")

	// ErrBadPath is returned when an entry's commit path has more than 6
	// hashes or a hash that is not 32 bytes.
	ErrBadPath = errors.New("store: bad commit path")

	// ErrBadMetaKey is returned when a meta key is empty or longer than
	// [MaxMetaKeyLen], or a scan prefix is longer than [MaxMetaKeyLen].
	ErrBadMetaKey = errors.New("store: bad meta key")

	// ErrEmptyBlob is returned by [Store.Put] for a zero-length blob: no sealed
	// keyshare is empty, so an empty blob is always a sender's mistake.
	ErrEmptyBlob = errors.New("store: empty blob")

	// ErrTooLarge is returned when a blob or its declared size exceeds
	// [MaxBlobSize], or a meta value exceeds [MaxMetaSize].
	ErrTooLarge = errors.New("store: too large")

	// ErrSizeMismatch is returned by [Store.Put] when the blob's length is not
	// [Entry.Size]. Nothing is stored.
	ErrSizeMismatch = errors.New("store: blob size does not match entry")

	// ErrDigestMismatch is returned by [Store.Put] when the blob's SHA-256 is not
	// [Entry.Digest]. Nothing is stored.
	ErrDigestMismatch = errors.New("store: blob digest does not match entry")

	// ErrCorrupt is returned when a stored record cannot be decoded or a stored
	// blob no longer matches its recorded digest (disk corruption or tampering
	// with the database files).
	ErrCorrupt = errors.New("store: stored data is corrupt")
)
