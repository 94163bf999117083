package safefile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ksb-project/ksb/internal/safefile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := safefile.Write(p, []byte("one"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if err := safefile.Write(p, []byte("two"), 0o600, false); !errors.Is(err, safefile.ErrExists) {
		t.Fatalf("overwrite without replace: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("existing file changed: %q", b)
	}
	if err := safefile.Write(p, []byte("two"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("replace: %q", b)
	}
	if err := safefile.Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600, false); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
