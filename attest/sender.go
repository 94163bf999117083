package attest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ksb-project/ksb/identity"
)

// Sender signs and broadcasts the transactions of one signer, keeping track
// of its sequence. It is safe for concurrent use: transactions are numbered
// and put into the mempool one at a time, in order, and committed
// concurrently (several may share a block).
type Sender struct {
	c  *Client
	id *identity.Identity

	mu      sync.Mutex
	chainID string
	hrp     string
	addr    string
	account uint64 // the signer's account number, once synced
	next    uint64 // next sequence to use
	synced  bool   // next is known
	gen     uint64 // incremented at every re-sync
}

// NewSender returns a Sender for id's transactions through c. It asks the
// chain for its ID, address prefix and id's sequence on first use.
func NewSender(c *Client, id *identity.Identity) *Sender {
	return &Sender{c: c, id: id}
}

// Send signs msg with the signer's next sequence, broadcasts it and waits
// for its commit. If the chain refuses it for a stale sequence (another
// program used the same key, or an earlier transaction was lost), in
// CheckTx or in its block, Send re-reads the sequence and tries once more.
func (s *Sender) Send(ctx context.Context, msg Msg) (*TxResult, error) {
	res, err := s.send(ctx, msg)
	if errors.Is(err, ErrBadSequence) {
		return s.send(ctx, msg)
	}
	return res, err
}

// send makes one attempt.
func (s *Sender) send(ctx context.Context, msg Msg) (*TxResult, error) {
	s.mu.Lock()
	if err := s.sync(ctx); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	gen, seq := s.gen, s.next
	tx, err := SignTx(s.id, s.chainID, s.hrp, s.account, seq, msg)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	// The height before the submission: the first block that can hold
	// it is the next (wait looks there when the sequence passes it).
	// Unknown, wait only polls for the transaction.
	var num *numbered
	if from, herr := s.c.Height(ctx); herr == nil {
		num = &numbered{addr: s.addr, seq: seq, from: from}
	}
	hash, err := s.c.submit(ctx, tx)
	if err != nil {
		// Not in the mempool: the sequence is still free. CheckTx refuses a
		// sequence behind the committed one: re-read it before the retry.
		if errors.Is(err, ErrBadSequence) {
			s.synced = false
		}
		s.mu.Unlock()
		return nil, err
	}
	s.next++
	s.mu.Unlock()

	res, err := s.c.wait(ctx, hash, num)
	if err != nil && (errors.Is(err, ErrBadSequence) || errors.Is(err, ErrNotCommitted)) {
		s.mu.Lock()
		if s.gen == gen { // nobody re-synced since this transaction was numbered
			s.synced = false
		}
		s.mu.Unlock()
	}
	return res, err
}

// sync reads the chain's parameters and the signer's account and sequence
// if not known.
// s.mu is held.
func (s *Sender) sync(ctx context.Context) error {
	if s.synced {
		return nil
	}
	if s.chainID == "" {
		p, err := s.c.Params(ctx)
		if err != nil {
			return fmt.Errorf("reading chain parameters: %w", err)
		}
		addr, err := identity.AddressFromPubKey(s.id.PubKey(), p.HRP)
		if err != nil {
			return err
		}
		s.chainID, s.hrp, s.addr = p.ChainID, p.HRP, addr
	}
	a, err := s.c.Account(ctx, s.addr)
	if err != nil {
		return fmt.Errorf("reading the account of %s: %w", s.addr, err)
	}
	s.account, s.next, s.synced = a.Account, a.Sequence, true
	s.gen++
	return nil
}

// Commit commits shares (one per vault) and returns the result, whose
// Assignments are the holders the chain drew for each new commitment, and
// Commitments their ids.
func (s *Sender) Commit(ctx context.Context, shares ...ShareCommit) (*TxResult, error) {
	return s.Send(ctx, &Commit{Shares: shares})
}

// Attest attests the signer's custodies (each must be assigned to it).
func (s *Sender) Attest(ctx context.Context, ids ...CustodyID) (*TxResult, error) {
	return s.Send(ctx, &Attest{Custodies: ids})
}

// Prove sends the signer's proofs for epoch.
func (s *Sender) Prove(ctx context.Context, epoch uint64, proofs ...SegmentProof) (*TxResult, error) {
	return s.Send(ctx, &Prove{Epoch: epoch, Proofs: proofs})
}

// Release releases the signer's custodies: each fails and is repaired.
func (s *Sender) Release(ctx context.Context, ids ...CustodyID) (*TxResult, error) {
	return s.Send(ctx, &Release{Custodies: ids})
}

// Drill reports a restore drill of one of the signer's custodies.
func (s *Sender) Drill(ctx context.Context, id CustodyID, result DrillResult, millis uint32) (*TxResult, error) {
	return s.Send(ctx, &Drill{Custody: id, Result: result, Millis: millis})
}
