package store_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/dgraph-io/badger/v4"

	"github.com/ksb-project/ksb/store"
)

// ownerKey returns the compressed public key of the secp256k1 scalar n.
func ownerKey(n byte) []byte {
	return secp256k1.PrivKeyFromBytes([]byte{n}).PubKey().SerializeCompressed()
}

// blobOf returns n deterministic pseudo-random bytes for seed.
func blobOf(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// entryFor describes blob for (owner, vault) with a fixed received time.
func entryFor(owner []byte, vault string, blob []byte) store.Entry {
	return store.Entry{
		Owner:    owner,
		Vault:    vault,
		Digest:   sha256.Sum256(blob),
		Size:     int64(len(blob)),
		Received: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
	}
}

func openDisk(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(store.DefaultOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openTemp(t testing.TB) *store.Store {
	t.Helper()
	s := openDisk(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t testing.TB, s *store.Store, e store.Entry, blob []byte) *store.Entry {
	t.Helper()
	old, err := s.Put(e, blob)
	if err != nil {
		t.Fatalf("Put(%x, %q): %v", e.Owner[:4], e.Vault, err)
	}
	return old
}

func sameEntry(a, b store.Entry) bool {
	return bytes.Equal(a.Owner, b.Owner) && a.Vault == b.Vault && a.Digest == b.Digest &&
		a.Size == b.Size && a.Received.Equal(b.Received)
}

func assertStats(t *testing.T, s *store.Store, blobs int, size int64) {
	t.Helper()
	n, b, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if n != blobs || b != size {
		t.Fatalf("Stats() = %d blobs, %d bytes; want %d, %d", n, b, blobs, size)
	}
}

func TestPutGetRoundTrip(t *testing.T) {
	s := openTemp(t)
	owner, blob := ownerKey(1), blobOf(1, 60_000)
	e := entryFor(owner, "thorpub1addwnpepqexample", blob)
	if old := mustPut(t, s, e, blob); old != nil {
		t.Fatalf("first Put replaced %+v", old)
	}
	got, gotBlob, err := s.Get(owner, e.Vault)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEntry(got, e) {
		t.Errorf("Get entry = %+v, want %+v", got, e)
	}
	if !bytes.Equal(gotBlob, blob) {
		t.Error("Get returned different blob bytes")
	}
	// The returned blob is the caller's: changing it must not change the store.
	gotBlob[0] ^= 0xff
	if _, again, err := s.Get(owner, e.Vault); err != nil || !bytes.Equal(again, blob) {
		t.Errorf("second Get: err %v, equal %v", err, bytes.Equal(again, blob))
	}
	// So is the blob passed to Put.
	blob[1] ^= 0xff
	if _, _, err := s.Get(owner, e.Vault); err != nil {
		t.Errorf("Get after caller mutated its Put buffer: %v", err)
	}
}

func TestPutZeroReceivedUsesNow(t *testing.T) {
	s := openTemp(t)
	blob := blobOf(2, 100)
	e := entryFor(ownerKey(1), "v", blob)
	e.Received = time.Time{}
	before := time.Now()
	mustPut(t, s, e, blob)
	after := time.Now()
	got, _, err := s.Get(e.Owner, e.Vault)
	if err != nil {
		t.Fatal(err)
	}
	if got.Received.Before(before) || got.Received.After(after) {
		t.Errorf("Received = %v, want between %v and %v", got.Received, before, after)
	}
}

func TestPutReplaceReturnsOld(t *testing.T) {
	s := openTemp(t)
	owner := ownerKey(1)
	b1, b2 := blobOf(1, 500), blobOf(2, 700)
	e1 := entryFor(owner, "vault", b1)
	e2 := entryFor(owner, "vault", b2)
	e2.Received = e1.Received.Add(time.Hour)
	mustPut(t, s, e1, b1)
	old := mustPut(t, s, e2, b2)
	if old == nil || !sameEntry(*old, e1) {
		t.Fatalf("replaced = %+v, want %+v", old, e1)
	}
	got, blob, err := s.Get(owner, "vault")
	if err != nil || !sameEntry(got, e2) || !bytes.Equal(blob, b2) {
		t.Fatalf("after replace Get = %+v, %v; want the new entry", got, err)
	}
	assertStats(t, s, 1, 700)
}

func TestPutSameDigestIsNoOp(t *testing.T) {
	s := openTemp(t)
	blob := blobOf(1, 500)
	e := entryFor(ownerKey(1), "vault", blob)
	mustPut(t, s, e, blob)
	again := e
	again.Received = e.Received.Add(24 * time.Hour)
	if old := mustPut(t, s, again, blob); old != nil {
		t.Fatalf("duplicate Put replaced %+v", old)
	}
	got, _, err := s.Get(e.Owner, e.Vault)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Received.Equal(e.Received) {
		t.Errorf("duplicate Put rewrote the entry: Received %v, want %v", got.Received, e.Received)
	}
	assertStats(t, s, 1, 500)
}

// notOnCurve returns 33 bytes with a valid prefix whose x has no point.
func notOnCurve(t *testing.T) []byte {
	for x := byte(1); x != 0; x++ {
		k := make([]byte, 33)
		k[0], k[32] = 0x02, x
		if _, err := secp256k1.ParsePubKey(k); err != nil {
			return k
		}
	}
	t.Fatal("no off-curve x found")
	return nil
}

func TestPutRefusals(t *testing.T) {
	owner := ownerKey(1)
	blob := blobOf(1, 1000)
	good := entryFor(owner, "vault", blob)
	uncompressed := secp256k1.PrivKeyFromBytes([]byte{1}).PubKey().SerializeUncompressed()
	big := make([]byte, store.MaxBlobSize+1)

	with := func(f func(*store.Entry)) store.Entry { e := good; f(&e); return e }
	for _, tc := range []struct {
		name string
		e    store.Entry
		blob []byte
		want error
	}{
		{"nil owner", with(func(e *store.Entry) { e.Owner = nil }), blob, store.ErrBadOwner},
		{"32-byte owner", with(func(e *store.Entry) { e.Owner = owner[:32] }), blob, store.ErrBadOwner},
		{"uncompressed owner", with(func(e *store.Entry) { e.Owner = uncompressed }), blob, store.ErrBadOwner},
		{"bad prefix", with(func(e *store.Entry) { e.Owner = append([]byte{0x05}, owner[1:]...) }), blob, store.ErrBadOwner},
		{"off-curve owner", with(func(e *store.Entry) { e.Owner = notOnCurve(t) }), blob, store.ErrBadOwner},
		{"empty vault", with(func(e *store.Entry) { e.Vault = "" }), blob, store.ErrBadVault},
		{"slash in vault", with(func(e *store.Entry) { e.Vault = "a/b" }), blob, store.ErrBadVault},
		{"space in vault", with(func(e *store.Entry) { e.Vault = "a b" }), blob, store.ErrBadVault},
		{"newline in vault", with(func(e *store.Entry) { e.Vault = "a\n" }), blob, store.ErrBadVault},
		{"non-ASCII vault", with(func(e *store.Entry) { e.Vault = "vé" }), blob, store.ErrBadVault},
		{"long vault", with(func(e *store.Entry) { e.Vault = strings.Repeat("v", store.MaxVaultLen+1) }), blob, store.ErrBadVault},
		// Printable, but refused by the attestation chain: the store must
		// not keep what its holder could never attest (issue 8).
		{"vault the chain refuses", with(func(e *store.Entry) { e.Vault = "bad!vault#chars" }), blob, store.ErrBadVault},
		{"quote in vault", with(func(e *store.Entry) { e.Vault = `a"b` }), blob, store.ErrBadVault},
		{"empty blob", with(func(e *store.Entry) { e.Size = 0; e.Digest = sha256.Sum256(nil) }), nil, store.ErrEmptyBlob},
		{"declared too large", with(func(e *store.Entry) { e.Size = store.MaxBlobSize + 1 }), blob, store.ErrTooLarge},
		{"blob too large", with(func(e *store.Entry) { e.Size = int64(len(big)) }), big, store.ErrTooLarge},
		{"short blob", good, blob[:999], store.ErrSizeMismatch},
		{"negative size", with(func(e *store.Entry) { e.Size = -1 }), blob, store.ErrSizeMismatch},
		{"wrong digest", with(func(e *store.Entry) { e.Digest[0] ^= 1 }), blob, store.ErrDigestMismatch},
		{"altered blob", good, append([]byte{blob[0] ^ 1}, blob[1:]...), store.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			old, err := s.Put(tc.e, tc.blob)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put error = %v, want %v", err, tc.want)
			}
			if old != nil {
				t.Errorf("refused Put reported a replaced entry %+v", old)
			}
			assertStats(t, s, 0, 0)
		})
	}
}

func TestRefusedReplaceKeepsOld(t *testing.T) {
	s := openTemp(t)
	b1, b2 := blobOf(1, 500), blobOf(2, 500)
	e1 := entryFor(ownerKey(1), "vault", b1)
	mustPut(t, s, e1, b1)
	bad := entryFor(ownerKey(1), "vault", b2)
	bad.Digest[31] ^= 1
	if _, err := s.Put(bad, b2); !errors.Is(err, store.ErrDigestMismatch) {
		t.Fatalf("Put error = %v, want ErrDigestMismatch", err)
	}
	got, blob, err := s.Get(e1.Owner, "vault")
	if err != nil || !sameEntry(got, e1) || !bytes.Equal(blob, b1) {
		t.Fatalf("old entry damaged: %+v, %v", got, err)
	}
}

func TestGetDeleteNotFound(t *testing.T) {
	s := openTemp(t)
	if _, _, err := s.Get(ownerKey(1), "vault"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get on empty store: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ownerKey(1), "vault"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete on empty store: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Get([]byte{1, 2}, "vault"); !errors.Is(err, store.ErrBadOwner) {
		t.Errorf("Get with bad owner: %v, want ErrBadOwner", err)
	}
	if err := s.Delete(ownerKey(1), "a/b"); !errors.Is(err, store.ErrBadVault) {
		t.Errorf("Delete with bad vault: %v, want ErrBadVault", err)
	}
	if _, err := s.Entries([]byte{2}); !errors.Is(err, store.ErrBadOwner) {
		t.Errorf("Entries with bad owner: %v, want ErrBadOwner", err)
	}
	if _, _, err := s.Usage(nil); !errors.Is(err, store.ErrBadOwner) {
		t.Errorf("Usage(nil): %v, want ErrBadOwner", err)
	}
}

func TestDelete(t *testing.T) {
	s := openTemp(t)
	b1, b2 := blobOf(1, 300), blobOf(2, 400)
	mustPut(t, s, entryFor(ownerKey(1), "v1", b1), b1)
	mustPut(t, s, entryFor(ownerKey(1), "v2", b2), b2)
	if err := s.Delete(ownerKey(1), "v1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ownerKey(1), "v1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ownerKey(1), "v1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	if _, blob, err := s.Get(ownerKey(1), "v2"); err != nil || !bytes.Equal(blob, b2) {
		t.Errorf("other vault damaged by Delete: %v", err)
	}
	assertStats(t, s, 1, 400)
}

func TestEntriesUsageStats(t *testing.T) {
	s := openTemp(t)
	type put struct {
		owner byte
		vault string
		size  int
	}
	puts := []put{
		{3, "vb", 30}, {1, "vb", 10}, {2, "va", 200}, {1, "va", 20}, {3, "va", 300}, {1, "vc", 5},
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(puts), func(i, j int) { puts[i], puts[j] = puts[j], puts[i] })
	for i, p := range puts {
		b := blobOf(uint64(i+10), p.size)
		mustPut(t, s, entryFor(ownerKey(p.owner), p.vault, b), b)
	}

	all, err := s.Entries(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(puts) {
		t.Fatalf("Entries(nil) has %d entries, want %d", len(all), len(puts))
	}
	sorted := slices.IsSortedFunc(all, func(a, b store.Entry) int {
		if c := bytes.Compare(a.Owner, b.Owner); c != 0 {
			return c
		}
		return strings.Compare(a.Vault, b.Vault)
	})
	if !sorted {
		t.Errorf("Entries(nil) not sorted by owner, vault: %v", all)
	}

	want := map[byte]struct {
		vaults []string
		bytes  int64
	}{1: {[]string{"va", "vb", "vc"}, 35}, 2: {[]string{"va"}, 200}, 3: {[]string{"va", "vb"}, 330}}
	for o, w := range want {
		es, err := s.Entries(ownerKey(o))
		if err != nil {
			t.Fatal(err)
		}
		var vaults []string
		for _, e := range es {
			if !bytes.Equal(e.Owner, ownerKey(o)) {
				t.Errorf("Entries(owner %d) returned owner %x", o, e.Owner)
			}
			vaults = append(vaults, e.Vault)
		}
		if !slices.Equal(vaults, w.vaults) {
			t.Errorf("Entries(owner %d) vaults = %v, want %v", o, vaults, w.vaults)
		}
		n, b, err := s.Usage(ownerKey(o))
		if err != nil {
			t.Fatal(err)
		}
		if n != len(w.vaults) || b != w.bytes {
			t.Errorf("Usage(owner %d) = %d, %d; want %d, %d", o, n, b, len(w.vaults), w.bytes)
		}
	}
	if n, b, err := s.Usage(ownerKey(9)); err != nil || n != 0 || b != 0 {
		t.Errorf("Usage(unknown owner) = %d, %d, %v; want 0, 0, nil", n, b, err)
	}
	if es, err := s.Entries(ownerKey(9)); err != nil || len(es) != 0 {
		t.Errorf("Entries(unknown owner) = %v, %v; want none", es, err)
	}
	assertStats(t, s, 6, 565)
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	var want []store.Entry
	for i := range 5 {
		b := blobOf(uint64(i), 1000+i)
		e := entryFor(ownerKey(byte(i%2+1)), fmt.Sprintf("vault%d", i), b)
		mustPut(t, s, e, b)
		want = append(want, e)
	}
	if err := s.Delete(want[4].Owner, want[4].Vault); err != nil {
		t.Fatal(err)
	}
	want = want[:4]
	if err := s.PutMeta("share/abc", []byte("state")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDisk(t, dir)
	defer s.Close()
	for i, e := range want {
		got, blob, err := s.Get(e.Owner, e.Vault)
		if err != nil {
			t.Fatalf("entry %d after reopen: %v", i, err)
		}
		if !sameEntry(got, e) || !bytes.Equal(blob, blobOf(uint64(i), 1000+i)) {
			t.Errorf("entry %d after reopen = %+v", i, got)
		}
	}
	if _, _, err := s.Get(ownerKey(1), "vault4"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted entry back after reopen: %v", err)
	}
	if v, err := s.GetMeta("share/abc"); err != nil || string(v) != "state" {
		t.Errorf("meta after reopen = %q, %v", v, err)
	}
	assertStats(t, s, 4, 1000+1001+1002+1003)
}

// TestCorruptBlobDetected edits the database behind the store's back, through
// the key layout doc.go documents, and expects Get to notice.
func TestCorruptBlobDetected(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	owner, blob := ownerKey(1), blobOf(1, 100)
	mustPut(t, s, entryFor(owner, "vault", blob), blob)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	dk := []byte(fmt.Sprintf("d/%x/vault", owner))
	if err := db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(dk); err != nil {
			return fmt.Errorf("documented data key %q: %w", dk, err)
		}
		return txn.Set(dk, append([]byte{blob[0] ^ 1}, blob[1:]...))
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDisk(t, dir)
	defer s.Close()
	if _, _, err := s.Get(owner, "vault"); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Get of altered blob: %v, want ErrCorrupt", err)
	}
}

func TestMeta(t *testing.T) {
	s := openTemp(t)
	if _, err := s.GetMeta("missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetMeta(missing) = %v, want ErrNotFound", err)
	}
	recs := map[string]string{
		"pending/2": "b", "pending/1": "a", "pending/10": "c", "receipt/1": "r", "pendinX": "x", "": "",
	}
	delete(recs, "")
	for k, v := range recs {
		if err := s.PutMeta(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutMeta("pending/1", []byte("a2")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("pending/1"); err != nil || string(v) != "a2" {
		t.Errorf("GetMeta after overwrite = %q, %v", v, err)
	}
	if err := s.PutMeta("empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("empty"); err != nil || len(v) != 0 {
		t.Errorf("GetMeta(empty) = %q, %v; want empty value", v, err)
	}

	var keys, vals []string
	if err := s.ScanMeta("pending/", func(k string, v []byte) error {
		keys, vals = append(keys, k), append(vals, string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"pending/1", "pending/10", "pending/2"}; !slices.Equal(keys, want) {
		t.Errorf("ScanMeta keys = %v, want %v", keys, want)
	}
	if want := []string{"a2", "c", "b"}; !slices.Equal(vals, want) {
		t.Errorf("ScanMeta values = %v, want %v", vals, want)
	}

	// Meta records are not blobs.
	assertStats(t, s, 0, 0)

	// fn's error stops the scan and comes back unchanged.
	stop := errors.New("stop")
	calls := 0
	err := s.ScanMeta("", func(string, []byte) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("ScanMeta with failing fn: err %v after %d calls; want stop after 1", err, calls)
	}

	// fn may write to the store: delete every pending record while scanning.
	if err := s.ScanMeta("pending/", func(k string, _ []byte) error { return s.DeleteMeta(k) }); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.ScanMeta("", func(k string, _ []byte) error {
		if strings.HasPrefix(k, "pending/") {
			t.Errorf("%q survived deletion", k)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3 { // receipt/1, pendinX, empty
		t.Errorf("%d records left, want 3", n)
	}
	if err := s.DeleteMeta("never-there"); err != nil {
		t.Errorf("DeleteMeta of absent key = %v, want nil", err)
	}
}

func TestMetaRefusals(t *testing.T) {
	s := openTemp(t)
	long := strings.Repeat("k", store.MaxMetaKeyLen+1)
	if err := s.PutMeta("", []byte("v")); !errors.Is(err, store.ErrBadMetaKey) {
		t.Errorf("PutMeta empty key: %v", err)
	}
	if err := s.PutMeta(long, []byte("v")); !errors.Is(err, store.ErrBadMetaKey) {
		t.Errorf("PutMeta long key: %v", err)
	}
	if err := s.PutMeta("k", make([]byte, store.MaxMetaSize+1)); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("PutMeta large value: %v", err)
	}
	if _, err := s.GetMeta(""); !errors.Is(err, store.ErrBadMetaKey) {
		t.Errorf("GetMeta empty key: %v", err)
	}
	if err := s.DeleteMeta(long); !errors.Is(err, store.ErrBadMetaKey) {
		t.Errorf("DeleteMeta long key: %v", err)
	}
	if err := s.ScanMeta(long, func(string, []byte) error { return nil }); !errors.Is(err, store.ErrBadMetaKey) {
		t.Errorf("ScanMeta long prefix: %v", err)
	}
	n := 0
	if err := s.ScanMeta("", func(string, []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("refused writes left %d records (err %v)", n, err)
	}
}

func TestClosed(t *testing.T) {
	s := openDisk(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	blob := blobOf(1, 10)
	e := entryFor(ownerKey(1), "v", blob)
	checks := map[string]error{
		"Close":      s.Close(),
		"Delete":     s.Delete(e.Owner, e.Vault),
		"PutMeta":    s.PutMeta("k", nil),
		"DeleteMeta": s.DeleteMeta("k"),
		"ScanMeta":   s.ScanMeta("", func(string, []byte) error { return nil }),
	}
	_, checks["Put"] = s.Put(e, blob)
	_, _, checks["Get"] = s.Get(e.Owner, e.Vault)
	_, checks["Entries"] = s.Entries(nil)
	_, _, checks["Usage"] = s.Usage(e.Owner)
	_, _, checks["Stats"] = s.Stats()
	_, checks["GetMeta"] = s.GetMeta("k")
	for name, err := range checks {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestConcurrentReplace puts different blobs for one (owner, vault) from many
// goroutines: every Put succeeds, exactly one finds the slot empty, and the
// replaced entries plus the survivor are exactly the blobs put.
func TestConcurrentReplace(t *testing.T) {
	s := openTemp(t)
	const n = 8
	owner := ownerKey(1)
	results := make(chan *store.Entry, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b := blobOf(uint64(i), 256)
			old, err := s.Put(entryFor(owner, "vault", b), b)
			if err != nil {
				errs <- err
				return
			}
			results <- old
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Put: %v", err)
	}
	seen := map[[32]byte]bool{}
	empty := 0
	for old := range results {
		if old == nil {
			empty++
			continue
		}
		if seen[old.Digest] {
			t.Errorf("digest %x replaced twice", old.Digest[:4])
		}
		seen[old.Digest] = true
	}
	final, _, err := s.Get(owner, "vault")
	if err != nil {
		t.Fatal(err)
	}
	if seen[final.Digest] {
		t.Error("the surviving blob was also reported replaced")
	}
	seen[final.Digest] = true
	if empty != 1 || len(seen) != n {
		t.Errorf("%d Puts found the slot empty (want 1); %d distinct blobs accounted for (want %d)", empty, len(seen), n)
	}
	for i := range n {
		if !seen[sha256.Sum256(blobOf(uint64(i), 256))] {
			t.Errorf("blob %d lost", i)
		}
	}
}

func TestMaxBlobSize(t *testing.T) {
	blob := blobOf(7, store.MaxBlobSize)
	dir := t.TempDir()
	for name, opts := range map[string]store.Options{
		"disk":     store.DefaultOptions(dir),
		"inmemory": store.DefaultOptions("").WithInMemory(true),
	} {
		t.Run(name, func(t *testing.T) {
			s, err := store.Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			e := entryFor(ownerKey(1), "vault", blob)
			mustPut(t, s, e, blob)
			if _, got, err := s.Get(e.Owner, e.Vault); err != nil || !bytes.Equal(got, blob) {
				t.Fatalf("Get of MaxBlobSize blob: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The blob must have stayed inline in the LSM tree, not in the value log
	// (whose space only a garbage collector reclaims): see doc.go.
	vlogs, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil || len(vlogs) == 0 {
		t.Fatalf("no value log in %s (%v): Badger layout changed?", dir, err)
	}
	for _, f := range vlogs {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= store.MaxBlobSize {
			t.Errorf("%s is %d bytes: the blob went to the value log", f, fi.Size())
		}
	}
}

func TestOpenNeedsDir(t *testing.T) {
	if s, err := store.Open(store.DefaultOptions("")); err == nil {
		s.Close()
		t.Fatal("Open with no directory and not in memory succeeded")
	}
}

func TestLoggerReceivesBadgerMessages(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug})
	s, err := store.Open(store.DefaultOptions(t.TempDir()).WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "component=badger") {
		t.Fatalf("no badger records logged:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "level=INFO") {
		t.Errorf("badger's informational chatter should be logged at debug level:\n%s", buf.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
