package attest_test

import (
	"context"
	"testing"
	"time"

	"github.com/ksb-project/ksb/attest"
)

// TestSenderSequenceTakenByAnother: two Senders of one key (a restarted
// process whose predecessor's last transaction is still to commit, as a
// validator's consensus WAL replays it after a restart) number a
// transaction each with the same sequence. One commits; the other is
// dropped from the mempool at recheck, and its Send notices that its
// sequence was taken, re-reads the account and commits with the next one,
// instead of waiting MaxCommitWait for a transaction that can never
// commit and failing (TestEmbeddedKilledRestarts, cycle 3: "transaction
// not committed").
func TestSenderSequenceTakenByAnother(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	c, err := attest.NewClient(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	// Well under MaxCommitWait: a Send still waiting for the dropped
	// transaction fails with this context's deadline.
	ctx, cancel := context.WithTimeout(context.Background(), attest.MaxCommitWait/2)
	defer cancel()
	seq, err := c.Sequence(ctx, addr(1))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		// Fresh Senders read the sequence on their first Send: the same
		// one, both sending within one block.
		a, b := attest.NewSender(c, testIDs[1]), attest.NewSender(c, testIDs[1])
		errs := make(chan error, 2)
		start := time.Now()
		for i, s := range []*attest.Sender{a, b} {
			go func() {
				_, err := s.Send(ctx, update(10+2*round+i))
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v (after %v)", round, err, time.Since(start).Round(time.Millisecond))
			}
		}
		t.Logf("round %d: both committed in %v", round, time.Since(start).Round(time.Millisecond))
	}
	if got, err := c.Sequence(ctx, addr(1)); err != nil || got != seq+6 {
		t.Fatalf("sequence %d, %v; want %d (six transactions)", got, err, seq+6)
	}
}
