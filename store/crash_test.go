package store_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ksb-project/ksb/store"
)

// The crash helper: when the test binary runs with crashHelperEnv set to a
// directory, TestMain opens a store there, writes the test's blobs and
// record, reports "ready" on stdout and waits to be killed.
const crashHelperEnv = "KSB_STORE_CRASH_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		s, err := store.Open(store.DefaultOptions(dir))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// All at once, as a holder serves concurrent pushes: the Puts
		// share group commits, and each must be durable when it returns.
		var wg sync.WaitGroup
		for _, p := range crashPuts() {
			wg.Go(func() {
				if _, err := s.Put(p.e, p.blob); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
			})
		}
		wg.Wait()
		if err := s.PutMeta("q/attest/1", []byte("queued")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("ready")
		select {} // until SIGKILL
	}
	os.Exit(m.Run())
}

type crashPut struct {
	e    store.Entry
	blob []byte
}

// crashPuts are the blobs the helper writes before it is killed.
func crashPuts() []crashPut {
	var puts []crashPut
	for i := range 12 {
		blob := blobOf(uint64(i), 1024+i*7919)
		puts = append(puts, crashPut{entryFor(ownerKey(byte(1+i%3)), cid(uint64(i+1), uint64(i%3)), fmt.Sprintf("vault-%d", i), blob), blob})
	}
	return puts
}

// crashedStore runs the crash helper on a new directory and SIGKILLs it once
// every Put has returned: the directory is what a holder killed at that
// moment leaves (writes synced, still in Badger's write-ahead log, no clean
// close).
func crashedStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("crash helper did not get ready: %q\n%s", line, stderr.String())
	}
	return dir
}

// nextFid returns one more than the largest file number with extension ext
// in dir (1 if there is none): the file Badger creates next.
func nextFid(t *testing.T, dir, ext string) int {
	t.Helper()
	re := regexp.MustCompile(`^(\d+)\.` + ext + `$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	next := 1
	for _, e := range entries {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= next {
				next = n + 1
			}
		}
	}
	return next
}

// plantEmpty creates a 0-byte file: what a SIGKILL between Badger's create
// and its truncate-to-size of a new log file leaves behind.
func plantEmpty(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAfterCrashLeftEmptyLogs is issue 14.2: a holder killed while
// Badger created a new memtable log (or value log) left a 0-byte .mem
// (.vlog) file, and the restart failed with "while opening memtables err:
// while opening fid: N err: Create a new file" (dgraph-io/badger#2207). The
// store must open such a directory by itself and lose nothing, including the
// writes still only in the write-ahead log.
func TestOpenAfterCrashLeftEmptyLogs(t *testing.T) {
	for _, plant := range []string{"mem", "vlog", "mem+vlog"} {
		t.Run(plant, func(t *testing.T) {
			puts := crashPuts()
			img := crashedStore(t)
			switch plant {
			case "mem":
				plantEmpty(t, filepath.Join(img, fmt.Sprintf("%05d.mem", nextFid(t, img, "mem"))))
			case "vlog":
				plantEmpty(t, filepath.Join(img, fmt.Sprintf("%06d.vlog", nextFid(t, img, "vlog"))))
			case "mem+vlog":
				plantEmpty(t, filepath.Join(img, fmt.Sprintf("%05d.mem", nextFid(t, img, "mem"))))
				plantEmpty(t, filepath.Join(img, fmt.Sprintf("%06d.vlog", nextFid(t, img, "vlog"))))
			}

			r, err := store.Open(store.DefaultOptions(img))
			if err != nil {
				t.Fatalf("opening the crash image with an empty %s file: %v", plant, err)
			}
			defer r.Close()
			for _, p := range puts {
				e, blob, err := r.Get(p.e.Custody)
				if err != nil {
					t.Fatalf("%s after reopen: %v", p.e.Vault, err)
				}
				if !sameEntry(e, p.e) || !bytes.Equal(blob, p.blob) {
					t.Fatalf("%s after reopen: entry or blob differs", p.e.Vault)
				}
			}
			if v, err := r.GetMeta("q/attest/1"); err != nil || string(v) != "queued" {
				t.Fatalf("meta after reopen: %q, %v", v, err)
			}
			assertStats(t, r, len(puts), sumSizes(puts, func(p crashPut) int64 { return p.e.Size }))

			// The reopened store keeps working and keeps it over another
			// restart.
			blob := blobOf(1000, 4096)
			mustPut(t, r, entryFor(ownerKey(9), cid(99, 0), "after", blob), blob)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r2 := openDisk(t, img)
			defer r2.Close()
			assertStats(t, r2, len(puts)+1, sumSizes(puts, func(p crashPut) int64 { return p.e.Size })+4096)
		})
	}
}

// TestOpenLeavesLiveStoreAlone: the clean-up before opening runs only on a
// directory no process has open. A store that is in use keeps its files,
// even empty ones (Badger creates a log file empty and sizes it a moment
// later), and the second Open fails on Badger's directory lock.
func TestOpenLeavesLiveStoreAlone(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	defer s.Close()
	empty := filepath.Join(dir, fmt.Sprintf("%05d.mem", nextFid(t, dir, "mem")))
	plantEmpty(t, empty)
	if s2, err := store.Open(store.DefaultOptions(dir)); err == nil {
		s2.Close()
		t.Fatal("opened a store another handle holds")
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Fatalf("empty log file of a live store: %v, %v", fi, err)
	}
}

func sumSizes[T any](xs []T, f func(T) int64) int64 {
	var n int64
	for _, x := range xs {
		n += f(x)
	}
	return n
}
