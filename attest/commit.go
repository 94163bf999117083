package attest

import (
	"fmt"
	"strings"

	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/custody"
)

// applyCommit records owner's share versions. For each: the vault must be
// live and owner one of its members; the version gets the next commitment
// id, supersedes owner's previous one for the vault (deleted
// RetentionBlocks later), and gets its r holders, drawn by custody.Assign
// from custody.AssignSeed(chain ID, this block's hash, id) among the
// eligible candidates of the strategy (never the owner). Holder i holds copy
// i. With fewer candidates than r the commitment has fewer slots, and
// coverage says so.
func (bc *blockCtx) applyCommit(s kv, owner string, m *Commit) error {
	cnt, err := getCounters(s)
	if err != nil {
		return err
	}
	h := bc.height
	for i, sh := range m.Shares {
		vkey, v, err := vaultByIndex(s, sh.Vault)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("share %d: vault index %d: %w", i, sh.Vault, ErrNotFound)
		}
		if v.RetiredHeight != 0 {
			return fmt.Errorf("share %d: vault %s is retired: %w", i, vkey, ErrInvalid)
		}
		if !memberOf(v, owner) {
			return fmt.Errorf("share %d: %s is not a member of vault %s: %w", i, owner, vkey, ErrInvalid)
		}
		id := cnt.NextCommitment
		if id > MaxCommitmentID {
			return fmt.Errorf("commitment ids exhausted: %w", ErrInternal)
		}
		cnt.NextCommitment++

		prev, ok, err := getUint(s, KeyLatest(owner, sh.Vault))
		if err != nil {
			return err
		}
		if ok {
			if err := bc.supersede(s, prev); err != nil {
				return err
			}
			if err := bc.trimVersions(s, owner, sh.Vault); err != nil {
				return err
			}
		}
		rec := &attestpb.CommitmentRecord{
			Owner: owner, Vault: sh.Vault, Size: sh.Size, Root: sh.Root[:],
			Copies: bc.p.Replication, Height: h,
		}
		cands, err := bc.candidates(s, v)
		if err != nil {
			return err
		}
		holders := custody.Assign(custody.AssignSeed(bc.p.ChainID, bc.hash, id), cands,
			func(a string) bool { return a == owner }, int(bc.p.Replication))
		for slot, holder := range holders {
			if err := bc.newCustody(s, CustodyID{Commitment: id, Slot: uint64(slot)}, holder, uint32(slot), ""); err != nil {
				return err
			}
		}
		rec.Slots = uint32(len(holders))
		if err := putRec(s, KeyCommitment(id), rec); err != nil {
			return err
		}
		if err := setUint(s, KeyLatest(owner, sh.Vault), id); err != nil {
			return err
		}
		if err := s.set(keyOwned(owner, id), nil); err != nil {
			return err
		}
		bc.emit("ksb.commit", "commitment", itoa(id), "vault", itoa(sh.Vault), "owner", owner,
			"holders", strings.Join(holders, ","))
	}
	return putRec(s, keyCounters, cnt)
}

// supersede marks commitment id superseded at this height, to be deleted
// RetentionBlocks later. Its custodies stop counting, are no longer
// challenged and are not repaired.
func (bc *blockCtx) supersede(s kv, id uint64) error {
	c, err := getCommitment(s, id)
	if err != nil || c == nil || c.SupersededHeight != 0 {
		return err
	}
	c.SupersededHeight = bc.height
	if err := putRec(s, KeyCommitment(id), c); err != nil {
		return err
	}
	if c.RetiredHeight != 0 {
		return nil // its prune timer is set already
	}
	return s.set(keyTimerID(bc.height+bc.p.RetentionBlocks, timerPrune, id), nil)
}

// MaxSupersededVersions bounds the superseded commitments one owner keeps in
// state for one vault during their retention: an owner that commits again
// and again (a keygen re-run, fresh copies after failed pushes, or malice)
// holds at most this many plus its live one; committing beyond deletes the
// oldest superseded version at once. Two cover a churn's keygen and one
// re-commit; the state an owner can make the chain keep is bounded however
// fast it commits.
const MaxSupersededVersions = 2

// trimVersions deletes owner's oldest superseded commitments for vault
// beyond MaxSupersededVersions.
func (bc *blockCtx) trimVersions(s kv, owner string, vault uint64) error {
	prefix := prefOwned + owner + "/"
	var ids []uint64
	err := s.scan(prefix, func(key string, _ []byte) error {
		id, ok := parseHex(strings.TrimPrefix(key, prefix), 16)
		if !ok {
			return fmt.Errorf("state key %q: %w", key, ErrInternal)
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return err
	}
	var old []uint64 // in id order: oldest first
	for _, id := range ids {
		c, err := getCommitment(s, id)
		if err != nil {
			return err
		}
		if c != nil && c.Vault == vault && c.SupersededHeight != 0 {
			old = append(old, id)
		}
	}
	for len(old) > MaxSupersededVersions {
		if err := bc.pruneCommitment(s, old[0]); err != nil {
			return err
		}
		old = old[1:]
	}
	return nil
}

// candidates returns who may be assigned a custody of a commitment for
// vault v, sorted: the eligible active nodes (StrategyRandom), or the
// eligible active members of v (StrategyVault). The caller excludes the
// owner and current holders.
func (bc *blockCtx) candidates(s kv, v *attestpb.VaultRecord) ([]string, error) {
	act, err := bc.active(s)
	if err != nil {
		return nil, err
	}
	var out []string
	if bc.p.Strategy == StrategyVault {
		for _, m := range v.Members {
			if act.eligible[m] {
				out = append(out, m)
			}
		}
		return out, nil
	}
	for _, a := range act.sorted {
		if act.eligible[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

// newCustody writes the custody id, assigned to holder for copy copyIndex:
// pending, not attested, failing at the end of block height+AttestWindow
// unless attested. A repair's custody names its source, who is to send the
// copy by height+RepairWindow.
func (bc *blockCtx) newCustody(s kv, id CustodyID, holder string, copyIndex uint32, source string) error {
	h := bc.height
	rec := &attestpb.CustodyRecord{
		Holder: holder, Copy: copyIndex, Status: attestpb.CustodyStatus_CUSTODY_STATUS_PENDING,
		AssignedHeight: h, AttestDeadline: h + bc.p.AttestWindow,
	}
	if source != "" {
		rec.Source, rec.SourceDeadline = source, h+bc.p.RepairWindow
		if err := s.set(keySource(source, id), nil); err != nil {
			return err
		}
		if err := s.set(keyTimerCustody(rec.SourceDeadline, timerSource, id), nil); err != nil {
			return err
		}
	}
	if err := putRec(s, KeyCustody(id), rec); err != nil {
		return err
	}
	if err := s.set(keyHeld(holder, id), nil); err != nil {
		return err
	}
	if err := s.set(keyTimerCustody(rec.AttestDeadline, timerAttest, id), nil); err != nil {
		return err
	}
	bc.emit("ksb.assign", "commitment", itoa(id.Commitment), "slot", itoa(id.Slot), "custody", itoa(PackCustody(id)),
		"holder", holder, "copy", itoa(uint64(copyIndex)), "source", source)
	return nil
}
