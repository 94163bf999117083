package badgeropen_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/ksb-project/ksb/internal/badgeropen"
)

// TestRemoveEmptyLogsOnlyEmptyLogs: only 0-byte files named like Badger's
// log files go; a non-empty log, other Badger files (even empty) and other
// names stay.
func TestRemoveEmptyLogsOnlyEmptyLogs(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{
		"00007.mem":    0,
		"000003.vlog":  0,
		"00006.mem":    64,
		"000002.vlog":  64,
		"MANIFEST":     0,
		"KEYREGISTRY":  0,
		"000001.sst":   0,
		"notes.mem":    0,
		"00008.mem.bk": 0,
	}
	for name, size := range files {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := badgeropen.RemoveEmptyLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"000003.vlog", "00007.mem"}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for name := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := os.IsNotExist(err); gone != slices.Contains(removed, name) {
			t.Errorf("%s: gone=%v", name, gone)
		}
	}
}

func TestRemoveEmptyLogsMissingDir(t *testing.T) {
	removed, err := badgeropen.RemoveEmptyLogs(filepath.Join(t.TempDir(), "nope"))
	if err != nil || len(removed) != 0 {
		t.Fatalf("RemoveEmptyLogs(missing) = %v, %v", removed, err)
	}
}

// TestOpenLeavesOpenDatabaseAlone: while a database is open (this process or
// another holds Badger's directory lock), an empty log file may be one Badger
// is creating this instant, so nothing is removed.
func TestOpenLeavesOpenDatabaseAlone(t *testing.T) {
	dir := t.TempDir()
	db, err := badgeropen.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	empty := filepath.Join(dir, "99999.mem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if removed, err := badgeropen.RemoveEmptyLogs(dir); err != nil || len(removed) != 0 {
		t.Fatalf("RemoveEmptyLogs on an open database = %v, %v", removed, err)
	}
	if _, err := os.Stat(empty); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if removed, err := badgeropen.RemoveEmptyLogs(dir); err != nil || !slices.Equal(removed, []string{"99999.mem"}) {
		t.Fatalf("RemoveEmptyLogs after close = %v, %v", removed, err)
	}
}
