//go:build unix

package badgeropen

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var (
	errLocked      = errors.New("directory is locked by another process")
	errUnsupported = errors.New("directory locks are not supported here")
)

// lockDir takes the lock badger.Open takes: an exclusive, non-blocking flock
// of the directory itself (badger's acquireDirectoryLock). It returns
// errLocked when another open file description holds it — another process,
// or a database this process has open. Closing the descriptor releases it.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
