package node

import (
	"context"
	"errors"
	"time"

	"github.com/ksb-project/ksb/p2p"
)

// One identity, one process. A second process started with a node's
// mnemonic (a copied home, a failover script that forgot to stop the
// primary) has its identity but not its store: it would release every
// custody the real node attested, and the chain would fail copies that are
// safe. The rule:
//
//   - Before it releases anything (the held-copy reconcile, at the first
//     poll after a start and every heldReconcileEvery polls), the node
//     probes its own peer ID at the addresses the chain lists for it
//     (p2p.ProbeInstance, from a throwaway host). The key's holder answers
//     with the random nonce its process drew at start.
//   - An answer with another nonce (or a host holding the key that does not
//     speak the instance protocol) is another live instance: this process
//     queues no release and sends none of those queued, logs an error each
//     reconcile, and reports it in Status.Instance. It keeps everything
//     else (it accepts and attests copies pushed to it: those it holds).
//   - An answer with its own nonce (the node restarted at its own address)
//     or no answer (nothing listens there, another peer ID does) is no other
//     instance: a restarted node with an empty store (a dead disk) releases
//     what it lost at once, so the chain repairs it without waiting for
//     missed proofs.
//
// What this cannot see: another instance that is not at the chain's
// addresses (both processes elsewhere) and the chain listing addresses this
// host cannot reach (a NAT without hairpin). There, missed proofs still
// fail the custodies of the process without the copies, a round later.

// OtherInstance describes another live process of this node's identity.
type OtherInstance struct {
	// Addr is where it answered.
	Addr string `json:"addr"`
	// Since is when it was first seen (this process's clock); Checked the
	// last probe that saw it.
	Since   time.Time `json:"since"`
	Checked time.Time `json:"checked"`
}

// probeInstance probes this node's peer ID at the addresses the chain lists
// for it and records the answer. It returns the other instance, or nil when
// there is none.
func (n *Node) probeInstance(ctx context.Context, v *chainView) *OtherInstance {
	ai, ok := v.addrInfo(n.id.PubKeyHex())
	if !ok || len(ai.Addrs) == 0 {
		n.other.Store(nil)
		return nil
	}
	in, err := p2p.ProbeInstance(ctx, n.h.ID(), ai.Addrs)
	now := time.Now().UTC()
	switch {
	case errors.Is(err, p2p.ErrNoInstance):
		n.other.Store(nil)
		return nil
	case err == nil && !in.NoProtocol && in.Nonce == n.nonce:
		n.other.Store(nil)
		return nil // itself
	case err != nil:
		// A host with this identity's key answered, then failed the
		// protocol: not this process (it answers), so treat it as another.
		n.log.Warn("a host with this node's identity answered the instance probe, then failed", "addr", in.Addr, "err", err)
	}
	o := &OtherInstance{Since: now, Checked: now}
	if in.Addr != nil {
		o.Addr = in.Addr.String()
	}
	if prev := n.other.Load(); prev != nil {
		o.Since = prev.Since
	}
	n.other.Store(o)
	return o
}

// otherInstance returns the other instance the last probe saw, or nil.
func (n *Node) otherInstance() *OtherInstance { return n.other.Load() }
