package node

import (
	"context"

	"github.com/ksb-project/ksb/store"
)

// Hooks for the black-box tests of the holder's queue (holder_test.go): they
// drive the real queue, store and chain client one step at a time instead of
// through Run's timers.

// Accept runs what the holder service runs after storing a blob (it queues
// the attestation), for entries a push can no longer deliver: a queue
// written by an older version.
func (n *Node) Accept(e store.Entry) error { return n.onAccepted(e) }

// FlushQueues sends what is queued, one batcher round, and returns the first
// error of the two queues.
func (n *Node) FlushQueues(ctx context.Context) error {
	if err := n.flush(ctx, attestPrefix); err != nil {
		return err
	}
	return n.flush(ctx, releasePrefix)
}

// Poll reads the chain once, as the follower does.
func (n *Node) Poll(ctx context.Context) error { return n.pollChain(ctx) }

// Reconcile compares held blobs with the chain once.
func (n *Node) Reconcile(ctx context.Context) error { return n.reconcileHeld(ctx) }

// QueueRelease queues the release of (owner address, vault, digest hex).
func (n *Node) QueueRelease(owner, vault, digest string, size int64) {
	n.queueRelease(pendingEntry{Owner: owner, Vault: vault, Digest: digest, Size: size})
}

// Close closes the node without running it.
func (n *Node) Close() { n.closeAll() }

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
