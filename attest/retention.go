package attest

import (
	"fmt"
	"strings"

	"github.com/ksb-project/ksb/attest/attestpb"
)

// runTimers does the work due at the end of this block, in key order:
// attestation deadlines ("a": an unattested custody of a live commitment
// fails and is repaired), repair sources ("s": a replacement that has not
// attested gets a new source), and retention ("p": a superseded or retired
// commitment is deleted with its custodies and indices; "v": a retired
// vault is deleted). A timer whose work was done already (attested in
// time, a source that delivered) does nothing. Timers are keys of the block
// they are due in, so a block reads only its own.
func (bc *blockCtx) runTimers(s kv) error {
	prefix := timerPrefix(bc.height)
	var keys []string
	if err := s.scan(prefix, func(key string, _ []byte) error { keys = append(keys, key); return nil }); err != nil {
		return err
	}
	for _, key := range keys {
		if err := s.del(key); err != nil {
			return err
		}
		kind, rest, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
		var err error
		switch kind {
		case timerAttest, timerSource:
			id, ok := custodyFromSuffix(rest)
			if !ok {
				return fmt.Errorf("timer %q: %w", key, ErrInternal)
			}
			if kind == timerAttest {
				err = bc.attestDeadline(s, id)
			} else {
				err = bc.redrawSource(s, id, true)
			}
		case timerPrune, timerVault:
			x, ok := parseHex(rest, 16)
			if !ok {
				return fmt.Errorf("timer %q: %w", key, ErrInternal)
			}
			if kind == timerPrune {
				err = bc.pruneCommitment(s, x)
			} else {
				err = bc.pruneVault(s, x)
			}
		default:
			return fmt.Errorf("timer %q: %w", key, ErrInternal)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// attestDeadline fails custody id if it is still unattested at its
// deadline and its commitment counts; the failure repairs it.
func (bc *blockCtx) attestDeadline(s kv, id CustodyID) error {
	rec, err := getCustody(s, id)
	if err != nil || rec == nil || rec.AttestHeight != 0 || rec.Status == statusFailed || rec.AttestDeadline != bc.height {
		return err
	}
	c, err := getCommitment(s, id.Commitment)
	if err != nil || c == nil || !live(c) {
		return err
	}
	return bc.failCustody(s, id, rec, attestpb.FailReason_FAIL_REASON_ATTEST_TIMEOUT)
}

// pruneCommitment deletes commitment id, superseded or retired
// RetentionBlocks ago, with its custodies and every index naming them:
// holders drop a copy once its custody is gone from state. Open challenges
// of its custodies are deleted when their window closes.
func (bc *blockCtx) pruneCommitment(s kv, id uint64) error {
	c, err := getCommitment(s, id)
	if err != nil || c == nil {
		return err
	}
	if live(c) {
		return nil // never scheduled for a live one; keep it rather than halt
	}
	for slot := uint64(0); slot < uint64(c.Slots); slot++ {
		cid := CustodyID{Commitment: id, Slot: slot}
		rec, err := getCustody(s, cid)
		if err != nil {
			return err
		}
		if rec == nil {
			continue
		}
		if err := s.del(keyHeld(rec.Holder, cid)); err != nil {
			return err
		}
		if rec.Source != "" {
			if err := s.del(keySource(rec.Source, cid)); err != nil {
				return err
			}
		}
		if err := s.del(KeyCustody(cid)); err != nil {
			return err
		}
	}
	if err := s.del(keyOwned(c.Owner, id)); err != nil {
		return err
	}
	latest, ok, err := getUint(s, KeyLatest(c.Owner, c.Vault))
	if err != nil {
		return err
	}
	if ok && latest == id {
		if err := s.del(KeyLatest(c.Owner, c.Vault)); err != nil {
			return err
		}
	}
	bc.emit("ksb.prune", "commitment", itoa(id))
	return s.del(KeyCommitment(id))
}

// pruneVault deletes the vault with index idx, retired RetentionBlocks ago,
// and its members' latest-commitment pointers.
func (bc *blockCtx) pruneVault(s kv, idx uint64) error {
	key, v, err := vaultByIndex(s, idx)
	if err != nil || v == nil {
		return err
	}
	for _, m := range v.Members {
		if err := s.del(KeyLatest(m, idx)); err != nil {
			return err
		}
	}
	if err := s.del(KeyVaultIndex(idx)); err != nil {
		return err
	}
	return s.del(KeyVault(key))
}
