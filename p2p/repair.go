package p2p

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
)

// Repair (issue 11; docs/protocol.md, "Repair"): when a custody of a live
// commitment fails or its holder leaves, the chain assigns a replacement
// holder (a new custody) and names a source, a counted holder of another
// copy of the same commitment. The source sends its own copy, copy index
// and commit path to the replacement over RepairProtocol; the frames are
// push v2's (a PushHeader, the blob, a PushResponse with a signed receipt).
// The replacement reads a blob only from the source the chain names for
// that custody; the source sends only to the replacement the chain names.
const (
	// RepairProtocol carries a holder's copy to the replacement the chain
	// assigned in a repair.
	RepairProtocol protocol.ID = "/ksb/repair/1.0.0"
	// RepairServiceName is the resource-manager service of repair streams.
	RepairServiceName = "ksb.repair"

	// RepairTimeout is the deadline of a whole repair stream, both sides:
	// the copy is one blob, as in a push (PushTimeout's reasoning).
	RepairTimeout = PushTimeout

	// MaxRepairStreamsPerPeer is how many repair streams one source may have
	// in flight on one replacement, and how many Service.Repair opens to one
	// replacement at once: a source sends one copy per repair, and the chain
	// draws sources at random among the counted holders, so one source has
	// rarely more than a couple of repairs for the same replacement.
	MaxRepairStreamsPerPeer = 2
	// activeRepairStreams is how many repair streams all active nodes
	// together may have in flight on one replacement: a churn that removes
	// a third of the active set gives each remaining node about r/2 repairs
	// per vault it backs up, received from different sources; 8 at once
	// keeps a replacement's memory for repairs at 8 MiB.
	activeRepairStreams = 8
)

var repairSpec = copySpec{name: "repair", protocol: RepairProtocol, service: RepairServiceName, timeout: RepairTimeout}

// repairIn: only the source the chain names for the replacement's custody
// sends it a copy over RepairProtocol (the owner pushes).
func (s *Service) repairIn() *copyIn {
	return &copyIn{spec: repairSpec, budget: s.repairActive, perPeer: MaxRepairStreamsPerPeer, total: activeRepairStreams,
		authorize: func(c Custody, sender string) error {
			if c.Source == "" || sender != c.Source {
				return refuse(CodeNotSource, "%s is not the repair source of custody %s (the chain names %q)", sender, idString(c.ID), c.Source)
			}
			return nil
		}}
}

// handleRepair serves one inbound repair stream: serveCopy with the repair
// allowance and the source check.
func (s *Service) handleRepair(st network.Stream) { s.handleCopy(st, s.inRepair) }

// Repair sends the copy this node holds for custody held to to, the
// replacement the chain assigned custody repair to, and returns the
// replacement's signed receipt. Before anything is read or sent it asks the
// chain (Custodies.Lookup, not the cached view: the chain redraws sources)
// about repair and refuses, with an error wrapping
//
//   - ErrNotSource when the chain does not name this node the repair's
//     source;
//   - ErrNotAssigned when to is not the peer of the replacement the chain
//     assigned (a holder never sends ciphertext to anyone else);
//   - ErrNotLive when the repair's custody has failed or its commitment no
//     longer counts;
//   - ErrWrongCopy when the copy held for held is not of the same
//     commitment, or not the copy index or size the chain names;
//   - ErrBadCopy when the held copy no longer hashes to the committed root
//     (this holder's disk corrupted it: it is not sent);
//   - store.ErrNotFound (wrapped) when nothing is held for held.
//
// The replacement's refusals come back as *RefusedError. At most
// MaxRepairStreamsPerPeer repairs to one replacement are in flight; more
// wait for a slot or for ctx.
func (s *Service) Repair(ctx context.Context, to peer.ID, repair, held custody.CustodyID) (*Receipt, error) {
	toKey, err := identity.PubKeyFromPeerID(to)
	if err != nil {
		return nil, fmt.Errorf("replacement: %w", err)
	}
	toAddr, err := identity.AddressFromPubKey(toKey, s.hrp)
	if err != nil {
		return nil, fmt.Errorf("replacement: %w", err)
	}
	c, err := s.members.Lookup(ctx, repair)
	if err != nil {
		return nil, fmt.Errorf("reading repair %s from the chain: %w", idString(repair), err)
	}
	switch {
	case c.Source != s.self:
		return nil, fmt.Errorf("%w: the chain names %q as the source of repair %s, not this node", ErrNotSource, c.Source, idString(repair))
	case c.Holder != toAddr:
		return nil, fmt.Errorf("%w: repair %s goes to %s, not to peer %s (%s)", ErrNotAssigned, idString(repair), c.Holder, to, toAddr)
	case c.Failed || !c.Live:
		return nil, fmt.Errorf("%w: repair %s", ErrNotLive, idString(repair))
	}
	e, blob, err := s.st.Get(held)
	if err != nil {
		return nil, fmt.Errorf("reading the copy held for %s: %w", idString(held), err)
	}
	if e.Custody.Commitment != repair.Commitment || e.CopyIndex != c.CopyIndex || uint64(len(blob)) != c.Size {
		return nil, fmt.Errorf("%w: held %s is copy %d of commitment %d (%d bytes); repair %s wants copy %d of commitment %d (%d bytes)",
			ErrWrongCopy, idString(held), e.CopyIndex, e.Custody.Commitment, len(blob), idString(repair), c.CopyIndex, repair.Commitment, c.Size)
	}
	root, err := custody.VerifyCopyRoot(c.Root, c.Size, c.Copies, c.CopyIndex, e.CommitPath, blob)
	if err != nil {
		return nil, fmt.Errorf("%w: the copy held for %s: %v", ErrBadCopy, idString(held), err)
	}
	release, ok := s.repairOut.acquire(ctx.Done(), to)
	if !ok {
		return nil, fmt.Errorf("waiting for a repair slot to %s: %w", to, ctx.Err())
	}
	defer release()
	r, err := sendCopy(ctx, s.h, repairSpec, to, s.id, Copy{
		Custody: repair, CopyIndex: c.CopyIndex, CommitPath: e.CommitPath, Owner: e.Owner, Blob: blob, CopyRoot: root,
	})
	s.m.observe(repairSpec.name, "out", err, "accepted", len(blob))
	return r, err
}
