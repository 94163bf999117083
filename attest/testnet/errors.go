package testnet

import "errors"

var (
	// ErrBadOptions is returned when Options cannot describe a network: no
	// directory, fewer than one node or validator, or ports out of range.
	ErrBadOptions = errors.New("bad testnet options")

	// ErrDirNotEmpty is returned when the target directory exists and is not
	// empty: init never overwrites a network.
	ErrDirNotEmpty = errors.New("testnet directory is not empty")

	// ErrBadKeyshares is returned when the keyshares directory cannot be read
	// or holds a file that is not a keyshare.
	ErrBadKeyshares = errors.New("bad keyshares directory")
)
