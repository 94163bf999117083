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
	_, out := startWatcherSettle(t, dir, 50*time.Millisecond)
	return out
}

// startWatcherSettle runs a watcher of dir with the given settle time.
func startWatcherSettle(t *testing.T, dir string, settle time.Duration) (*watcher, <-chan candidate) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan candidate, 16)
	w := newWatcher(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.settle = settle
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	return w, out
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

// share reads a real keyshare file from testdata.
func share(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// quiet waits for the watcher's Quiet signal with Idle true.
func quiet(t *testing.T, w *watcher) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-w.Quiet():
			if w.Idle() {
				return
			}
		case <-deadline:
			t.Fatal("watcher never idle")
		}
	}
}

// TestWatcherReadsCompleteShareAtOnce is issue 13 item 3: a file that
// parses as a complete keyshare is reported on its event, not after a
// settle time (an hour here, so the old fixed-delay watcher fails this),
// while a half-written one waits — and keeps the watcher busy, which holds
// the owner's Commit — until the rest of it lands.
func TestWatcherReadsCompleteShareAtOnce(t *testing.T) {
	dir := t.TempDir()
	w, ch := startWatcherSettle(t, dir, time.Hour)
	quiet(t, w) // the first scan of the empty directory is done

	ecdsa := share(t, "go-tss-ecdsa-0.json")
	path := filepath.Join(dir, "localstate-ecdsa.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	half := len(ecdsa) / 2
	if _, err := f.Write(ecdsa[:half]); err != nil {
		t.Fatal(err)
	}
	// The event of the half file is seen: the watcher is busy with it...
	deadline := time.After(10 * time.Second)
	for w.Idle() {
		select {
		case <-deadline:
			t.Fatal("watcher idle with a half-written file in the directory")
		case <-time.After(time.Millisecond):
		}
	}
	// ...and the rest of it is what makes it reported.
	if _, err := f.Write(ecdsa[half:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c := next(t, ch)
	if c.Path != path || c.Size != int64(len(ecdsa)) {
		t.Fatalf("reported %+v, want %s with %d bytes (a half-written file must not be reported)", c, path, len(ecdsa))
	}
	quiet(t, w)

	// A churn's two shares landing together (renamed into place, as an
	// atomic write does) are both reported before the watcher is idle.
	stage := t.TempDir()
	names := []string{"localstate-a.json", "localstate-b.json"}
	for i, data := range [][]byte{share(t, "go-tss-ecdsa-0.json"), share(t, "go-tss-eddsa-0.json")} {
		tmp := filepath.Join(stage, names[i])
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, names[i])); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for len(got) < 2 {
		c := next(t, ch)
		got[filepath.Base(c.Path)] = true
	}
	if !got[names[0]] || !got[names[1]] {
		t.Fatalf("reported %v, want %v", got, names)
	}
	quiet(t, w)
}

// TestWatcherSettlesAFileThatKeepsChanging: a version reported at once
// that is rewritten right away is not read at once again; the writer's
// versions wait for the settle rule, which reports the last one only.
func TestWatcherSettlesAFileThatKeepsChanging(t *testing.T) {
	dir := t.TempDir()
	w, ch := startWatcherSettle(t, dir, time.Second)
	quiet(t, w)
	data := share(t, "go-tss-ecdsa-0.json")
	path := filepath.Join(dir, "localstate-x.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if c := next(t, ch); c.Size != int64(len(data)) {
		t.Fatalf("first version: %+v", c)
	}
	// Two more versions, each a complete keyshare, right after the read.
	for i := 1; i <= 2; i++ {
		v := append(bytes.Clone(data), bytes.Repeat([]byte{' '}, i)...)
		if err := os.WriteFile(path, v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if c := next(t, ch); c.Size != int64(len(data)+2) {
		t.Fatalf("reported %+v, want only the last version (%d bytes) once it settled", c, len(data)+2)
	}
	quiet(t, w)
	select {
	case c := <-ch:
		t.Fatalf("reported again: %+v", c)
	default:
	}
}
