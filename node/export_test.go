package node

import (
	"context"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/store"
)

// Hooks for the black-box tests of the holder's queue (holder_test.go): they
// drive the real queue, store and chain client one step at a time instead of
// through Run's timers.

// Accept queues the attestation of e as the holder service does when it
// stores a copy (the records of acceptRecords, here written without the
// copy, then onAccepted).
func (n *Node) Accept(e store.Entry) error {
	acc := n.acceptRecords(e)
	err := n.st.WriteMeta(acc.Records)
	acc.Done(err == nil)
	if err != nil {
		return err
	}
	return n.onAccepted(e)
}

// FlushQueues sends what is queued, one batcher round, and returns the first
// error of the two queues.
func (n *Node) FlushQueues(ctx context.Context) error {
	if err := n.flush(ctx, attestPrefix); err != nil {
		return err
	}
	return n.flush(ctx, releasePrefix)
}

// Poll reads the chain once, as the follower does (it reconciles held
// copies at its first poll).
func (n *Node) Poll(ctx context.Context) error { return n.pollChain(ctx) }

// Reconcile compares held copies with the chain's view of the last poll.
func (n *Node) Reconcile(ctx context.Context) error { return n.reconcileHeld(ctx, n.member.current()) }

// Prove answers the current epoch's challenges once, as the prover does.
func (n *Node) Prove(ctx context.Context) error { return n.prove(ctx) }

// QueueRelease queues the release of custody id.
func (n *Node) QueueRelease(id custody.CustodyID) { n.queueReleases([]custody.CustodyID{id}) }

// Close closes the node without running it.
func (n *Node) Close() { n.closeAll() }

// Store is the node's store.
func (n *Node) Store() *store.Store { return n.st }

// Queued counts the records of the queue of kind "attest" or "release" in
// the store: the truth the pending gauge must follow.
func (n *Node) Queued(kind string) int {
	prefix := attestPrefix
	if kind == "release" {
		prefix = releasePrefix
	}
	c := 0
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	n.st.ScanMeta(prefix, func(string, []byte) error { c++; return nil })
	return c
}

// OwnCopies counts the sealed copies of its own shares the node keeps.
func (n *Node) OwnCopies() int {
	c := 0
	n.st.ScanMeta(ownCopyPrefix, func(string, []byte) error { c++; return nil })
	return c
}
