package node

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/store"
)

// silentSet is the custodies whose copies DropCopy deleted silently: the
// holder neither releases them nor reports them lost, as a holder that
// dropped copies and hopes nobody notices would.
type silentSet struct {
	mu  sync.Mutex
	ids map[custody.CustodyID]bool
}

// DropCopy deletes the copy this node holds for custody id from its store
// while it runs, as a failing disk or a careless operator would: for tests
// and drills of the chain's possession proofs. With silent false the node
// behaves as an honest holder that lost the copy: its next reconcile or
// challenge finds it missing and releases the custody, so the chain repairs
// it at once. With silent true it does not: it keeps quiet and misses the
// custody's challenges, as a holder that deletes what it attested would, and
// the chain turns the custody stale, then failed. A push of the copy (the
// owner's, or a repair's) ends the silence.
//
// No command or endpoint of a default build calls it: the admin route
// POST /debug/drop-copy exists only in builds with the ksb_testhooks tag.
// It returns an error wrapping store.ErrNotFound when the copy is not held.
func (n *Node) DropCopy(id custody.CustodyID, silent bool) error {
	n.pendingMu.Lock()
	defer n.pendingMu.Unlock()
	if _, err := n.st.Stat(id); err != nil {
		return fmt.Errorf("custody %s: %w", idString(id), err)
	}
	if silent {
		n.silent.mu.Lock()
		if n.silent.ids == nil {
			n.silent.ids = map[custody.CustodyID]bool{}
		}
		n.silent.ids[id] = true
		n.silent.mu.Unlock()
	}
	if err := n.st.Delete(id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	n.log.Warn("held copy deleted on request (a test or drill hook)", "custody", idString(id), "silent", silent)
	return nil
}

// isSilent reports whether id's copy was dropped silently.
func (n *Node) isSilent(id custody.CustodyID) bool {
	n.silent.mu.Lock()
	defer n.silent.mu.Unlock()
	return n.silent.ids[id]
}

// forgetSilent ends the silence about id (its copy is back).
func (n *Node) forgetSilent(id custody.CustodyID) {
	n.silent.mu.Lock()
	defer n.silent.mu.Unlock()
	delete(n.silent.ids, id)
}
