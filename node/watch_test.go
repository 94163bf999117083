package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// White-box: the watcher is internal to the daemon.

func startWatcher(t *testing.T, dir string) <-chan candidate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan candidate, 16)
	w := newWatcher(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.settle = 50 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	return out
}

func next(t *testing.T, ch <-chan candidate) candidate {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no file reported")
		return candidate{}
	}
}

func TestWatcherReportsExistingAndNewFilesOncePerVersion(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "localstate-old.json")
	os.WriteFile(old, []byte(`{"a":1}`), 0o600)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600)
	os.WriteFile(filepath.Join(dir, ".hidden.json"), []byte("ignored"), 0o600)
	ch := startWatcher(t, dir)

	if c := next(t, ch); c.Path != old || c.Size != 7 {
		t.Fatalf("first report %+v, want %s", c, old)
	}

	// A file written in two parts is reported once, complete.
	newer := filepath.Join(dir, "localstate-new.json")
	f, err := os.Create(newer)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(`{"pub_key":`))
	f.Sync()
	f.Write([]byte(`"x"}`))
	f.Close()
	c := next(t, ch)
	for c.Size != 15 { // an early version may be seen if the machine stalls; the complete one must follow
		c = next(t, ch)
	}
	if c.Path != newer {
		t.Fatalf("reported %+v", c)
	}

	// Rewriting a file reports the new version.
	later := time.Now().Add(time.Minute)
	os.WriteFile(old, []byte(`{"a":22}`), 0o600)
	os.Chtimes(old, later, later)
	if c := next(t, ch); c.Path != old || c.Size != 8 {
		t.Fatalf("rewrite reported %+v", c)
	}
	select {
	case c := <-ch:
		if c.Path == filepath.Join(dir, "notes.txt") || filepath.Base(c.Path) == ".hidden.json" {
			t.Fatalf("non-candidate reported: %+v", c)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

// logBuffer is a slog handler's output, safe to read while written.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startLogs runs a watcher on dir until it has logged that it watches it,
// and returns its logs.
func startLogs(t *testing.T, dir string) string {
	t.Helper()
	var logs logBuffer
	w := newWatcher(dir, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, make(chan candidate)) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(logs.String(), "watching keyshare directory") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("watcher stopped: %v (logs %q)", err, logs.String())
		case <-deadline:
			t.Fatalf("no start-up log naming the directory: %q", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return logs.String()
}

// TestWatcherLogsItsDirectory is issue 9 item 2: the watched directory is
// logged at start, and creating it (a typo in keyshares_dir) is a warning.
func TestWatcherLogsItsDirectory(t *testing.T) {
	existing := t.TempDir()
	logs := startLogs(t, existing)
	if !strings.Contains(logs, "level=INFO") || !strings.Contains(logs, "dir="+existing) || strings.Contains(logs, "level=WARN") {
		t.Errorf("existing directory: logs %q; want it named at start, no warning", logs)
	}

	typo := filepath.Join(t.TempDir(), "keyshars")
	logs = startLogs(t, typo)
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "dir="+typo) || !strings.Contains(logs, "keyshares_dir") {
		t.Errorf("created directory: logs %q; want a warning naming it and the setting", logs)
	}
	if fi, err := os.Stat(typo); err != nil || !fi.IsDir() {
		t.Errorf("directory not created: %v", err)
	}
}
