package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/p2p"
)

// chainView is one snapshot of what the chain says about the network: the
// active nodes, the vaults, and the custodies assigned to this node. It is
// replaced whole on every poll, never modified, so readers need no lock.
type chainView struct {
	// nodes are the active nodes by pubkey hex.
	nodes map[string]attest.Node
	// byAddr maps node addresses to their pubkey hex.
	byAddr map[string]string
	// vaults are all vaults the chain knows, retired ones included, by key;
	// byIndex the same by chain index.
	vaults  map[string]attest.Vault
	byIndex map[uint64]attest.Vault
	// held are the custodies the chain assigned to this node (failed and
	// superseded ones included until the chain deletes them), with their
	// commitments.
	held map[custody.CustodyID]attest.HeldCustody
}

func newChainView(nodes []attest.Node, vaults []attest.Vault, held []attest.HeldCustody) *chainView {
	v := &chainView{
		nodes:   make(map[string]attest.Node, len(nodes)),
		byAddr:  make(map[string]string, len(nodes)),
		vaults:  make(map[string]attest.Vault, len(vaults)),
		byIndex: make(map[uint64]attest.Vault, len(vaults)),
		held:    make(map[custody.CustodyID]attest.HeldCustody, len(held)),
	}
	for _, n := range nodes {
		v.nodes[n.PubKey] = n
		v.byAddr[n.Address] = n.PubKey
	}
	for _, vt := range vaults {
		v.vaults[vt.PubKey] = vt
		v.byIndex[vt.Index] = vt
	}
	for _, hc := range held {
		v.held[custody.CustodyID{Commitment: hc.Commitment, Slot: hc.Slot}] = hc
	}
	return v
}

// addrInfo returns where to reach the active node with this pubkey.
func (v *chainView) addrInfo(pub string) (peer.AddrInfo, bool) {
	n, ok := v.nodes[pub]
	if !ok {
		return peer.AddrInfo{}, false
	}
	pid, err := peer.Decode(n.PeerID)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	ai := peer.AddrInfo{ID: pid}
	for _, s := range n.Multiaddrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai, true
}

// addrInfoOf returns where to reach the active node with this address.
func (v *chainView) addrInfoOf(addr string) (peer.AddrInfo, bool) {
	pub, ok := v.byAddr[addr]
	if !ok {
		return peer.AddrInfo{}, false
	}
	return v.addrInfo(pub)
}

// member reports whether addr is a member of vault.
func (v *chainView) member(vault, addr string) bool {
	vt, ok := v.vaults[vault]
	if !ok {
		return false
	}
	for _, m := range vt.Members {
		if m == addr {
			return true
		}
	}
	return false
}

// parseHash decodes a 32-byte hash written as hex.
func parseHash(s string) ([custody.HashSize]byte, error) {
	var h [custody.HashSize]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != custody.HashSize {
		return h, fmt.Errorf("%q is not a %d-byte hex hash", s, custody.HashSize)
	}
	copy(h[:], b)
	return h, nil
}

// toP2P is what the push handler checks a copy against, from the chain's
// answer. A root that does not decode makes the custody unusable (Live
// false): the chain never writes one.
func toP2P(hc attest.HeldCustody) p2p.Custody {
	c := p2p.Custody{
		ID:     custody.CustodyID{Commitment: hc.Commitment, Slot: hc.Slot},
		Holder: hc.Holder, Owner: hc.Owner, Source: hc.Source, Vault: hc.Vault,
		Size: hc.Size, Copies: int(hc.Copies), CopyIndex: int(hc.CopyIndex),
		Failed: hc.Status == custody.StatusFailed.String(), Live: hc.Live,
	}
	root, err := parseHash(hc.Root)
	if err != nil {
		c.Live = false
	}
	c.Root = root
	return c
}

var _ p2p.Membership = (*membership)(nil)

// membership implements p2p.Membership over the latest chain view: the
// active set, this node's custodies from the last poll, and those a push
// made it look up since (a push can arrive right after the Commit's block,
// before the next poll).
type membership struct {
	view  atomic.Pointer[chainView]
	chain *attest.Client

	mu     sync.Mutex
	looked map[custody.CustodyID]p2p.Custody // looked up since the last poll
}

// setView installs a new view; custodies looked up before it are dropped
// (the view has them now, or the chain no longer does).
func (m *membership) setView(v *chainView) {
	m.mu.Lock()
	m.looked = nil
	m.view.Store(v)
	m.mu.Unlock()
}

// IsActive reports whether pub is an active node in the latest view.
func (m *membership) IsActive(pub []byte) bool {
	v := m.view.Load()
	if v == nil {
		return false
	}
	_, ok := v.nodes[hex.EncodeToString(pub)]
	return ok
}

// Cached returns custody id from the latest view or a lookup since.
func (m *membership) Cached(id custody.CustodyID) (p2p.Custody, bool) {
	m.mu.Lock()
	c, ok := m.looked[id]
	m.mu.Unlock()
	if ok {
		return c, true
	}
	v := m.view.Load()
	if v == nil {
		return p2p.Custody{}, false
	}
	hc, ok := v.held[id]
	if !ok {
		return p2p.Custody{}, false
	}
	return toP2P(hc), true
}

// Lookup asks the chain for custody id and keeps the answer until the next
// poll. (The p2p service rate-limits lookups per peer.)
func (m *membership) Lookup(ctx context.Context, id custody.CustodyID) (p2p.Custody, error) {
	if m.chain == nil {
		return p2p.Custody{}, errors.New("no chain client")
	}
	hc, err := m.chain.Custody(ctx, id)
	if errors.Is(err, attest.ErrNotFound) {
		return p2p.Custody{}, fmt.Errorf("custody %s: %w", idString(id), p2p.ErrUnknownCustody)
	}
	if err != nil {
		return p2p.Custody{}, err
	}
	c := toP2P(*hc)
	m.mu.Lock()
	if m.looked == nil {
		m.looked = map[custody.CustodyID]p2p.Custody{}
	}
	m.looked[id] = c
	m.mu.Unlock()
	return c, nil
}

func (m *membership) current() *chainView {
	if v := m.view.Load(); v != nil {
		return v
	}
	return newChainView(nil, nil, nil)
}
