package badgeropen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/dgraph-io/badger/v4"
)

// crashLeftover matches the log files Badger creates empty and sizes a moment
// later: memtable write-ahead logs (00001.mem) and value logs (000001.vlog).
var crashLeftover = regexp.MustCompile(`^[0-9]+\.(mem|vlog)$`)

// Open removes the empty log files a crash left in opts.Dir and opts.ValueDir
// (see the package documentation), logging each to opts.Logger as a warning,
// then calls badger.Open(opts). In-memory and read-only databases are opened
// as they are. If another process holds the directory, nothing is removed and
// badger.Open reports the lock.
func Open(opts badger.Options) (*badger.DB, error) {
	if !opts.InMemory && !opts.ReadOnly {
		dirs := []string{opts.Dir}
		if opts.ValueDir != "" && filepath.Clean(opts.ValueDir) != filepath.Clean(opts.Dir) {
			dirs = append(dirs, opts.ValueDir)
		}
		for _, dir := range dirs {
			removed, err := RemoveEmptyLogs(dir)
			if err != nil {
				return nil, err
			}
			for _, name := range removed {
				if opts.Logger != nil {
					opts.Logger.Warningf("removed %s: an empty log file left by a crash (badger#2207); it held no data", filepath.Join(dir, name))
				}
			}
		}
	}
	return badger.Open(opts)
}

// RemoveEmptyLogs removes the 0-byte .mem and .vlog files of the Badger
// directory dir and returns their names. It does so only under Badger's
// directory lock; when another process holds the lock it removes nothing and
// returns no error. A directory that does not exist yet has nothing to
// remove.
func RemoveEmptyLogs(dir string) (removed []string, err error) {
	unlock, err := lockDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case errors.Is(err, errLocked) || errors.Is(err, errUnsupported):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	defer unlock()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !crashLeftover.MatchString(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return removed, fmt.Errorf("%s: %w", filepath.Join(dir, e.Name()), err)
		}
		if fi.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("removing empty log file: %w", err)
		}
		removed = append(removed, e.Name())
	}
	if len(removed) > 0 {
		if err := syncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// syncDir makes the removals durable, so a crash right after cannot bring an
// empty file back in front of a newer one with the same number.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
