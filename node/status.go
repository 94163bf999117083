package node

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
)

// Status is what `ksb status` and the admin endpoint's /status report: this
// node's own shares with their commitments and custodies, and the copies it
// holds for others with their custodies' state.
type Status struct {
	Address string      `json:"address"`
	PeerID  string      `json:"peer_id"`
	PubKey  string      `json:"pubkey"`
	Listen  []string    `json:"listen"`
	Chain   ChainStatus `json:"chain"`
	// Clock is this node's clock offset from the chain's and its peers'.
	Clock ClockStatus `json:"clock"`
	// OtherInstance is set while another live process of this node's
	// identity answers at the chain's address for it: this one releases
	// nothing meanwhile (instance.go).
	OtherInstance *OtherInstance `json:"other_instance,omitempty"`
	// Active is whether the chain's active set lists this node (from the
	// last chain view), and MemberOf the live vaults that list it as a
	// member. NotReady is why /healthz answers 503, if it does.
	Active   bool     `json:"active"`
	MemberOf []string `json:"member_of"`
	NotReady string   `json:"not_ready,omitempty"`
	// Keyshares is the directory watched for this node's share files.
	Keyshares KeysharesStatus `json:"keyshares"`
	// Shares are this node's own keyshares, by vault.
	Shares []ShareStatus `json:"shares"`
	// Held are the copies this node holds for other owners.
	Held []HeldStatus `json:"held"`
	// PendingAttestations and PendingReleases are waiting for the chain.
	PendingAttestations int `json:"pending_attestations"`
	PendingReleases     int `json:"pending_releases"`
	// Epoch is the chain's current custody epoch and OpenChallenges this
	// holder's challenges in it not answered yet (when the chain answers).
	Epoch          uint64 `json:"epoch"`
	ProofDeadline  int64  `json:"proof_deadline,omitempty"`
	OpenChallenges int    `json:"open_challenges"`
}

// ChainStatus says whether the chain could be read for this report.
type ChainStatus struct {
	RPC       string `json:"rpc"`
	ChainID   string `json:"chain_id"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// KeysharesStatus is the keyshare directory (backup.keyshares_dir): where
// keygen must write the files this node backs up.
type KeysharesStatus struct {
	// Dir is the absolute path watched.
	Dir string `json:"dir"`
	// Files counts the *.json files in it now (what the node looks at).
	Files int `json:"files"`
	// Error is why the directory could not be listed, if it could not.
	Error string `json:"error,omitempty"`
}

// keysharesStatus lists the keyshare directory.
func (n *Node) keysharesStatus() KeysharesStatus {
	dir := config.Path(n.home, n.cfg.Backup.KeysharesDir)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	ks := KeysharesStatus{Dir: dir}
	entries, err := os.ReadDir(dir)
	if err != nil {
		ks.Error = err.Error()
		return ks
	}
	for _, e := range entries {
		if e.Type().IsRegular() && isCandidateName(e.Name()) {
			ks.Files++
		}
	}
	return ks
}

// ShareStatus is one of this node's shares: its current version's
// commitment and, from the chain, the custodies of its copies.
type ShareStatus struct {
	Vault     string    `json:"vault"`
	File      string    `json:"file"`
	Kind      string    `json:"kind"`
	Algorithm string    `json:"algorithm"`
	SealedAt  time.Time `json:"sealed_at"`
	// Root is the commitment root (hex), Size every copy's size and
	// Copies r.
	Root   string `json:"root"`
	Size   uint64 `json:"size"`
	Copies int    `json:"copies"`
	// Commitment is the chain's id (0: not committed yet), CommitHeight
	// its block, Live whether it counts (not superseded, vault not
	// retired).
	Commitment   uint64 `json:"commitment"`
	CommitHeight int64  `json:"commit_height,omitempty"`
	Live         bool   `json:"live"`
	// Custodies are the commitment's custodies, by slot.
	Custodies []CustodyStatus `json:"custodies"`
	// Counted is how many holders coverage counts for this share: attested,
	// not failed.
	Counted int `json:"counted"`
	// Problem says why the share is not held by Copies counted holders
	// ("" when it is, or needs no backup any more), and Reason is the same
	// as the label of ksb_owner_under_replicated_shares. Empty when the
	// chain could not be read.
	Problem string `json:"problem,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// LastDrillHeight and LastDrillOK are the block and outcome of this
	// node's last restore drill of the commitment (0: none yet).
	LastDrillHeight int64 `json:"last_drill_height,omitempty"`
	LastDrillOK     bool  `json:"last_drill_ok,omitempty"`
}

// CustodyStatus is one custody of one of this node's shares.
type CustodyStatus struct {
	Slot      uint64 `json:"slot"`
	CopyIndex uint32 `json:"copy"`
	Holder    string `json:"holder"`
	// Status is "pending", "fresh", "stale" or "failed"; FailReason why it
	// failed.
	Status          string `json:"status"`
	FailReason      string `json:"fail_reason,omitempty"`
	Attested        bool   `json:"attested"`
	LastProofHeight int64  `json:"last_proof_height"`
	// ReceiptTime is when the holder stored the copy, by its receipt (zero:
	// no receipt); PushedAt when this node last pushed it.
	ReceiptTime time.Time `json:"receipt_time,omitempty"`
	PushedAt    time.Time `json:"pushed_at,omitempty"`
	// LastDrillHeight is the block of this node's last restore drill of
	// this custody's copy (0: never drilled), LastDrillOK its outcome.
	LastDrillHeight int64 `json:"last_drill_height,omitempty"`
	LastDrillOK     bool  `json:"last_drill_ok,omitempty"`
}

