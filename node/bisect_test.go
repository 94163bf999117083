package node

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/store"
)

// bisectRig is a holder's queue on a real store, whose transactions go to a
// stand-in chain that refuses for good every transaction containing one of
// the bad entries. The chain's own refusals of single entries are tested
// with the real chain in holder_test.go; this checks how many transactions
// the splitting costs, which the real chain only reaches when its state
// changes between two reads.
type bisectRig struct {
	n   *Node
	bad map[custody.CustodyID]bool
	txs int
	ok  []custody.CustodyID
}

func newBisectRig(t *testing.T) *bisectRig {
	t.Helper()
	st, err := store.Open(store.DefaultOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n := &Node{cfg: config.Default(), st: st, m: newMetrics(prometheus.NewRegistry()), log: slog.New(slog.DiscardHandler)}
	return &bisectRig{n: n, bad: map[custody.CustodyID]bool{}}
}

func (r *bisectRig) sendTx(_ context.Context, ids []custody.CustodyID) error {
	r.txs++
	for _, id := range ids {
		if r.bad[id] {
			return &attest.TxError{Hash: "X", Height: 1, Code: attest.CodeNotAssigned, Log: "entry refused"}
		}
	}
	r.ok = append(r.ok, ids...)
	return nil
}

// queue puts n entries in the attestation queue, the ones at bad indexes
// refused by the stand-in chain.
func (r *bisectRig) queue(t *testing.T, n int, bad ...int) []queuedEntry {
	t.Helper()
	for i := range n {
		id := custody.CustodyID{Commitment: uint64(i/3 + 1), Slot: uint64(i % 3)}
		if slices.Contains(bad, i) {
			r.bad[id] = true
		}
		r.n.pendingMu.Lock()
		_, err := r.n.enqueue(attestPrefix, id)
		r.n.pendingMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	items, err := r.n.queued(attestPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func (r *bisectRig) round() *flushRound {
	return &flushRound{n: r.n, prefix: attestPrefix, budget: maxFlushTxs, sendTx: r.sendTx}
}

func TestBisectIsolatesOneBadEntryInAFullBatch(t *testing.T) {
	r := newBisectRig(t)
	items := r.queue(t, maxBatchEntries, 700)
	f := r.round()
	if err := f.bisect(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	f.report()
	t.Logf("%d transactions for %d entries, one refused", r.txs, maxBatchEntries)
	if r.txs > 21 {
		t.Errorf("%d transactions to isolate one entry in %d, want at most 21", r.txs, maxBatchEntries)
	}
	if len(r.ok) != maxBatchEntries-1 || f.dropped[dropRefused] != 1 {
		t.Errorf("%d committed, %d dropped; want %d and 1", len(r.ok), f.dropped[dropRefused], maxBatchEntries-1)
	}
	if left, _ := r.n.queued(attestPrefix); len(left) != 0 {
		t.Errorf("%d entries still queued", len(left))
	}
}

// Every entry refused: the round stops at its budget, and what it did not
// reach stays queued for the next one.
func TestBisectStopsAtItsBudget(t *testing.T) {
	r := newBisectRig(t)
	all := make([]int, 64)
	for i := range all {
		all[i] = i
	}
	items := r.queue(t, 64, all...)
	f := r.round()
	err := f.bisect(context.Background(), items)
	f.report()
	if err != errFlushBudget || r.txs != maxFlushTxs {
		t.Fatalf("bisect = %v after %d transactions; want errFlushBudget after %d", err, r.txs, maxFlushTxs)
	}
	left, _ := r.n.queued(attestPrefix)
	if dropped := f.dropped[dropRefused]; dropped == 0 || len(left) != 64-dropped {
		t.Fatalf("%d dropped, %d left of 64", dropped, len(left))
	}
}
