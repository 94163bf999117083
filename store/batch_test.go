package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/store"
)

// TestWriteMeta writes more records than one Badger transaction holds, then
// deletes and overwrites some in one call, across a reopen.
func TestWriteMeta(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	// 4000 records of 1 KiB: over Badger's per-transaction limit (15% of a
	// 16 MiB memtable), so the batch spans transactions.
	const n = 4000
	val := bytes.Repeat([]byte{'v'}, 1024)
	var writes []store.MetaWrite
	for i := range n {
		writes = append(writes, store.MetaWrite{Key: fmt.Sprintf("q/%05d", i), Value: val})
	}
	if err := s.WriteMeta(writes); err != nil {
		t.Fatal(err)
	}
	writes = writes[:0]
	for i := 0; i < n; i += 2 {
		writes = append(writes, store.MetaWrite{Key: fmt.Sprintf("q/%05d", i), Delete: true})
	}
	writes = append(writes, store.MetaWrite{Key: "q/00001", Value: []byte("new")}, store.MetaWrite{Key: "q/absent", Delete: true})
	if err := s.WriteMeta(writes); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir)
	defer s.Close()
	count := 0
	if err := s.ScanMeta("q/", func(k string, v []byte) error {
		count++
		var i int
		fmt.Sscanf(strings.TrimPrefix(k, "q/"), "%d", &i)
		if i%2 == 0 {
			return fmt.Errorf("deleted record %s is back", k)
		}
		if want := val; i == 1 {
			if string(v) != "new" {
				return fmt.Errorf("%s = %q, want the overwrite", k, v)
			}
		} else if !bytes.Equal(v, want) {
			return fmt.Errorf("%s has a wrong value", k)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if count != n/2 {
		t.Fatalf("%d records after the batches, want %d", count, n/2)
	}
}

func TestWriteMetaRefusals(t *testing.T) {
	s := openTemp(t)
	for name, w := range map[string]store.MetaWrite{
		"empty key":   {Key: "", Value: []byte("x")},
		"long key":    {Key: strings.Repeat("k", store.MaxMetaKeyLen+1), Delete: true},
		"large value": {Key: "k", Value: make([]byte, store.MaxMetaSize+1)},
	} {
		err := s.WriteMeta([]store.MetaWrite{{Key: "first", Value: []byte("1")}, w})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, gerr := s.GetMeta("first"); !errors.Is(gerr, store.ErrNotFound) {
			t.Errorf("%s: refused batch wrote its first record (%v)", name, gerr)
		}
	}
	if err := s.WriteMeta(nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteMeta([]store.MetaWrite{{Key: "k", Delete: true}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestPutWithMeta writes a copy with two records in one transaction: both
// are there after a reopen, a duplicate Put still writes its records, a zero
// digest is computed, and a refused record stores neither.
func TestPutWithMeta(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	blob := blobOf(3, 4096)
	e := entryFor(ownerKey(1), cid(7, 0), "v1", blob)
	want := e.Digest
	e.Digest = [32]byte{}
	got, added, err := s.PutWithMeta(e, blob, store.MetaWrite{Key: "q/a", Value: []byte("1")}, store.MetaWrite{Key: "q/gone", Delete: true})
	if err != nil || !added || got.Digest != want || got.Received.IsZero() {
		t.Fatalf("PutWithMeta: added %v, err %v, digest ok %v", added, err, got.Digest == want)
	}
	// Again, the copy stored already: the record is still written.
	if _, added, err := s.PutWithMeta(got, blob, store.MetaWrite{Key: "q/b", Value: []byte("2")}); err != nil || added {
		t.Fatalf("duplicate PutWithMeta: added %v, err %v", added, err)
	}
	// A bad record refuses the whole write.
	e2 := entryFor(ownerKey(1), cid(8, 0), "v1", blob)
	if _, _, err := s.PutWithMeta(e2, blob, store.MetaWrite{Key: "", Value: []byte("x")}); err == nil {
		t.Fatal("PutWithMeta with an empty record key succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDisk(t, dir)
	defer s.Close()
	if _, _, err := s.Get(cid(7, 0)); err != nil {
		t.Fatalf("copy after reopen: %v", err)
	}
	if _, _, err := s.Get(cid(8, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("copy of the refused write: %v, want ErrNotFound", err)
	}
	for k, v := range map[string]string{"q/a": "1", "q/b": "2"} {
		if b, err := s.GetMeta(k); err != nil || string(b) != v {
			t.Fatalf("%s = %q, %v; want %q", k, b, err, v)
		}
	}
}
