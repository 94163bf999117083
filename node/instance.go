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
//     poll after a start and every heldReconcileEvery polls, when copies are
//     missing, and while another instance was last seen), the node probes
//     its own peer ID at the addresses the chain lists for it
//     (p2p.ProbeInstance, from a throwaway host). The key's holder answers
//     with the random nonce its process drew at start.
//   - An answer with another nonce (or a host holding the key that does not
//     speak the instance protocol) is another live instance: this process
//     queues no release and sends none of those queued, logs an error each
//     reconcile, and reports it in Status.OtherInstance and /healthz. It
//     keeps everything else (it accepts and attests copies pushed to it:
//     those it holds).
//   - A host with the key that connects but does not answer in time is
//     inconclusive: releases wait for the next probe (a minute), nothing is
//     reported.
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
// for it and records the answer. It returns the other instance (nil when
// there is none) and whether the probe was inconclusive: a host with this
// identity's key connected, then did not answer (a loaded machine, this very
// process too slow to answer in time). Inconclusive holds releases back for
// this round but is not reported as another instance: this process answers
// the protocol, so a definite other instance is one that answers with
// another nonce, or refuses the protocol.
func (n *Node) probeInstance(ctx context.Context, v *chainView) (other *OtherInstance, inconclusive bool) {
	ai, ok := v.addrInfo(n.id.PubKeyHex())
	if !ok || len(ai.Addrs) == 0 {
		n.other.Store(nil)
		return nil, false
	}
	in, err := p2p.ProbeInstance(ctx, n.h.ID(), ai.Addrs)
	now := time.Now().UTC()
	switch {
	case errors.Is(err, p2p.ErrNoInstance):
		n.other.Store(nil)
		return nil, false
	case err != nil:
		n.log.Warn("a host with this node's identity connected to the instance probe but did not answer; holding releases back until the next probe",
			"addr", in.Addr, "err", err)
		return n.other.Load(), true
	case !in.NoProtocol && in.Nonce == n.nonce:
		n.other.Store(nil)
		return nil, false // itself
	}
	o := &OtherInstance{Since: now, Checked: now}
	if in.Addr != nil {
		o.Addr = in.Addr.String()
	}
	if prev := n.other.Load(); prev != nil {
		o.Since = prev.Since
	}
	n.other.Store(o)
	return o, false
}

// otherInstance returns the other instance the last probe saw, or nil.
func (n *Node) otherInstance() *OtherInstance { return n.other.Load() }
