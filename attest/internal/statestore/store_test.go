package statestore_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

func open(t testing.TB, opts statestore.Options) *statestore.Store {
	t.Helper()
	s, err := statestore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustSet(t testing.TB, s *statestore.Store, k, v string) {
	t.Helper()
	if err := s.Set([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Set(%q): %v", k, err)
	}
}

func mustCommit(t testing.TB, s *statestore.Store) *statestore.Snapshot {
	t.Helper()
	snap, err := s.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func scanAll(t testing.TB, iterate func([]byte, func(k, v []byte) error) error, prefix string) string {
	t.Helper()
	var out []string
	if err := iterate([]byte(prefix), func(k, v []byte) error { out = append(out, string(k)+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// TestVersionsAndReopen: the working tree's hash is what Commit saves,
// versions count from 1, a snapshot sees its version only, and a reopened
// store is at its latest version with the same hash and content.
func TestVersionsAndReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, statestore.DefaultOptions(dir))
	if l := s.Latest(); l.Version() != 0 || l.Hash() != nil || s.WorkingVersion() != 1 {
		t.Fatalf("new store: latest %d %x, working version %d", l.Version(), l.Hash(), s.WorkingVersion())
	}
	mustSet(t, s, "a/1", "one")
	mustSet(t, s, "a/2", "two")
	mustSet(t, s, "b/1", "bee")
	if v, _ := s.Get([]byte("a/2")); string(v) != "two" {
		t.Fatalf("working Get = %q", v)
	}
	wh := s.WorkingHash()
	v1 := mustCommit(t, s)
	if v1.Version() != 1 || !bytes.Equal(v1.Hash(), wh) || len(wh) != 32 {
		t.Fatalf("commit 1: version %d hash %x, working hash was %x", v1.Version(), v1.Hash(), wh)
	}

	mustSet(t, s, "a/2", "TWO")
	if err := s.Delete([]byte("a/1")); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "a/3", "three")
	if got := scanAll(t, s.Iterate, "a/"); got != "a/2=TWO a/3=three" {
		t.Fatalf("working scan = %q", got)
	}
	if got := scanAll(t, v1.Iterate, "a/"); got != "a/1=one a/2=two" {
		t.Fatalf("version 1 scan while 2 is written = %q", got)
	}
	v2 := mustCommit(t, s)
	if got := scanAll(t, v1.Iterate, ""); got != "a/1=one a/2=two b/1=bee" {
		t.Fatalf("version 1 scan after 2 = %q", got)
	}
	if got := scanAll(t, v2.Iterate, ""); got != "a/2=TWO a/3=three b/1=bee" {
		t.Fatalf("version 2 scan = %q", got)
	}
	// An empty block: a new version with the same root.
	v3 := mustCommit(t, s)
	if v3.Version() != 3 || !bytes.Equal(v3.Hash(), v2.Hash()) {
		t.Fatalf("empty commit: version %d hash %x, want 3 and %x", v3.Version(), v3.Hash(), v2.Hash())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("a/2")); !errors.Is(err, statestore.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := v2.Get([]byte("a/2")); !errors.Is(err, statestore.ErrClosed) {
		t.Fatalf("snapshot Get after Close: %v", err)
	}

	s = open(t, statestore.DefaultOptions(dir))
	l := s.Latest()
	if l.Version() != 3 || !bytes.Equal(l.Hash(), v2.Hash()) {
		t.Fatalf("reopened at %d %x, want 3 %x", l.Version(), l.Hash(), v2.Hash())
	}
	if got := scanAll(t, l.Iterate, ""); got != "a/2=TWO a/3=three b/1=bee" {
		t.Fatalf("reopened scan = %q", got)
	}
	old, err := s.At(1)
	if err != nil || !bytes.Equal(old.Hash(), v1.Hash()) {
		t.Fatalf("At(1) after reopen: %v", err)
	}
	if v, _ := old.Get([]byte("a/1")); string(v) != "one" {
		t.Fatalf("version 1 a/1 = %q", v)
	}
}

func TestRefusals(t *testing.T) {
	s := open(t, statestore.DefaultOptions(t.TempDir()))
	for name, err := range map[string]error{
		"empty key":       s.Set(nil, []byte("x")),
		"empty value":     s.Set([]byte("k"), []byte{}),
		"nil value":       s.Set([]byte("k"), nil),
		"delete empty":    s.Delete(nil),
		"initial version": s.SetInitialVersion(0),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := s.At(1); !errors.Is(err, statestore.ErrVersionNotCommitted) {
		t.Errorf("At(1) on an empty store: %v", err)
	}
	if _, _, err := s.Latest().Prove([]byte("k")); err == nil {
		t.Error("a proof with nothing committed")
	}
	mustSet(t, s, "k", "v")
	mustCommit(t, s)
	if err := s.SetInitialVersion(5); !errors.Is(err, statestore.ErrBadVersion) {
		t.Errorf("SetInitialVersion after a commit: %v", err)
	}
	if _, err := s.At(0); !errors.Is(err, statestore.ErrBadVersion) {
		t.Errorf("At(0): %v", err)
	}
	if _, err := statestore.Open(statestore.Options{}); err == nil {
		t.Error("Open without a directory")
	}
}

// TestRollback: Rollback discards the working changes, before and after the
// first commit.
func TestRollback(t *testing.T) {
	s := open(t, statestore.DefaultOptions(t.TempDir()))
	mustSet(t, s, "x", "1")
	s.Rollback()
	if v, _ := s.Get([]byte("x")); v != nil {
		t.Fatal("rolled-back write visible")
	}
	mustSet(t, s, "x", "2")
	first := mustCommit(t, s)
	mustSet(t, s, "x", "3")
	mustSet(t, s, "y", "4")
	s.Rollback()
	if !bytes.Equal(s.WorkingHash(), first.Hash()) {
		t.Fatal("working hash after rollback differs from the last commit")
	}
	if second := mustCommit(t, s); second.Version() != 2 || !bytes.Equal(second.Hash(), first.Hash()) {
		t.Fatal("rollback left changes in the next version")
	}
}

func TestInitialVersion(t *testing.T) {
	dir := t.TempDir()
	s := open(t, statestore.DefaultOptions(dir))
	if err := s.SetInitialVersion(100); err != nil {
		t.Fatal(err)
	}
	if s.WorkingVersion() != 100 {
		t.Fatalf("working version %d", s.WorkingVersion())
	}
	mustSet(t, s, "k", "v")
	if v := mustCommit(t, s); v.Version() != 100 {
		t.Fatalf("first version %d, want 100", v.Version())
	}
	if v := mustCommit(t, s); v.Version() != 101 {
		t.Fatalf("second version %d", v.Version())
	}
	s.Close()
	if s = open(t, statestore.DefaultOptions(dir)); s.Latest().Version() != 101 {
		t.Fatalf("reopened at %d", s.Latest().Version())
	}
}

// TestKeepRecent: versions older than KeepRecent are pruned every
// PruneInterval commits; the kept ones answer with valid proofs while the
// next block is being written.
func TestKeepRecent(t *testing.T) {
	s := open(t, statestore.DefaultOptions(t.TempDir()).WithKeepRecent(3).WithPruneInterval(2))
	hashes := map[int64][]byte{}
	for v := int64(1); v <= 10; v++ {
		mustSet(t, s, "k", fmt.Sprintf("value at %d", v))
		mustSet(t, s, fmt.Sprintf("n/%d", v), "x")
		hashes[v] = mustCommit(t, s).Hash()
	}
	mustSet(t, s, "k", "being written") // block 11, not committed
	for v := int64(1); v <= 7; v++ {
		if _, err := s.At(v); !errors.Is(err, statestore.ErrVersionPruned) {
			t.Errorf("At(%d): %v, want ErrVersionPruned", v, err)
		}
	}
	for v := int64(8); v <= 10; v++ {
		snap, err := s.At(v)
		if err != nil {
			t.Fatalf("At(%d): %v", v, err)
		}
		val, proof, err := snap.Prove([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("value at %d", v); string(val) != want || !ics23.VerifyMembership(statestore.ProofSpec, hashes[v], proof, []byte("k"), val) {
			t.Fatalf("version %d: %q, proof verifies: %v", v, val, ics23.VerifyMembership(statestore.ProofSpec, hashes[v], proof, []byte("k"), val))
		}
	}
	if _, err := s.At(11); !errors.Is(err, statestore.ErrVersionNotCommitted) {
		t.Errorf("At(11) before its commit: %v", err)
	}
}

// TestSnapshotsWhileCommitting reads and proves committed versions from
// several goroutines while blocks are written and committed (run with
// -race): every read sees exactly its version.
func TestSnapshotsWhileCommitting(t *testing.T) {
	s := open(t, statestore.DefaultOptions(t.TempDir()).WithKeepRecent(1000))
	const keys = 50
	write := func(v int) {
		for i := range keys {
			if i%5 == v%5 {
				mustSet(t, s, fmt.Sprintf("k/%03d", i), fmt.Sprintf("%d", v))
			}
		}
		mustSet(t, s, "version", fmt.Sprint(v))
	}
	write(1)
	mustCommit(t, s)
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		reads atomic.Int64
		errc  = make(chan error, 4)
	)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				snap := s.Latest()
				if g%2 == 1 && snap.Version() > 2 {
					var err error
					if snap, err = s.At(snap.Version() - 1); err != nil {
						errc <- err
						return
					}
				}
				if err := checkSnapshot(snap, keys); err != nil {
					errc <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	for v := 2; v <= 60; v++ {
		write(v)
		mustCommit(t, s)
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("%d consistent snapshot reads during 59 commits", reads.Load())
}

// checkSnapshot checks that snap's keys all belong to its version: key i
// was last written at the latest version ≤ snap's with v%5 == i%5.
func checkSnapshot(snap *statestore.Snapshot, keys int) error {
	v := snap.Version()
	got, err := snap.Get([]byte("version"))
	if err != nil || string(got) != fmt.Sprint(v) {
		return fmt.Errorf("version %d reads version %q, %v", v, got, err)
	}
	n := 0
	err = snap.Iterate([]byte("k/"), func(k, val []byte) error {
		var i, w int
		fmt.Sscanf(string(k), "k/%d", &i)
		fmt.Sscanf(string(val), "%d", &w)
		if w > int(v) || w%5 != i%5 || int(v)-w >= 5 && int(v) >= 5 {
			return fmt.Errorf("version %d: %s = %s", v, k, val)
		}
		n++
		return nil
	})
	if err != nil {
		return err
	}
	val, proof, err := snap.Prove([]byte("version"))
	if err != nil {
		return err
	}
	if !ics23.VerifyMembership(statestore.ProofSpec, snap.Hash(), proof, []byte("version"), val) {
		return fmt.Errorf("version %d: proof does not verify", v)
	}
	return nil
}

func TestCloseWaitsForReaders(t *testing.T) {
	s, err := statestore.Open(statestore.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		mustSet(t, s, fmt.Sprintf("k/%03d", i), "v")
	}
	snap := mustCommit(t, s)
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- snap.Iterate([]byte("k/"), func(k, v []byte) error {
			if string(k) == "k/050" {
				close(inside)
				<-release
			}
			return nil
		})
	}()
	<-inside
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	// Once new reads are refused, Close has begun; it must still wait for
	// the one in flight.
	for {
		if _, err := snap.Get([]byte("k/001")); errors.Is(err, statestore.ErrClosed) {
			break
		}
		runtime.Gosched()
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a read was in flight")
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the read in flight failed: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
