// Package safefile writes files that must never be half-written or silently
// replaced: recovered keyshares and opened or sealed backups.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrExists is returned by Write when the file exists and replace is false.
// The existing file is left untouched.
var ErrExists = errors.New("file exists")

// Write writes data to path with the given mode through a temporary file in
// the same directory, synced, then hard-linked into place (replace false: the
// link fails if path exists, even if it appeared meanwhile) or renamed over
// it (replace true). On any failure the temporary file is removed and path is
// untouched; the directory is synced after, so the new entry is durable.
func Write(path string, data []byte, mode os.FileMode, replace bool) (err error) {
	dir := filepath.Dir(path)
	if !replace {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	defer func() {
		tmp.Close()
		os.Remove(name) // after a link, the temporary name only; else all
	}()
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if replace {
		if err := os.Rename(name, path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	} else {
		err := os.Link(name, path)
		switch {
		case errors.Is(err, os.ErrExist):
			return fmt.Errorf("%s: %w", path, ErrExists)
		case err != nil:
			// No hard links here (FAT, some network file systems): check,
			// then rename, accepting the small race in between.
			if _, serr := os.Lstat(path); serr == nil {
				return fmt.Errorf("%s: %w", path, ErrExists)
			}
			if err := os.Rename(name, path); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
