package attest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

// mapKV is an in-memory kv for testing the overlay.
type mapKV map[string][]byte

func (m mapKV) get(k string) ([]byte, error) { return m[k], nil }
func (m mapKV) set(k string, v []byte) error { m[k] = v; return nil }
func (m mapKV) del(k string) error           { delete(m, k); return nil }
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

// TestEmptyValueEncoding: the state tree cannot hold an empty value, so
// treeKV stores one (nil or empty) as the byte 0x00 and every reader —
// working tree, committed snapshot, scans, a transaction's overlay — gets
// back a present, empty value; the byte 0x00 itself is refused as a value.
func TestEmptyValueEncoding(t *testing.T) {
	st, err := statestore.Open(statestore.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := treeKV{st}
	for k, v := range map[string][]byte{"s/a": nil, "s/b": {}, "s/c": []byte("x")} {
		if err := w.set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.set("s/d", []byte{0}); !errors.Is(err, ErrInternal) {
		t.Fatalf("set of the byte 0x00: %v, want ErrInternal", err)
	}
	ov := newOverlay(w)
	ov.set("s/e", nil)
	if err := ov.flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.del("s/absent"); err != nil {
		t.Fatalf("deleting an absent key: %v", err)
	}
	want := map[string]string{"s/a": "", "s/b": "", "s/c": "x", "s/e": ""}
	checkKV := func(name string, s kv) {
		t.Helper()
		for k, v := range want {
			got, err := s.get(k)
			if err != nil || got == nil || string(got) != v {
				t.Errorf("%s: get %s = %q (nil %v), %v; want %q", name, k, got, got == nil, err, v)
			}
		}
		if got, err := s.get("s/d"); got != nil || err != nil {
			t.Errorf("%s: refused key s/d = %x, %v", name, got, err)
		}
		n := 0
		err := s.scan("s/", func(k string, v []byte) error {
			n++
			if string(v) != want[k] || v == nil {
				t.Errorf("%s: scan %s = %q", name, k, v)
			}
			return nil
		})
		if err != nil || n != len(want) {
			t.Errorf("%s: scan saw %d keys, %v", name, n, err)
		}
	}
	checkKV("working tree", w)
	if raw, _ := st.Get([]byte("s/a")); !bytes.Equal(raw, []byte{storedEmpty}) {
		t.Fatalf("the tree holds %x for an empty value", raw)
	}
	snap, err := st.Commit()
	if err != nil {
		t.Fatal(err)
	}
	checkKV("committed", snapKV{snap})
}
