//go:build !unix

package badgeropen

import "errors"

var (
	errLocked      = errors.New("directory is locked by another process")
	errUnsupported = errors.New("directory locks are not supported here")
)

// lockDir cannot take Badger's lock on this platform, so RemoveEmptyLogs
// leaves the directory alone (removing a file another process is creating
// would lose its writes).
func lockDir(string) (func(), error) { return nil, errUnsupported }
