package node

import (
	"encoding/hex"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/p2p"
)

// chainView is one snapshot of what the chain says about the network: the
// active nodes and the vaults. It is replaced whole on every poll, never
// modified, so readers need no lock.
type chainView struct {
	// nodes are the active nodes by pubkey hex.
	nodes map[string]attest.Node
	// byPeer maps peer IDs of active nodes to their pubkey hex.
	byPeer map[peer.ID]string
	// byAddr maps node addresses to their pubkey hex.
	byAddr map[string]string
	// vaults are all vaults the chain knows, retired ones included.
	vaults map[string]attest.Vault
}

func newChainView(nodes []attest.Node, vaults []attest.Vault) *chainView {
	v := &chainView{
		nodes:  make(map[string]attest.Node, len(nodes)),
		byPeer: make(map[peer.ID]string, len(nodes)),
		byAddr: make(map[string]string, len(nodes)),
		vaults: make(map[string]attest.Vault, len(vaults)),
	}
	for _, n := range nodes {
		v.nodes[n.PubKey] = n
		v.byAddr[n.Address] = n.PubKey
		if pid, err := peer.Decode(n.PeerID); err == nil {
			v.byPeer[pid] = n.PubKey
		}
	}
	for _, vt := range vaults {
		v.vaults[vt.PubKey] = vt
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

// attestable reports whether the chain would accept an attestation of a blob
// of owner (address) for vault: the vault is live, and the owner is an active
// node or a member of the vault.
func (v *chainView) attestable(owner, vault string) bool {
	vt, ok := v.vaults[vault]
	if !ok || vt.Retired {
		return false
	}
	if _, active := v.byAddr[owner]; active {
		return true
	}
	for _, m := range vt.Members {
		if m == owner {
			return true
		}
	}
	return false
}

var _ p2p.Membership = (*membership)(nil)

// membership implements p2p.Membership over the latest chain view.
type membership struct{ view atomic.Pointer[chainView] }

// IsActive reports whether pub is an active node in the latest view.
func (m *membership) IsActive(pub []byte) bool {
	v := m.view.Load()
	if v == nil {
		return false
	}
	_, ok := v.nodes[hex.EncodeToString(pub)]
	return ok
}

// LiveVault reports whether vault is a live vault in the latest view
// (created and not retired), and whether the node with key pub is one of its
// members. With no view yet, no vault is live.
func (m *membership) LiveVault(vault string, pub []byte) (live, member bool) {
	v := m.view.Load()
	if v == nil {
		return false, false
	}
	vt, ok := v.vaults[vault]
	if !ok || vt.Retired {
		return false, false
	}
	n, ok := v.nodes[hex.EncodeToString(pub)]
	if !ok {
		// Members are listed by address; a node that is not active has no
		// address in the view, and cannot push anyway.
		return true, false
	}
	for _, a := range vt.Members {
		if a == n.Address {
			return true, true
		}
	}
	return true, false
}

func (m *membership) current() *chainView {
	if v := m.view.Load(); v != nil {
		return v
	}
	return newChainView(nil, nil)
}
