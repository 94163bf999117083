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
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ksb-project/ksb/keyshare"
)

const (
	// settleTime is how long a file that is not (yet) a complete keyshare,
	// or that changed again soon after it was read, must keep its size and
	// modification time before it is reported anyway. Keygen writes a share
	// in one WriteFile call of at most a few hundred KB, which takes
	// milliseconds; half a second is long enough to see a writer still at
	// work and short enough that a backup starts soon after.
	settleTime = 500 * time.Millisecond

	// maxEventBatch bounds the events taken in one go before the files they
	// name are read: keygen's writes of a churn make a few dozen, and a
	// writer that never stops must not keep the watcher from reading.
	maxEventBatch = 1024

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
// rewritten.
//
// A file is read as soon as an event names it, and reported at once if it
// parses as a complete keyshare (keyshare.ReadFile, the owner's own check)
// and its size and modification time are the same before and after the
// read. That is safe without waiting for the writer to be done: a JSON
// document cut short does not parse (keygen's WriteFile truncates the file
// first, and a rename lands it whole), and the stat around the read shows
// that the bytes read are one version. If the writer changes the file after
// it was read, that is simply a new version, with a new size or mtime: it is
// reported again, sealed again, and its commitment supersedes the one of
// the version read before. Only the cost grows (a seal and a Commit), so a
// file that changes again within settleTime of being reported, and a file
// that does not parse (half written, or not a keyshare, which the owner
// then reports), fall back to the settle rule: reported once its size and
// mtime stayed the same for settleTime.
//
// The watcher tells the owner when it has nothing left to report (Idle,
// Quiet), so that the versions keygen writes together share one Commit
// without a fixed delay.
type watcher struct {
	dir    string
	settle time.Duration
	log    *slog.Logger
	// read says whether a file parses as a complete keyshare;
	// keyshare.ReadFile, or a test's stand-in.
	read func(path string) error
	// reported holds the version (size, mtime) last sent per path, so a file is
	// handed over once per version; readAt when a version was last reported
	// from the read-at-once path.
	reported map[string]candidate
	readAt   map[string]time.Time
	// waiting counts the files seen and not yet handed over (unsettled, or
	// being sent); quiet receives a value whenever it drops to zero.
	waiting atomic.Int64
	quiet   chan struct{}
}

func newWatcher(dir string, log *slog.Logger) *watcher {
	w := &watcher{
		dir: dir, settle: settleTime, log: log,
		read:     func(p string) error { _, _, err := keyshare.ReadFile(p); return err },
		reported: map[string]candidate{}, readAt: map[string]time.Time{},
		quiet: make(chan struct{}, 1),
	}
	w.waiting.Store(1) // not idle before the first look at the directory
	return w
}

// Idle reports whether the watcher has handed over every file it has seen:
// none is waiting to settle or being sent. Safe for concurrent use.
func (w *watcher) Idle() bool { return w.waiting.Load() == 0 }

// Quiet returns a channel that receives a value after the watcher becomes
// idle (at most one value is buffered, so a receiver checks Idle again: a
// file may have come in since).
func (w *watcher) Quiet() <-chan struct{} { return w.quiet }

// setWaiting records n files waiting, and signals Quiet at zero.
func (w *watcher) setWaiting(n int) {
	w.waiting.Store(int64(n))
	if n == 0 {
		select {
		case w.quiet <- struct{}{}:
		default:
		}
	}
}

// run sends complete files to out until ctx is done. It logs the directory
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
	// pending holds the last seen version of files not yet reported (Size
	// -1: not looked at yet); touched the files an event or a scan named
	// since they were last read.
	pending := map[string]candidate{}
	touched := map[string]bool{}
	note := func(ev fsnotify.Event) {
		if isCandidateName(filepath.Base(ev.Name)) && ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename|fsnotify.Chmod) != 0 {
			if _, ok := pending[ev.Name]; !ok {
				pending[ev.Name] = candidate{Path: ev.Name, Size: -1}
			}
			touched[ev.Name] = true
		}
	}
	w.scan(pending, touched)
	timer := time.NewTimer(w.settle)
	defer timer.Stop()
	var ready []candidate
	for {
		ready = append(ready[:0], w.readComplete(pending, touched)...)
		clear(touched)
		// A file sent counts as waiting until the owner has taken it, so
		// that the owner never sees the watcher idle while it still has a
		// file for it.
		for i, c := range ready {
			w.setWaiting(len(pending) + len(ready) - i)
			select {
			case out <- c:
			case <-ctx.Done():
				return nil
			}
		}
		w.setWaiting(len(pending))
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			note(ev)
			// The other events of the same write (or of the other files
			// keygen wrote with it): read each file once for all of them.
		drain:
			for range maxEventBatch {
				select {
				case ev, ok := <-events:
					if !ok {
						events = nil
						break drain
					}
					note(ev)
				default:
					break drain
				}
			}
			resetTimer(timer, w.settle)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("file watcher error; rescanning", "err", err)
			w.scan(pending, touched)
			resetTimer(timer, w.settle)
		case <-rescan.C:
			w.scan(pending, touched)
			resetTimer(timer, w.settle)
		case <-timer.C:
			ready = append(ready[:0], w.settled(pending)...)
			for i, c := range ready {
				w.setWaiting(len(pending) + len(ready) - i)
				select {
				case out <- c:
				case <-ctx.Done():
					return nil
				}
			}
			ready = ready[:0]
			if len(pending) > 0 {
				timer.Reset(w.settle)
			}
		}
	}
}

// readComplete looks at every touched pending file and returns, sorted by
// path, those to report at once: complete keyshares, unchanged across the
// read, not reported in this version yet and not reported from this path
// within the settle time. A file gone, or whose version was reported
// already, leaves pending; the others stay there for the settle rule.
func (w *watcher) readComplete(pending map[string]candidate, touched map[string]bool) []candidate {
	var out []candidate
	for p := range touched {
		if _, ok := pending[p]; !ok {
			continue
		}
		before, ok := statCandidate(p)
		switch {
		case !ok:
			delete(pending, p) // removed, or not a file: nothing to back up
			continue
		case w.reported[p] == before:
			delete(pending, p) // this version was handed over already
			continue
		}
		pending[p] = before
		if at, ok := w.readAt[p]; ok && time.Since(at) < w.settle {
			continue // changed again right after a read: settle first
		}
		if err := w.read(p); err != nil {
			continue // half written, or not a keyshare: settle first
		}
		if after, ok := statCandidate(p); !ok || after != before {
			continue // changed while it was read: look again
		}
		delete(pending, p)
		w.reported[p] = before
		w.readAt[p] = time.Now()
		out = append(out, before)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// statCandidate returns the version of the regular file at p, or false.
func statCandidate(p string) (candidate, bool) {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return candidate{}, false
	}
	return candidate{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}, true
}

// scan adds every candidate file in the directory to pending, and marks it
// touched so that it is read.
func (w *watcher) scan(pending map[string]candidate, touched map[string]bool) {
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
			touched[p] = true
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
