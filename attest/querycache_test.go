package attest

import (
	"sync"
	"sync/atomic"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
)

// TestAnswerCacheComputesOncePerVersion: however many callers ask for one
// version at once, the answer is computed once; a caller of the latest
// version that comes while a newer one is computed gets the last answer
// instead of waiting or computing; a failed computation is not kept.
func TestAnswerCacheComputesOncePerVersion(t *testing.T) {
	var c answerCache
	key := answerKey{path: "/coverage"}
	var computed atomic.Int32
	release := make(chan struct{})
	compute := func(v byte) func() *abci.QueryResponse {
		return func() *abci.QueryResponse {
			computed.Add(1)
			<-release
			return &abci.QueryResponse{Code: CodeOK, Value: []byte{v}}
		}
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := c.get(5, false, key, compute(5)); r.Value[0] != 5 {
				t.Errorf("got the answer of version %d, want 5", r.Value[0])
			}
		}()
	}
	close(release)
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Fatalf("version 5 computed %d times by 16 callers, want 1", n)
	}

	// Version 6 is being computed: a latest-version caller gets 5's answer
	// at once; an explicit caller of 6 waits for it.
	release = make(chan struct{})
	started := make(chan struct{})
	go func() {
		c.get(6, true, key, func() *abci.QueryResponse {
			close(started)
			<-release
			return &abci.QueryResponse{Code: CodeOK, Value: []byte{6}}
		})
	}()
	<-started
	if r := c.get(6, true, key, compute(6)); r.Value[0] != 5 {
		t.Fatalf("latest caller during the computation got version %d, want the last answer (5)", r.Value[0])
	}
	got := make(chan byte)
	go func() { got <- c.get(6, false, key, compute(6)).Value[0] }()
	close(release)
	if v := <-got; v != 6 {
		t.Fatalf("explicit caller of version 6 got %d", v)
	}
	if n := computed.Load(); n != 1 {
		t.Fatalf("%d computations by the plain callers, want 1 (version 5 only)", n)
	}
	// A failure is not kept.
	fails := 0
	for range 2 {
		c.get(7, false, key, func() *abci.QueryResponse { fails++; return &abci.QueryResponse{Code: CodeInternal} })
	}
	if fails != 2 {
		t.Fatalf("a failed answer was kept: computed %d times for 2 calls", fails)
	}
}

// TestAnswerCacheKeepsOnePerPath: answers are kept per path and proof
// flag; a new version starts afresh; at most maxCachedAnswers are kept.
func TestAnswerCacheKeepsOnePerPath(t *testing.T) {
	var c answerCache
	n := 0
	compute := func() *abci.QueryResponse { n++; return &abci.QueryResponse{Code: CodeOK} }
	for range 2 {
		c.get(1, false, answerKey{"/coverage/a", false}, compute)
		c.get(1, false, answerKey{"/coverage/a", true}, compute)
		c.get(1, false, answerKey{"/coverage/b", false}, compute)
	}
	if n != 3 {
		t.Fatalf("%d computations for 3 keys asked twice, want 3", n)
	}
	c.get(2, false, answerKey{"/coverage/a", false}, compute)
	if n != 4 || len(c.latest) != 1 {
		t.Fatalf("a new version: %d computations, %d kept; want 4, 1", n, len(c.latest))
	}
	for i := range maxCachedAnswers + 10 {
		c.get(2, false, answerKey{path: "/coverage/" + string(rune('a'+i%26)) + itoa(uint64(i))}, compute)
	}
	if len(c.latest) != maxCachedAnswers {
		t.Fatalf("%d answers kept, want at most %d", len(c.latest), maxCachedAnswers)
	}
}
