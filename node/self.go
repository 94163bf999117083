package node

import (
	"fmt"
	"sort"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
)

// notActiveLogEvery is how often a node that is not active says so again at
// error level: once at start and on every change is easy to miss in a log
// that scrolls; every 10 minutes keeps it on any screen of recent logs
// without flooding.
const notActiveLogEvery = 10 * time.Minute

// selfState is what the latest chain view says of this node: whether it is
// an active node and of which live vaults it is a member. Without being
// active it can commit nothing, push nothing (holders refuse owners that
// are not active) and hold nothing.
type selfState struct {
	Active bool
	// Vaults are the live vaults with this node as a member, sorted.
	Vaults []string
}

func selfIn(v *chainView, pub, addr string) selfState {
	_, active := v.nodes[pub]
	s := selfState{Active: active}
	for key, vt := range v.vaults {
		if !vt.Retired && v.member(key, addr) {
			s.Vaults = append(s.Vaults, key)
		}
	}
	sort.Strings(s.Vaults)
	return s
}

// noteView records what view says of this node and logs it at the first
// view, on every change, and (when not active) every notActiveLogEvery.
func (n *Node) noteView(v *chainView) {
	s := selfIn(v, n.id.PubKeyHex(), n.addr)
	prev := n.self.Swap(&s)
	changed := prev == nil || prev.Active != s.Active || len(prev.Vaults) != len(s.Vaults)
	switch {
	case !s.Active && (changed || time.Since(n.notActiveLogged) >= notActiveLogEvery):
		n.notActiveLogged = time.Now()
		n.log.Error("this node is not an active node on chain: its shares are sealed but not committed or pushed, and it holds nothing for others; register this address and peer ID on chain (or check the mnemonic and chain.rpc)",
			"address", n.addr, "pubkey", n.id.PubKeyHex(), "peer_id", n.id.PeerID().String(), "chain", n.cfg.Chain.RPC)
	case s.Active && changed:
		n.log.Info("this node is an active node on chain", "member_of_vaults", len(s.Vaults))
	}
}

// notReady says why the node is not backing up, or nil.
func (n *Node) notReady() error {
	if s := n.self.Load(); s != nil && !s.Active {
		return fmt.Errorf("not an active node: the chain's active set does not list %s; nothing is committed, pushed or held", n.addr)
	}
	if o := n.otherInstance(); o != nil {
		return fmt.Errorf("another live instance of this identity answers at %s (since %s); this one releases nothing", o.Addr, o.Since.Format(time.RFC3339))
	}
	return nil
}

// Why a share is not backed up in full: the reason label of
// ksb_owner_under_replicated_shares, and ShareStatus.Problem's first word.
const (
	// reasonNotActive: this node is not an active node on chain.
	reasonNotActive = "not_active"
	// reasonVaultUnknown: the chain does not know the share's vault (yet).
	reasonVaultUnknown = "vault_unknown"
	// reasonNotMember: the chain's vault does not list this node.
	reasonNotMember = "not_member"
	// reasonNotCommitted: sealed, not committed yet (or the chain lost the
	// commitment and it is committed again).
	reasonNotCommitted = "not_committed"
	// reasonNoHolders: committed, and the chain assigned no holder.
	reasonNoHolders = "no_holders"
	// reasonUnderAssigned: the chain assigned fewer holders than r (too
	// few candidates).
	reasonUnderAssigned = "under_assigned"
	// reasonNotCounted: r holders assigned, fewer than r attested and not
	// failed (pushes pending, copies lost, repairs under way).
	reasonNotCounted = "not_counted"
)

var underReplicatedReasons = []string{reasonNotActive, reasonVaultUnknown, reasonNotMember, reasonNotCommitted,
	reasonNoHolders, reasonUnderAssigned, reasonNotCounted}

// shareProblem says why share rec is not held by r counted holders, from
// the chain view and the share's commitment on chain (found: the chain has
// it). It returns "" and "" for a share fully backed up or one that needs
// no backup (its vault retired, the version superseded).
func shareProblem(view *chainView, self *selfState, addr string, rec shareRecord, c attest.Commitment, found bool) (reason, problem string) {
	if self != nil && !self.Active {
		return reasonNotActive, fmt.Sprintf("not backed up: this node (%s) is not an active node on chain", addr)
	}
	v := rec.Version
	if v.Commitment == 0 || !found {
		vt, known := view.vaults[rec.Vault]
		switch {
		case !known:
			return reasonVaultUnknown, "not committed: the chain does not know this vault (yet)"
		case vt.Retired:
			return "", ""
		case !view.member(rec.Vault, addr):
			return reasonNotMember, "not committed: the chain's vault does not list this node as a member"
		case v.Commitment != 0:
			return reasonNotCommitted, "not committed: the chain does not have this commitment; committing again"
		default:
			return reasonNotCommitted, "not committed yet"
		}
	}
	if !c.Live {
		return "", ""
	}
	// Failed custodies stay listed beside their repairs: count the others.
	assigned, counted := 0, 0
	for _, cu := range c.Custodies {
		if cu.Status == custody.StatusFailed.String() {
			continue
		}
		assigned++
		if cu.Attested {
			counted++
		}
	}
	switch {
	case assigned == 0:
		return reasonNoHolders, "no holders assigned: the chain found no candidate holder"
	case assigned < v.Copies:
		return reasonUnderAssigned, fmt.Sprintf("under-replicated: the chain assigned %d of %d holders (too few candidates)", assigned, v.Copies)
	case counted < v.Copies:
		return reasonNotCounted, fmt.Sprintf("under-replicated: %d of %d copies attested and not failed (pushes pending, copies lost or being repaired)", counted, v.Copies)
	}
	return "", ""
}
