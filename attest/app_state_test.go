package attest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/attest"
)

// TestRefusesBadgerState: a home whose application state is a Badger
// database (an earlier ksb, whose app hash was not a tree root) is refused
// with an error that says why, instead of starting from an empty state that
// CometBFT's replay would then contradict.
func TestRefusesBadgerState(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "KEYREGISTRY"), []byte("badger"), 0o600); err != nil {
		t.Fatal(err)
	}
	app, err := attest.NewApp(dir, nil)
	if err == nil {
		app.Close()
		t.Fatal("a Badger application state was opened")
	}
	if !strings.Contains(err.Error(), "Badger") || !strings.Contains(err.Error(), "new chain") {
		t.Fatalf("error %q does not say what to do", err)
	}
}
