package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/ksb-project/ksb/custody"
)

// TestPutsShareAGroup holds the committer on its first Put while six more
// Puts and a PutMeta arrive, and checks that the eight are written as one
// group — one transaction, one sync — and that every call returned only
// after its group, with its copy or record readable and counted. The hooks make the grouping
// deterministic: nothing here depends on timing.
func TestPutsShareAGroup(t *testing.T) {
	hold, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var groups []int
	testHookGather = func() { once.Do(func() { close(hold); <-release }) }
	testHookGroup = func(n int) { mu.Lock(); groups = append(groups, n); mu.Unlock() }
	defer func() { testHookGather, testHookGroup = nil, nil }()

	s, err := Open(DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	owner := secp256k1.PrivKeyFromBytes([]byte{7}).PubKey().SerializeCompressed()
	entry := func(i int) (Entry, []byte) {
		blob := bytes.Repeat([]byte{byte(i)}, 1000+i)
		return Entry{
			Custody: custody.CustodyID{Commitment: uint64(i + 1)}, Owner: owner, Vault: fmt.Sprintf("v%d", i),
			Copies: 1, Digest: sha256.Sum256(blob), Size: int64(len(blob)),
		}, blob
	}
	var wg sync.WaitGroup
	put := func(i int) {
		e, blob := entry(i)
		wg.Go(func() {
			if added, err := s.Put(e, blob); err != nil || !added {
				t.Errorf("Put %d: %v, %v", i, added, err)
			}
		})
	}
	put(0)
	<-hold // the committer has Put 0 and waits
	for i := 1; i < 7; i++ {
		put(i)
	}
	// A record (a holder's queued attestation) rides in the same group.
	wg.Go(func() {
		if err := s.PutMeta("q/attest/1", []byte("queued")); err != nil {
			t.Errorf("PutMeta: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); len(s.puts) < 7; {
		if time.Now().After(deadline) {
			t.Fatalf("%d Puts queued, want 7", len(s.puts))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(groups) != 1 || groups[0] != 8 {
		t.Fatalf("groups %v, want one of 8 Puts", groups)
	}
	if v, err := s.GetMeta("q/attest/1"); err != nil || string(v) != "queued" {
		t.Errorf("record after the group: %q, %v", v, err)
	}
	for i := range 7 {
		want, blob := entry(i)
		if e, got, err := s.Get(want.Custody); err != nil || !bytes.Equal(got, blob) || e.Size != want.Size {
			t.Errorf("copy %d after the group: %v", i, err)
		}
	}
	if n, b, err := s.Usage(owner); err != nil || n != 7 || b != 7*1000+21 {
		t.Errorf("Usage = %d, %d, %v; want 7, %d", n, b, err, 7*1000+21)
	}
}
