package statestore

import (
	"bytes"
	"fmt"

	"github.com/cosmos/iavl"
	ics23 "github.com/cosmos/ics23/go"
)

// Snapshot is one committed version: immutable, safe for concurrent use,
// readable while later blocks are written and committed, until its version
// is pruned (reads then fail with ErrVersionPruned or a storage error).
type Snapshot struct {
	st      *Store
	tree    *iavl.ImmutableTree // nil for version 0
	version int64
	hash    []byte
}

// Version returns the snapshot's version (= block height); 0 before the
// first commit.
func (p *Snapshot) Version() int64 { return p.version }

// Hash returns the snapshot's root hash (32 bytes), the app hash of its
// block; nil for version 0.
func (p *Snapshot) Hash() []byte { return bytes.Clone(p.hash) }

// Get returns the value of key, or nil if it is absent.
func (p *Snapshot) Get(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	if p.tree == nil {
		return nil, nil
	}
	if err := p.st.acquire(); err != nil {
		return nil, err
	}
	defer p.st.release()
	v, err := p.tree.Get(key)
	if err != nil {
		return nil, p.readErr(err)
	}
	return bytes.Clone(v), nil
}

// Iterate calls fn for every key that starts with prefix, in byte order,
// with copies of the key and value; fn's error stops it and is returned.
func (p *Snapshot) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	if p.tree == nil {
		return nil
	}
	if err := p.st.acquire(); err != nil {
		return err
	}
	defer p.st.release()
	var start []byte
	if len(prefix) > 0 {
		start = prefix
	}
	it, err := p.tree.Iterator(start, prefixEnd(prefix), true)
	if err != nil {
		return p.readErr(err)
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if err := fn(bytes.Clone(it.Key()), bytes.Clone(it.Value())); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return p.readErr(err)
	}
	return nil
}

// Prove returns the value of key (nil if absent) and an ICS23 proof of it
// against Hash(): an existence proof (which carries the value) if key is
// present, a non-existence proof (its neighbours' existence proofs) if not.
// Check it with VerifyMembership / VerifyNonMembership and ProofSpec.
func (p *Snapshot) Prove(key []byte) (value []byte, proof *ics23.CommitmentProof, err error) {
	if len(key) == 0 {
		return nil, nil, ErrEmptyKey
	}
	if p.tree == nil {
		return nil, nil, fmt.Errorf("proving %q: nothing committed: %w", key, ErrVersionNotCommitted)
	}
	if err := p.st.acquire(); err != nil {
		return nil, nil, err
	}
	defer p.st.release()
	defer func() {
		// IAVL's proof builder dereferences a nil node when a read fails
		// (a version pruned under the snapshot); make it an error.
		if r := recover(); r != nil {
			value, proof = nil, nil
			err = p.readErr(fmt.Errorf("proving %q: %v", key, r))
		}
	}()
	v, err := p.tree.Get(key)
	if err != nil {
		return nil, nil, p.readErr(err)
	}
	if v != nil {
		proof, err = p.tree.GetMembershipProof(key)
	} else {
		proof, err = p.tree.GetNonMembershipProof(key)
	}
	if err != nil {
		return nil, nil, p.readErr(fmt.Errorf("proving %q: %w", key, err))
	}
	return bytes.Clone(v), proof, nil
}

// readErr classifies a failed read: one of a version pruned since the
// snapshot was taken is ErrVersionPruned.
func (p *Snapshot) readErr(err error) error {
	if p.version < p.st.first.Load() {
		return fmt.Errorf("version %d: %w: %w", p.version, ErrVersionPruned, err)
	}
	return fmt.Errorf("reading version %d: %w", p.version, err)
}
