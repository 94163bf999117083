package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// settleTime is how long a file's size and modification time must stay the
	// same before it is read as complete. Keygen writes a share in one
	// WriteFile call of at most a few hundred KB, which takes milliseconds; half
	// a second is long enough to see a writer still at work and short enough
	// that a backup starts right after keygen.
	settleTime = 500 * time.Millisecond

	// rescanInterval is how often the whole directory is listed even without
	// a file-system event, in case an event was lost (inotify queue overflow,
	// a directory re-created under us).
	rescanInterval = 30 * time.Second
)

// candidate is a file in the keyshare directory that may be a share.
type candidate struct {
	Path    string
	Size    int64
	ModTime time.Time
}

// isCandidateName says whether a file name is looked at: JSON files, not
// hidden and not editor or temp files. What the file holds is then decided by
// the keyshare parser.
func isCandidateName(name string) bool {
	return strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".")
}

// watcher reports each complete version of every candidate file in dir: once
// at start-up for files already there, then whenever a file is created or
// rewritten and has settled.
type watcher struct {
	dir    string
	settle time.Duration
	log    *slog.Logger
	// reported holds the version (size, mtime) last sent per path, so a file is
	// handed over once per version.
	reported map[string]candidate
}

func newWatcher(dir string, log *slog.Logger) *watcher {
	return &watcher{dir: dir, settle: settleTime, log: log, reported: map[string]candidate{}}
}

// run sends settled files to out until ctx is done. It logs the directory
// it watches, and warns when it has to create it: a typo in
// backup.keyshares_dir would otherwise make an empty directory nobody
// writes to, and back up nothing, silently.
func (w *watcher) run(ctx context.Context, out chan<- candidate) error {
	dir := w.dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if fi, err := os.Stat(w.dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("keyshare directory %s is not a directory", dir)
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(w.dir, 0o700); err != nil {
			return err
		}
		w.log.Warn("keyshare directory did not exist; created it empty. If keygen writes its files elsewhere, nothing is backed up: check backup.keyshares_dir",
			"dir", dir)
	} else if err != nil {
		return fmt.Errorf("keyshare directory %s: %w", dir, err)
	}
	w.log.Info("watching keyshare directory", "dir", dir)
	// Without file-system events (inotify limits, an unsupported file
	// system) the periodic rescan still finds every file, only later.
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw, err := fsnotify.NewWatcher(); err != nil {
		w.log.Warn("no file-system events; relying on rescans", "every", rescanInterval, "err", err)
	} else {
		defer fw.Close()
		if err := fw.Add(w.dir); err != nil {
			w.log.Warn("no file-system events; relying on rescans", "every", rescanInterval, "err", err)
		} else {
			events, errs = fw.Events, fw.Errors
		}
	}
	rescan := time.NewTicker(rescanInterval)
	defer rescan.Stop()
	// pending holds the last seen version of files not yet settled.
	pending := map[string]candidate{}
	w.scan(pending)
	timer := time.NewTimer(w.settle)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if isCandidateName(filepath.Base(ev.Name)) && ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename|fsnotify.Chmod) != 0 {
				pending[ev.Name] = candidate{Path: ev.Name, Size: -1}
				resetTimer(timer, w.settle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("file watcher error; rescanning", "err", err)
			w.scan(pending)
			resetTimer(timer, w.settle)
		case <-rescan.C:
			w.scan(pending)
			resetTimer(timer, w.settle)
		case <-timer.C:
			for _, c := range w.settled(pending) {
				select {
				case out <- c:
				case <-ctx.Done():
					return nil
				}
			}
			if len(pending) > 0 {
				timer.Reset(w.settle)
			}
		}
	}
}

// scan adds every candidate file in the directory to pending.
func (w *watcher) scan(pending map[string]candidate) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		w.log.Warn("listing keyshare directory", "dir", w.dir, "err", err)
		return
	}
	for _, e := range entries {
		if e.Type().IsRegular() && isCandidateName(e.Name()) {
			p := filepath.Join(w.dir, e.Name())
			if _, ok := pending[p]; !ok {
				pending[p] = candidate{Path: p, Size: -1}
			}
		}
	}
}

// settled stats every pending file and returns, sorted by path, those whose
// size and mtime did not change since the last look and that were not
// reported in this version already.
func (w *watcher) settled(pending map[string]candidate) []candidate {
	var out []candidate
	for p, last := range pending {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			delete(pending, p) // removed, or not a file: nothing to back up
			continue
		}
		now := candidate{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}
		if now != last {
			pending[p] = now // still changing (or first look): look again later
			continue
		}
		delete(pending, p)
		if w.reported[p] == now {
			continue
		}
		w.reported[p] = now
		out = append(out, now)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}
