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

	"github.com/ksb-project/ksb/custody"
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

func cid(c, s uint64) custody.CustodyID { return custody.CustodyID{Commitment: c, Slot: s} }

// pathOf is a two-hash commit path (copy 1 of 3), distinct per seed.
func pathOf(seed byte) [][]byte {
	return [][]byte{bytes.Repeat([]byte{seed}, 32), bytes.Repeat([]byte{seed + 1}, 32)}
}

// entryFor describes blob held for custody id of owner's commitment for
// vault, copy 1 of 3, with a fixed received time.
func entryFor(owner []byte, id custody.CustodyID, vault string, blob []byte) store.Entry {
	return store.Entry{
		Custody:    id,
		Owner:      owner,
		Vault:      vault,
		CopyIndex:  1,
		Copies:     3,
		CommitPath: pathOf(byte(id.Commitment)),
		Digest:     sha256.Sum256(blob),
		Size:       int64(len(blob)),
		Received:   time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC),
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

func mustPut(t testing.TB, s *store.Store, e store.Entry, blob []byte) bool {
	t.Helper()
	added, err := s.Put(e, blob)
	if err != nil {
		t.Fatalf("Put(%v): %v", e.Custody, err)
	}
	return added
}

func sameEntry(a, b store.Entry) bool {
	return a.Custody == b.Custody && bytes.Equal(a.Owner, b.Owner) && a.Vault == b.Vault && a.Digest == b.Digest &&
		a.Size == b.Size && a.Received.Equal(b.Received) && a.CopyIndex == b.CopyIndex && a.Copies == b.Copies &&
		slices.EqualFunc(a.CommitPath, b.CommitPath, bytes.Equal)
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
	e := entryFor(owner, cid(7, 2), "thorpub1addwnpepqexample", blob)
	if !mustPut(t, s, e, blob) {
		t.Fatal("first Put reported a duplicate")
	}
	got, gotBlob, err := s.Get(e.Custody)
	if err != nil {
		t.Fatal(err)
	}
	if !sameEntry(got, e) {
		t.Errorf("Get entry = %+v, want %+v", got, e)
	}
	if !bytes.Equal(gotBlob, blob) {
		t.Error("Get returned different blob bytes")
	}
	if st, err := s.Stat(e.Custody); err != nil || !sameEntry(st, e) {
		t.Errorf("Stat = %+v, %v", st, err)
	}
	// The returned blob is the caller's: changing it must not change the store.
	gotBlob[0] ^= 0xff
	if _, again, err := s.Get(e.Custody); err != nil || !bytes.Equal(again, blob) {
		t.Errorf("second Get: err %v, equal %v", err, bytes.Equal(again, blob))
	}
	// So is the blob passed to Put, and the path.
	blob[1] ^= 0xff
	e.CommitPath[0][0] ^= 0xff
	if got, _, err := s.Get(e.Custody); err != nil || got.CommitPath[0][0] == e.CommitPath[0][0] {
		t.Errorf("Get after caller mutated its Put buffers: %v", err)
	}
}

func TestPutEmptyPath(t *testing.T) {
	// r = 1: the copy root is the commitment root, the path is empty.
	s := openTemp(t)
	blob := blobOf(3, 100)
	e := entryFor(ownerKey(1), cid(1, 0), "v", blob)
	e.CopyIndex, e.Copies, e.CommitPath = 0, 1, nil
	mustPut(t, s, e, blob)
	got, _, err := s.Get(e.Custody)
	if err != nil || !sameEntry(got, e) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestPutZeroReceivedUsesNow(t *testing.T) {
	s := openTemp(t)
	blob := blobOf(2, 100)
	e := entryFor(ownerKey(1), cid(1, 1), "v", blob)
	e.Received = time.Time{}
	before := time.Now()
	mustPut(t, s, e, blob)
	after := time.Now()
	got, _, err := s.Get(e.Custody)
	if err != nil {
		t.Fatal(err)
	}
	if got.Received.Before(before) || got.Received.After(after) {
		t.Errorf("Received = %v, want between %v and %v", got.Received, before, after)
	}
}

// TestPutOtherDigestReplaces: only one copy verifies against a custody's
// root, so a Put of other bytes for the same custody (the caller verified
// them) replaces what is stored — a copy corrupted on disk is healed by the
// owner's next push.
func TestPutOtherDigestReplaces(t *testing.T) {
	s := openTemp(t)
	owner := ownerKey(1)
	b1, b2 := blobOf(1, 500), blobOf(2, 700)
	e1 := entryFor(owner, cid(4, 0), "vault", b1)
	e2 := entryFor(owner, cid(4, 0), "vault", b2)
	e2.Received = e1.Received.Add(time.Hour)
	mustPut(t, s, e1, b1)
	if !mustPut(t, s, e2, b2) {
		t.Fatal("Put of other bytes reported a duplicate")
	}
	got, blob, err := s.Get(e1.Custody)
	if err != nil || !sameEntry(got, e2) || !bytes.Equal(blob, b2) {
		t.Fatalf("after replace Get = %+v, %v; want the new entry", got, err)
	}
	assertStats(t, s, 1, 700)
	// Another owner's bytes for the custody move the owner index too.
	e3 := entryFor(ownerKey(2), cid(4, 0), "vault", b1)
	mustPut(t, s, e3, b1)
	if es, err := s.Entries(owner); err != nil || len(es) != 0 {
		t.Fatalf("old owner still indexed: %v, %v", es, err)
	}
	if es, err := s.Entries(ownerKey(2)); err != nil || len(es) != 1 {
		t.Fatalf("new owner not indexed: %v, %v", es, err)
	}
}

func TestPutSameDigestIsNoOp(t *testing.T) {
	s := openTemp(t)
	blob := blobOf(1, 500)
	e := entryFor(ownerKey(1), cid(2, 1), "vault", blob)
	mustPut(t, s, e, blob)
	again := e
	again.Received = e.Received.Add(24 * time.Hour)
	if mustPut(t, s, again, blob) {
		t.Fatal("duplicate Put reported added")
	}
	got, _, err := s.Get(e.Custody)
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
	good := entryFor(owner, cid(3, 1), "vault", blob)
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
		{"non-ASCII vault", with(func(e *store.Entry) { e.Vault = "vé" }), blob, store.ErrBadVault},
		{"long vault", with(func(e *store.Entry) { e.Vault = strings.Repeat("v", store.MaxVaultLen+1) }), blob, store.ErrBadVault},
		{"vault the chain refuses", with(func(e *store.Entry) { e.Vault = "bad!vault#chars" }), blob, store.ErrBadVault},
		{"slot over 255", with(func(e *store.Entry) { e.Custody.Slot = 256 }), blob, store.ErrBadCustody},
		{"no copies", with(func(e *store.Entry) { e.Copies, e.CopyIndex = 0, 0 }), blob, store.ErrBadCustody},
		{"65 copies", with(func(e *store.Entry) { e.Copies = 65 }), blob, store.ErrBadCustody},
		{"copy index = copies", with(func(e *store.Entry) { e.CopyIndex = 3 }), blob, store.ErrBadCustody},
		{"negative copy index", with(func(e *store.Entry) { e.CopyIndex = -1 }), blob, store.ErrBadCustody},
		{"7-hash path", with(func(e *store.Entry) {
			e.CommitPath = append(pathOf(1), pathOf(3)...)
			e.CommitPath = append(e.CommitPath, pathOf(5)...)
			e.CommitPath = e.CommitPath[:7]
		}), blob, store.ErrBadPath},
		{"short path hash", with(func(e *store.Entry) { e.CommitPath = [][]byte{make([]byte, 31)} }), blob, store.ErrBadPath},
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
			added, err := s.Put(tc.e, tc.blob)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put error = %v, want %v", err, tc.want)
			}
			if added {
				t.Error("refused Put reported added")
			}
			assertStats(t, s, 0, 0)
		})
	}
}

