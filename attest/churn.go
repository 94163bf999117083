package attest

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/ksb-project/ksb/attest/attestpb"
)

// applyChurn applies c in field order: add nodes (each gets an account, or
// its old one back), remove nodes, create vaults (members must be active
// after that; each gets the next vault index), retire vaults. A removed
// node's custodies fail, and each live commitment that loses one gets a
// replacement holder in this same block; a retired vault's commitments stop
// counting and are deleted after RetentionBlocks.
func (bc *blockCtx) applyChurn(s kv, c *Churn) error {
	cnt, err := getCounters(s)
	if err != nil {
		return err
	}
	h := bc.height
	for i, n := range c.AddNodes {
		addr, err := n.validate(bc.p.HRP)
		if err != nil {
			return err
		}
		old, err := s.get(KeyNode(addr))
		if err != nil {
			return err
		}
		if old != nil {
			return fmt.Errorf("add_nodes[%d]: node %s is already active: %w", i, addr, ErrExists)
		}
		pub, _ := hex.DecodeString(n.PubKey) // validated
		acct, ok, err := accountOf(s, addr)
		if err != nil {
			return err
		}
		switch {
		case ok && acct == AuthorityAccount:
			return fmt.Errorf("add_nodes[%d]: %s is the authority's key: %w", i, addr, ErrInvalid)
		case !ok:
			acct = cnt.NextAccount
			cnt.NextAccount++
			if err := putRec(s, KeyAccount(acct), &attestpb.AccountRecord{Pubkey: pub, Address: addr}); err != nil {
				return err
			}
			if err := setUint(s, keyAccountOf(addr), acct); err != nil {
				return err
			}
		}
		if err := putRec(s, KeyNode(addr), &attestpb.NodeRecord{Pubkey: pub, Account: acct, Multiaddrs: n.Multiaddrs, Height: h}); err != nil {
			return err
		}
	}
	bc.invalidate()
	for i, addr := range c.RemoveNodes {
		old, err := s.get(KeyNode(addr))
		if err != nil {
			return err
		}
		if old == nil {
			return fmt.Errorf("remove_nodes[%d]: node %s is not active: %w", i, addr, ErrNotFound)
		}
		if err := s.del(KeyNode(addr)); err != nil {
			return err
		}
	}
	bc.invalidate()
	// Every removed node is out before any replacement is drawn, so none is
	// drawn among them.
	for _, addr := range c.RemoveNodes {
		if err := bc.nodeLeft(s, addr); err != nil {
			return err
		}
	}
	for i, v := range c.CreateVaults {
		old, err := s.get(KeyVault(v.PubKey))
		if err != nil {
			return err
		}
		if old != nil {
			return fmt.Errorf("create_vaults[%d]: vault %s: %w", i, v.PubKey, ErrExists)
		}
		for _, m := range v.Members {
			n, err := s.get(KeyNode(m))
			if err != nil {
				return err
			}
			if n == nil {
				return fmt.Errorf("create_vaults[%d]: member %s is not an active node: %w", i, m, ErrInvalid)
			}
		}
		idx := cnt.NextVault
		cnt.NextVault++
		rec := &attestpb.VaultRecord{Index: idx, Members: v.Members, Threshold: v.Threshold, Height: h}
		if err := putRec(s, KeyVault(v.PubKey), rec); err != nil {
			return err
		}
		if err := s.set(KeyVaultIndex(idx), []byte(v.PubKey)); err != nil {
			return err
		}
	}
	for i, k := range c.RetireVaults {
		v, err := getVault(s, k)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("retire_vaults[%d]: vault %s: %w", i, k, ErrNotFound)
		}
		if v.RetiredHeight != 0 {
			return fmt.Errorf("retire_vaults[%d]: vault %s is already retired: %w", i, k, ErrInvalid)
		}
		if err := bc.retireVault(s, v); err != nil {
			return err
		}
		if err := putRec(s, KeyVault(k), v); err != nil {
			return err
		}
	}
	return putRec(s, keyCounters, cnt)
}

// nodeLeft fails the custodies of addr, which has just left the active
// set, and draws new sources for the repairs it was to send.
func (bc *blockCtx) nodeLeft(s kv, addr string) error {
	ids, err := scanIDs(s, prefHeld+addr+"/")
	if err != nil {
		return err
	}
	for _, id := range ids {
		rec, err := getCustody(s, id)
		if err != nil {
			return err
		}
		if rec != nil && rec.Status != attestpb.CustodyStatus_CUSTODY_STATUS_FAILED {
			if err := bc.failCustody(s, id, rec, attestpb.FailReason_FAIL_REASON_LEFT); err != nil {
				return err
			}
		}
	}
	srcs, err := scanIDs(s, prefSource+addr+"/")
	if err != nil {
		return err
	}
	for _, id := range srcs {
		if err := bc.redrawSource(s, id, false); err != nil {
			return err
		}
	}
	return nil
}

// retireVault marks v retired at this height, and with it each member's
// newest commitment for it (older ones are superseded already); all are
// deleted RetentionBlocks later.
func (bc *blockCtx) retireVault(s kv, v *attestpb.VaultRecord) error {
	v.RetiredHeight = bc.height
	due := bc.height + bc.p.RetentionBlocks
	for _, m := range v.Members {
		id, ok, err := getUint(s, KeyLatest(m, v.Index))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		c, err := getCommitment(s, id)
		if err != nil {
			return err
		}
		if c == nil || !live(c) {
			continue
		}
		c.RetiredHeight = bc.height
		if err := putRec(s, KeyCommitment(id), c); err != nil {
			return err
		}
		if err := s.set(keyTimerID(due, timerPrune, id), nil); err != nil {
			return err
		}
	}
	return s.set(keyTimerID(due, timerVault, v.Index), nil)
}

// scanIDs returns the custody ids of the keys under prefix, which end in
// "<commitment>/<slot>".
func scanIDs(s kv, prefix string) ([]CustodyID, error) {
	var ids []CustodyID
	err := s.scan(prefix, func(key string, _ []byte) error {
		id, ok := custodyFromSuffix(strings.TrimPrefix(key, prefix))
		if !ok {
			return fmt.Errorf("state key %q: %w", key, ErrInternal)
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// memberOf reports whether addr is a member of v.
func memberOf(v *attestpb.VaultRecord, addr string) bool { return slices.Contains(v.Members, addr) }
