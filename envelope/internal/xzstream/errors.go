package xzstream

import "errors"

var (
	// ErrFormat is returned when the input is not exactly one well-formed xz
	// stream with LZMA2 blocks, or when a size, index or check does not match.
	ErrFormat = errors.New("not a valid xz stream")

	// ErrTooLarge is returned when the decompressed data would exceed the
	// caller's limit. Decoding stops at the first byte over the limit.
	ErrTooLarge = errors.New("decompressed data exceeds the limit")
)
