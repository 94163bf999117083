package attest

import (
	"slices"
	"strings"
	"testing"
)

// mapKV is an in-memory kv for testing the overlay.
type mapKV map[string][]byte

func (m mapKV) get(k string) ([]byte, error) { return m[k], nil }
func (m mapKV) set(k string, v []byte) error { m[k] = v; return nil }
func (m mapKV) del(k string) error          { delete(m, k); return nil }
func (m mapKV) scan(prefix string, fn func(string, []byte) error) error {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// TestOverlayScanMerges: a transaction's scan sees its own writes merged
// into the block's state in byte order, its deletes hiding keys, and nothing
// outside the prefix.
func TestOverlayScanMerges(t *testing.T) {
	parent := mapKV{"p/a": []byte("1"), "p/c": []byte("3"), "p/e": []byte("5"), "q/x": []byte("x")}
	o := newOverlay(parent)
	o.set("p/b", []byte("2"))  // new, between parent keys
	o.set("p/c", []byte("33")) // replaces
	o.del("p/e")               // hides
	o.set("p/f", []byte("6"))  // after every parent key
	o.set("q/y", []byte("y"))  // other prefix
	var got []string
	if err := o.scan("p/", func(k string, v []byte) error { got = append(got, k+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	want := "p/a=1 p/b=2 p/c=33 p/f=6"
	if s := strings.Join(got, " "); s != want {
		t.Fatalf("scan = %q, want %q", s, want)
	}
}