// HeldStatus is a copy this node holds for another owner.
type HeldStatus struct {
	// Custody is "commitment/slot".
	Custody    string    `json:"custody"`
	Owner      string    `json:"owner"`
	Vault      string    `json:"vault"`
	CopyIndex  int       `json:"copy"`
	Size       int64     `json:"size"`
	Received   time.Time `json:"received"`
	Digest     string    `json:"digest"`
	Status     string    `json:"status,omitempty"`
	Attested   bool      `json:"attested"`
	Live       bool      `json:"live"`
	LastProof  int64     `json:"last_proof_height"`
	FailReason string    `json:"fail_reason,omitempty"`
}

// Status reports this node's shares and the copies it holds, with what the
// chain says of their custodies. The chain part is best effort: when the
// chain is unreachable the report says so and still lists local state.
func (n *Node) Status(ctx context.Context) (*Status, error) {
	st := &Status{
		Address:       n.addr,
		PeerID:        n.id.PeerID().String(),
		PubKey:        n.id.PubKeyHex(),
		Listen:        n.Addrs(),
		Chain:         ChainStatus{RPC: n.cfg.Chain.RPC, ChainID: n.cfg.Chain.ChainID},
		Clock:         n.clockStatus(),
		Keyshares:     n.keysharesStatus(),
		OtherInstance: n.otherInstance(),
		Shares:        []ShareStatus{},
		Held:          []HeldStatus{},
		MemberOf:      []string{},
	}
	self := n.self.Load()
	if self != nil {
		st.Active = self.Active
		st.MemberOf = append(st.MemberOf, self.Vaults...)
	}
	if err := n.healthy(); err != nil {
		st.NotReady = err.Error()
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	mine, err1 := n.chain.CommitmentsByOwner(cctx, n.addr)
	held, err2 := n.chain.CustodiesByHolder(cctx, n.addr)
	if err := errors.Join(err1, err2); err != nil {
		st.Chain.Error = err.Error()
	} else {
		st.Chain.Reachable = true
		if ep, err := n.chain.Epoch(cctx); err == nil {
			st.Epoch, st.ProofDeadline = ep.Epoch, ep.ProofDeadline
			if chs, err := n.chain.Challenges(cctx, n.addr); err == nil {
				st.OpenChallenges = len(chs)
			}
		}
	}
	commitments := make(map[uint64]attest.Commitment, len(mine))
	for _, c := range mine {
		commitments[c.ID] = c
	}
	heldByID := make(map[custody.CustodyID]attest.HeldCustody, len(held))
	for _, hc := range held {
		heldByID[custody.CustodyID{Commitment: hc.Commitment, Slot: hc.Slot}] = hc
	}

	recs, keys, err := scanJSON[shareRecord](n.st, ownPrefix)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		r := recs[k]
		v := r.Version
		ss := ShareStatus{
			Vault: r.Vault, File: r.File, Kind: r.Kind, Algorithm: r.Algorithm, SealedAt: r.SealedAt,
			Root: v.Root, Size: v.Size, Copies: v.Copies,
			Commitment: v.Commitment, CommitHeight: v.CommitHeight, Custodies: []CustodyStatus{},
		}
		if c, ok := commitments[v.Commitment]; ok {
			ss.Live, ss.LastDrillHeight, ss.LastDrillOK = c.Live, c.LastDrillHeight, c.LastDrillOK
			for _, cu := range c.Custodies {
				cs := CustodyStatus{
					Slot: cu.Slot, CopyIndex: cu.CopyIndex, Holder: cu.Holder, Status: cu.Status,
					FailReason: cu.FailReason, Attested: cu.Attested, LastProofHeight: cu.LastProofHeight,
					LastDrillHeight: cu.LastDrillHeight, LastDrillOK: cu.LastDrillOK,
				}
				if p, ok := v.Pushes[cu.Slot]; ok {
					cs.ReceiptTime, cs.PushedAt = p.ReceiptTime, p.PushedAt
				}
				if cu.Attested && cu.Status != custody.StatusFailed.String() && c.Live {
					ss.Counted++
				}
				ss.Custodies = append(ss.Custodies, cs)
			}
		}
		if st.Chain.Reachable {
			c, found := commitments[v.Commitment]
			ss.Reason, ss.Problem = shareProblem(n.member.current(), self, n.addr, r, c, found)
		}
		st.Shares = append(st.Shares, ss)
	}

	entries, err := n.st.Entries(nil)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		owner, _ := identity.AddressFromPubKey(e.Owner, n.cfg.HRP)
		hs := HeldStatus{
			Custody: idString(e.Custody), Owner: owner, Vault: e.Vault, CopyIndex: e.CopyIndex,
			Size: e.Size, Received: e.Received, Digest: hex.EncodeToString(e.Digest[:]),
		}
		if hc, ok := heldByID[e.Custody]; ok {
			hs.Status, hs.Attested, hs.Live, hs.LastProof, hs.FailReason = hc.Status, hc.Attested, hc.Live, hc.LastProofHeight, hc.FailReason
		}
		st.Held = append(st.Held, hs)
	}
	n.pendingMu.Lock()
	n.st.ScanMeta(attestPrefix, func(string, []byte) error { st.PendingAttestations++; return nil })
	n.st.ScanMeta(releasePrefix, func(string, []byte) error { st.PendingReleases++; return nil })
	n.pendingMu.Unlock()
	return st, nil
}
