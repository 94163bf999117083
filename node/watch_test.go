package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
