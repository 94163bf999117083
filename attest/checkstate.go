package attest

import (
	"fmt"
	"sync"

	"github.com/ksb-project/ksb/attest/attestpb"
)

// MaxPendingPerSigner bounds what one signer may have in the mempool: at most
// this many distinct transactions, and none with a sequence this far or
// further ahead of its committed one. A holder sends one transaction at a
// time per queue and a node rarely more than a few at once (the tests' Senders
// send four concurrently), so 16 never holds an honest node back, while one
// key can occupy at most 16 × MaxTxSize = 8 MiB of a validator's mempool and
// 16 × MaxBlockWrites of block writes.
const MaxPendingPerSigner = 16

// checkState is what CheckTx knows beyond the committed state: the
// transactions each signer has had admitted to the mempool since the last
// commit, by hash, so that checking the same bytes again (the /check_tx RPC,
// a client's retry) does not count twice. Commit resets it; CometBFT then
// rechecks every transaction left in the mempool, which counts them again
// against the new committed state. It holds at most MaxPendingPerSigner
// hashes for each signer that passed checkSigner, i.e. for active nodes and
// the authority only.
//
// It depends on nothing but signer addresses and transaction hashes, so a
// change of the state store leaves it as it is.
type checkState struct {
	mu      sync.Mutex
	pending map[string]map[[32]byte]struct{} // signer address → admitted tx hashes
}

func newCheckState() *checkState {
	return &checkState{pending: make(map[string]map[[32]byte]struct{})}
}

// reset forgets every admitted transaction; Commit calls it before the
// mempool's recheck.
func (c *checkState) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.pending)
}

// admit counts the transaction with hash h against signer's allowance, or
// refuses it with ErrMempoolFull.
func (c *checkState) admit(signer string, h [32]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	txs := c.pending[signer]
	if _, ok := txs[h]; ok {
		return nil
	}
	if len(txs) >= MaxPendingPerSigner {
		return fmt.Errorf("%s has %d transactions in the mempool, at most %d: %w", signer, len(txs), MaxPendingPerSigner, ErrMempoolFull)
	}
	if txs == nil {
		txs = make(map[[32]byte]struct{}, 1)
		c.pending[signer] = txs
	}
	txs[h] = struct{}{}
	return nil
}

// checkSigner checks tx's signer against committed state s: its account
// exists and may send the message (the authority's account for a Churn, an
// active node's for anything else), and the sequence is neither behind its
// committed one nor MaxPendingPerSigner or more ahead of it. It returns the
// account. FinalizeBlock runs the same account and sequence checks against
// the block's state (see deliver and apply); this one only keeps
// transactions that cannot pass them out of the mempool.
func checkSigner(s kv, p *Params, tx *Tx) (*attestpb.AccountRecord, error) {
	acct, err := getAccount(s, tx.Signer)
	if err != nil {
		return nil, err
	}
	if acct == nil {
		return nil, fmt.Errorf("signer account %d does not exist: %w", tx.Signer, ErrUnauthorized)
	}
	if _, churn := tx.Msg.(*Churn); churn {
		if tx.Signer != AuthorityAccount {
			return nil, fmt.Errorf("signer %s is not the authority %s: %w", acct.Address, p.AuthorityAddress, ErrUnauthorized)
		}
	} else {
		n, err := s.get(KeyNode(acct.Address))
		if err != nil {
			return nil, err
		}
		if n == nil {
			return nil, fmt.Errorf("signer %s is not an active node: %w", acct.Address, ErrUnauthorized)
		}
	}
	switch seq := acct.Sequence; {
	case tx.Sequence < seq:
		return nil, fmt.Errorf("sequence %d is behind %s's committed next %d: %w", tx.Sequence, acct.Address, seq, ErrBadSequence)
	case tx.Sequence-seq >= MaxPendingPerSigner:
		return nil, fmt.Errorf("sequence %d is %d or more ahead of %s's committed next %d: %w", tx.Sequence, MaxPendingPerSigner, acct.Address, seq, ErrBadSequence)
	}
	return acct, nil
}

// committedSignature verifies tx's signature if its signer's account is in
// the last committed state (an account created earlier in the same block is
// left to FinalizeBlock).
func (a *App) committedSignature(p *Params, raw []byte, tx *Tx) error {
	var acct *attestpb.AccountRecord
	err := a.view(func(s kv) error {
		var err error
		acct, err = getAccount(s, tx.Signer)
		return err
	})
	if err != nil || acct == nil {
		return err
	}
	return a.verify(p, raw, tx, acct.Pubkey)
}
