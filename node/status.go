package node

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/identity"
)

// Status is what `ksb status` and the admin endpoint's /status report: this
// node's own shares and their holders, and the blobs it holds for others.
type Status struct {
	Address string      `json:"address"`
	PeerID  string      `json:"peer_id"`
	PubKey  string      `json:"pubkey"`
	Listen  []string    `json:"listen"`
	Chain   ChainStatus `json:"chain"`
	// Clock is this node's clock offset from the chain's and its peers'.
	Clock ClockStatus `json:"clock"`
	// Keyshares is the directory watched for this node's share files.
	Keyshares KeysharesStatus `json:"keyshares"`
	// Shares are this node's own keyshares, by vault.
	Shares []ShareStatus `json:"shares"`
	// Held are the blobs this node holds for other owners.
	Held []HeldStatus `json:"held"`
	// PendingAttestations and PendingReleases are waiting for the chain.
	PendingAttestations int `json:"pending_attestations"`
	PendingReleases     int `json:"pending_releases"`
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

// ShareStatus is one of this node's shares.
type ShareStatus struct {
	Vault       string         `json:"vault"`
	File        string         `json:"file"`
	Kind        string         `json:"kind"`
	Algorithm   string         `json:"algorithm"`
	Digest      string         `json:"digest"`
	Size        int64          `json:"size"`
	SealedAt    time.Time      `json:"sealed_at"`
	Replication int            `json:"replication"`
	Holders     []HolderStatus `json:"holders"`
	// Attested counts holders whose attestation of this digest is committed.
	Attested int `json:"attested"`
}

// HolderStatus is one holder of one of this node's shares.
type HolderStatus struct {
	Address     string    `json:"address"`
	PeerID      string    `json:"peer_id"`
	ReceiptTime time.Time `json:"receipt_time"`
	Attested    bool      `json:"attested"`
}

// HeldStatus is a blob this node holds for another owner.
type HeldStatus struct {
	Owner    string    `json:"owner"`
	Vault    string    `json:"vault"`
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	Received time.Time `json:"received"`
	Attested bool      `json:"attested"`
}

// Status reports this node's shares and the blobs it holds, with what the
// chain says of their attestations. The chain part is best effort: when the
// chain is unreachable the report says so and still lists local state.
func (n *Node) Status(ctx context.Context) (*Status, error) {
	st := &Status{
		Address:   n.addr,
		PeerID:    n.id.PeerID().String(),
		PubKey:    n.id.PubKeyHex(),
		Listen:    n.Addrs(),
		Chain:     ChainStatus{RPC: n.cfg.Chain.RPC, ChainID: n.cfg.Chain.ChainID},
		Clock:     n.clockStatus(),
		Keyshares: n.keysharesStatus(),
		Shares:    []ShareStatus{},
		Held:      []HeldStatus{},
	}
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	// attested[owner/vault/digest] = holders whose attestation is committed.
	attested := map[string]map[string]bool{}
	addAtt := func(as []attest.Attestation) {
		for _, a := range as {
			k := a.Owner + "/" + a.Vault + "/" + a.Digest
			if attested[k] == nil {
				attested[k] = map[string]bool{}
			}
			attested[k][a.Holder] = true
		}
	}
	mine, err1 := n.chain.AttestationsByOwner(cctx, n.addr)
	held, err2 := n.chain.AttestationsByHolder(cctx, n.addr)
	if err := errors.Join(err1, err2); err != nil {
		st.Chain.Error = err.Error()
	} else {
		st.Chain.Reachable = true
		addAtt(mine)
		addAtt(held)
	}

	recs, keys, err := scanJSON[shareRecord](n.st, ownPrefix)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		r := recs[k]
		ss := ShareStatus{
			Vault: r.Vault, File: r.File, Kind: r.Kind, Algorithm: r.Algorithm,
			Digest: r.Digest, Size: r.Size, SealedAt: r.SealedAt,
			Replication: n.cfg.Backup.Replication, Holders: []HolderStatus{},
		}
		for pub, rc := range r.Holders {
			addr := ""
			if b, err := hex.DecodeString(pub); err == nil {
				addr, _ = identity.AddressFromPubKey(b, n.cfg.HRP)
			}
			hs := HolderStatus{Address: addr, PeerID: rc.PeerID, ReceiptTime: rc.Time}
			hs.Attested = attested[n.addr+"/"+r.Vault+"/"+r.Digest][addr]
			if hs.Attested {
				ss.Attested++
			}
			ss.Holders = append(ss.Holders, hs)
		}
		sort.Slice(ss.Holders, func(i, j int) bool { return ss.Holders[i].Address < ss.Holders[j].Address })
		st.Shares = append(st.Shares, ss)
	}

	entries, err := n.st.Entries(nil)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		owner, _ := identity.AddressFromPubKey(e.Owner, n.cfg.HRP)
		d := hex.EncodeToString(e.Digest[:])
		st.Held = append(st.Held, HeldStatus{
			Owner: owner, Vault: e.Vault, Digest: d, Size: e.Size, Received: e.Received,
			Attested: attested[owner+"/"+e.Vault+"/"+d][n.addr],
		})
	}
	n.pendingMu.Lock()
	n.st.ScanMeta(attestPrefix, func(string, []byte) error { st.PendingAttestations++; return nil })
	n.st.ScanMeta(releasePrefix, func(string, []byte) error { st.PendingReleases++; return nil })
	n.pendingMu.Unlock()
	return st, nil
}