func TestRefusedReplaceKeepsOld(t *testing.T) {
	s := openTemp(t)
	b1, b2 := blobOf(1, 500), blobOf(2, 500)
	e1 := entryFor(ownerKey(1), cid(5, 0), "vault", b1)
	mustPut(t, s, e1, b1)
	bad := entryFor(ownerKey(1), cid(5, 0), "vault", b2)
	bad.Digest[31] ^= 1
	if _, err := s.Put(bad, b2); !errors.Is(err, store.ErrDigestMismatch) {
		t.Fatalf("Put error = %v, want ErrDigestMismatch", err)
	}
	got, blob, err := s.Get(e1.Custody)
	if err != nil || !sameEntry(got, e1) || !bytes.Equal(blob, b1) {
		t.Fatalf("old entry damaged: %+v, %v", got, err)
	}
}

func TestGetDeleteNotFound(t *testing.T) {
	s := openTemp(t)
	if _, _, err := s.Get(cid(1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get on empty store: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(cid(1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat on empty store: %v, want ErrNotFound", err)
	}
	if err := s.Delete(cid(1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete on empty store: %v, want ErrNotFound", err)
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
	mustPut(t, s, entryFor(ownerKey(1), cid(1, 0), "v1", b1), b1)
	mustPut(t, s, entryFor(ownerKey(1), cid(2, 0), "v2", b2), b2)
	if err := s.Delete(cid(1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(cid(1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(cid(1, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	if _, blob, err := s.Get(cid(2, 0)); err != nil || !bytes.Equal(blob, b2) {
		t.Errorf("other copy damaged by Delete: %v", err)
	}
	// The owner index went with it.
	if es, err := s.Entries(ownerKey(1)); err != nil || len(es) != 1 || es[0].Custody != cid(2, 0) {
		t.Errorf("Entries(owner) after Delete = %v, %v", es, err)
	}
	assertStats(t, s, 1, 400)
}

func TestEntriesUsageStats(t *testing.T) {
	s := openTemp(t)
	type put struct {
		owner byte
		id    custody.CustodyID
		size  int
	}
	puts := []put{
		{3, cid(2, 1), 30}, {1, cid(2, 0), 10}, {2, cid(1, 2), 200}, {1, cid(300, 1), 20}, {3, cid(1, 0), 300}, {1, cid(9, 255), 5},
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(puts), func(i, j int) { puts[i], puts[j] = puts[j], puts[i] })
	for i, p := range puts {
		b := blobOf(uint64(i+10), p.size)
		mustPut(t, s, entryFor(ownerKey(p.owner), p.id, "vault", b), b)
	}

	all, err := s.Entries(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(puts) {
		t.Fatalf("Entries(nil) has %d entries, want %d", len(all), len(puts))
	}
	if !slices.IsSortedFunc(all, func(a, b store.Entry) int { return a.Custody.Compare(b.Custody) }) {
		t.Errorf("Entries(nil) not in custody order: %v", all)
	}

	want := map[byte]struct {
		ids   []custody.CustodyID
		bytes int64
	}{1: {[]custody.CustodyID{cid(2, 0), cid(9, 255), cid(300, 1)}, 35}, 2: {[]custody.CustodyID{cid(1, 2)}, 200}, 3: {[]custody.CustodyID{cid(1, 0), cid(2, 1)}, 330}}
	for o, w := range want {
		es, err := s.Entries(ownerKey(o))
		if err != nil {
			t.Fatal(err)
		}
		var ids []custody.CustodyID
		for _, e := range es {
			if !bytes.Equal(e.Owner, ownerKey(o)) {
				t.Errorf("Entries(owner %d) returned owner %x", o, e.Owner)
			}
			ids = append(ids, e.Custody)
		}
		if !slices.Equal(ids, w.ids) {
			t.Errorf("Entries(owner %d) = %v, want %v", o, ids, w.ids)
		}
		n, b, err := s.Usage(ownerKey(o))
		if err != nil {
			t.Fatal(err)
		}
		if n != len(w.ids) || b != w.bytes {
			t.Errorf("Usage(owner %d) = %d, %d; want %d, %d", o, n, b, len(w.ids), w.bytes)
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
		e := entryFor(ownerKey(byte(i%2+1)), cid(uint64(i+1), uint64(i)), fmt.Sprintf("vault%d", i), b)
		mustPut(t, s, e, b)
		want = append(want, e)
	}
	if err := s.Delete(want[4].Custody); err != nil {
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
		got, blob, err := s.Get(e.Custody)
		if err != nil {
			t.Fatalf("entry %d after reopen: %v", i, err)
		}
		if !sameEntry(got, e) || !bytes.Equal(blob, blobOf(uint64(i), 1000+i)) {
			t.Errorf("entry %d after reopen = %+v", i, got)
		}
	}
	if _, _, err := s.Get(cid(5, 4)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted entry back after reopen: %v", err)
	}
	if v, err := s.GetMeta("share/abc"); err != nil || string(v) != "state" {
		t.Errorf("meta after reopen = %q, %v", v, err)
	}
	assertStats(t, s, 4, 1000+1001+1002+1003)
}

// editDB opens the store's Badger directory behind its back and runs f.
func editDB(t *testing.T, dir string, f func(txn *badger.Txn) error) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptBlobDetected edits the database behind the store's back, through
// the key layout doc.go documents, and expects Get to notice.
func TestCorruptBlobDetected(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	blob := blobOf(1, 100)
	mustPut(t, s, entryFor(ownerKey(1), cid(0x1234, 3), "vault", blob), blob)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bk := []byte("b/000000000000123403")
	editDB(t, dir, func(txn *badger.Txn) error {
		if _, err := txn.Get(bk); err != nil {
			return fmt.Errorf("documented blob key %q: %w", bk, err)
		}
		return txn.Set(bk, append([]byte{blob[0] ^ 1}, blob[1:]...))
	})
	s = openDisk(t, dir)
	defer s.Close()
	if _, _, err := s.Get(cid(0x1234, 3)); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Get of altered blob: %v, want ErrCorrupt", err)
	}
	// The owner's next push of the right bytes heals it.
	mustPut(t, s, entryFor(ownerKey(1), cid(0x1234, 3), "vault", blob), blob)
	if _, got, err := s.Get(cid(0x1234, 3)); err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("after a new Put: %v", err)
	}
}

// TestLegacyLayoutDropped: a store written before custodies (blobs under
// e/<owner>/<vault> and d/<owner>/<vault>) opens with those blobs deleted —
// no custody chain counts them — and its records kept.
func TestLegacyLayoutDropped(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	if err := s.PutMeta("own/v", []byte("record")); err != nil {
		t.Fatal(err)
	}
	blob := blobOf(2, 50)
	mustPut(t, s, entryFor(ownerKey(1), cid(1, 0), "v", blob), blob)
	s.Close()
	editDB(t, dir, func(txn *badger.Txn) error {
		for i := range 3 {
			k := fmt.Sprintf("%x/vault%d", ownerKey(1), i)
			if err := txn.Set([]byte("e/"+k), make([]byte, 49)); err != nil {
				return err
			}
			if err := txn.Set([]byte("d/"+k), []byte("old blob")); err != nil {
				return err
			}
		}
		return nil
	})
	var logs bytes.Buffer
	var mu sync.Mutex
	s, err := store.Open(store.DefaultOptions(dir).WithLogger(slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	assertStats(t, s, 1, 50)
	if v, err := s.GetMeta("own/v"); err != nil || string(v) != "record" {
		t.Fatalf("record lost: %q, %v", v, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "count=3") {
		t.Fatalf("the deletion is not logged:\n%s", logs.String())
	}
	s.Close()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(txn *badger.Txn) error {
		for _, p := range []string{"e/", "d/"} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p)})
			for it.Rewind(); it.Valid(); it.Next() {
				t.Errorf("legacy key %q left", it.Item().Key())
			}
			it.Close()
		}
		return nil
	})
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
	e := entryFor(ownerKey(1), cid(1, 0), "v", blob)
	checks := map[string]error{
		"Close":      s.Close(),
		"Delete":     s.Delete(e.Custody),
		"PutMeta":    s.PutMeta("k", nil),
		"DeleteMeta": s.DeleteMeta("k"),
		"ScanMeta":   s.ScanMeta("", func(string, []byte) error { return nil }),
	}
	_, checks["Put"] = s.Put(e, blob)
	_, _, checks["Get"] = s.Get(e.Custody)
	_, checks["Stat"] = s.Stat(e.Custody)
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

// TestConcurrentPuts puts the same copy of one custody from many goroutines
// (an owner's retries racing): every Put succeeds, exactly one adds it.
func TestConcurrentPuts(t *testing.T) {
	s := openTemp(t)
	const n = 8
	blob := blobOf(9, 256)
	e := entryFor(ownerKey(1), cid(3, 0), "vault", blob)
	var added, errs atomicCount
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			a, err := s.Put(e, blob)
			if err != nil {
				errs.add()
			} else if a {
				added.add()
			}
		})
	}
	wg.Wait()
	if errs.n != 0 || added.n != 1 {
		t.Fatalf("%d errors, %d Puts added the copy; want 0 and 1", errs.n, added.n)
	}
	assertStats(t, s, 1, 256)
}

type atomicCount struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCount) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }

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
			e := entryFor(ownerKey(1), cid(1, 0), "vault", blob)
			mustPut(t, s, e, blob)
			if _, got, err := s.Get(e.Custody); err != nil || !bytes.Equal(got, blob) {
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

// TestUsageFollowsWrites checks the owners' usage, which the store keeps in
// memory, through every write that changes it — a new copy, a replacement
// of another size, a copy of the same custody for another owner, a Delete —
// and after a reopen, which computes it again from the headers.
func TestUsageFollowsWrites(t *testing.T) {
	dir := t.TempDir()
	s := openDisk(t, dir)
	want := func(s *store.Store, o byte, n int, b int64) {
		t.Helper()
		if gn, gb, err := s.Usage(ownerKey(o)); err != nil || gn != n || gb != b {
			t.Errorf("Usage(owner %d) = %d, %d, %v; want %d, %d", o, gn, gb, err, n, b)
		}
	}
	b1, b2, b3 := blobOf(1, 300), blobOf(2, 400), blobOf(3, 500)
	mustPut(t, s, entryFor(ownerKey(1), cid(1, 0), "v", b1), b1)
	mustPut(t, s, entryFor(ownerKey(1), cid(2, 0), "v", b2), b2)
	want(s, 1, 2, 700)
	if !s.Holds(ownerKey(1), cid(1, 0)) || s.Holds(ownerKey(2), cid(1, 0)) || s.Holds(ownerKey(1), cid(3, 0)) {
		t.Error("Holds does not follow the copies")
	}
	mustPut(t, s, entryFor(ownerKey(1), cid(1, 0), "v", b3), b3) // replaced: 300 → 500 bytes
	want(s, 1, 2, 900)
	b4 := blobOf(4, 450)
	mustPut(t, s, entryFor(ownerKey(2), cid(2, 0), "v", b4), b4) // now owner 2's
	want(s, 1, 1, 500)
	want(s, 2, 1, 450)
	if err := s.Delete(cid(1, 0)); err != nil {
		t.Fatal(err)
	}
	want(s, 1, 0, 0)
	if s.Holds(ownerKey(1), cid(1, 0)) {
		t.Error("Holds a deleted copy")
	}
	mustPut(t, s, entryFor(ownerKey(1), cid(4, 1), "v", b1), b1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openDisk(t, dir)
	defer r.Close()
	want(r, 1, 1, 300)
	want(r, 2, 1, 450)
	if !r.Holds(ownerKey(2), cid(2, 0)) || !r.Holds(ownerKey(1), cid(4, 1)) {
		t.Error("Holds after reopen does not follow the copies")
	}
}
