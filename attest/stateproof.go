package attest

import (
	"errors"
	"fmt"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

// Proven queries. Every ABCI query with prove=true returns, in ProofOps, ICS23
// proofs against the app hash of the queried height, which is in the header
// of the next height (CometBFT puts block h's resulting app hash in header
// h+1). See docs/attestation.md, "Proven queries".
const (
	// StateQueryPath is the raw state path: "/state" with the state key in
	// the query's data, or "/state/" followed by the key itself (every byte
	// after the second slash, verbatim, slashes included), for keys that
	// are printable text — all of today's are.
	StateQueryPath = "/state"

	// StateProofOpType is the type of every ProofOp the application returns:
	// an ICS23 proof against the IAVL root (the Cosmos SDK's name for it).
	StateProofOpType = statestore.ProofOpType

	// MaxStateKeyLen caps the key of a /state query. The longest state key,
	// an attestation's, is about 250 bytes.
	MaxStateKeyLen = 1024

	// MaxProvenKeys caps the state keys one proven JSON answer may read: at
	// about a kilobyte per proof (10^5 entries) that is a response of a few
	// megabytes and a fraction of a second of proving. A client that needs
	// more asks /state for the keys it needs.
	MaxProvenKeys = 4096
)

// StateProofSpec is the ICS23 proof specification of the state tree (IAVL's):
// the one to verify every StateProofOpType proof against.
var StateProofSpec *ics23.ProofSpec = statestore.ProofSpec

// VerifyStateProof checks that op proves, against appHash (the AppHash of
// the header after the queried height), that the state key has value — the
// bytes the state tree holds, as /state returns them — or, with a nil value,
// that the key is absent. Any mismatch is an error wrapping ErrStateProof.
func VerifyStateProof(op cmtcrypto.ProofOp, appHash []byte, key string, value []byte) error {
	return statestore.VerifyProofOp(op, appHash, []byte(key), value)
}

// queryVersion returns the committed state at height h (0: the latest).
func (a *App) queryVersion(h int64) (*statestore.Snapshot, error) {
	switch {
	case h < 0:
		return nil, fmt.Errorf("height %d: %w", h, ErrInvalid)
	case h == 0:
		return a.st.Latest(), nil
	}
	snap, err := a.st.At(h)
	if errors.Is(err, statestore.ErrVersionNotCommitted) || errors.Is(err, statestore.ErrVersionPruned) {
		return nil, fmt.Errorf("state at height %d: %w: %w", h, ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("state at height %d: %w: %w", h, ErrInternal, err)
	}
	return snap, nil
}

func isStatePath(path string) bool {
	return path == StateQueryPath || strings.HasPrefix(path, StateQueryPath+"/")
}

// queryState answers /state: the value the state tree holds for a key at
// the snapshot's height (no value: the key is absent; a present key's value
// is never empty), and with prove one StateProofOpType op, of membership or
// non-membership.
func queryState(snap *statestore.Snapshot, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	key := req.Data
	if req.Path != StateQueryPath {
		if len(req.Data) > 0 {
			return nil, fmt.Errorf("%s: a key both in the path and in the data: %w", StateQueryPath, ErrInvalid)
		}
		key = []byte(strings.TrimPrefix(req.Path, StateQueryPath+"/"))
	}
	if len(key) == 0 || len(key) > MaxStateKeyLen {
		return nil, fmt.Errorf("%s: key of %d bytes, want 1..%d: %w", StateQueryPath, len(key), MaxStateKeyLen, ErrInvalid)
	}
	res := &abci.QueryResponse{Code: CodeOK, Key: key, Height: snap.Version()}
	if !req.Prove {
		v, err := snap.Get(key)
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w: %w", key, ErrInternal, err)
		}
		res.Value = v
		return res, nil
	}
	op, v, err := proveKey(snap, key)
	if err != nil {
		return nil, err
	}
	res.Value, res.ProofOps = v, &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{op}}
	return res, nil
}

// proveKey returns the proof op of key at snap and the tree's value (nil if
// absent).
func proveKey(snap *statestore.Snapshot, key []byte) (cmtcrypto.ProofOp, []byte, error) {
	v, proof, err := snap.Prove(key)
	if errors.Is(err, statestore.ErrVersionNotCommitted) {
		return cmtcrypto.ProofOp{}, nil, fmt.Errorf("nothing committed yet: %w", ErrNotFound)
	}
	if err != nil {
		return cmtcrypto.ProofOp{}, nil, fmt.Errorf("proving %q: %w: %w", key, ErrInternal, err)
	}
	op, err := statestore.NewProofOp(key, proof)
	if err != nil {
		return cmtcrypto.ProofOp{}, nil, fmt.Errorf("%w: %w", ErrInternal, err)
	}
	return op, v, nil
}

// readSet is a kv that records the keys a query reads (a get, present or
// not; every key a scan yields), in first-read order, to prove them.
type readSet struct {
	kv
	keys []string
	seen map[string]struct{}
}

func newReadSet(s kv) *readSet { return &readSet{kv: s, seen: make(map[string]struct{})} }

func (r *readSet) add(k string) error {
	if _, ok := r.seen[k]; ok {
		return nil
	}
	if len(r.keys) >= MaxProvenKeys {
		return fmt.Errorf("the answer reads more than %d state keys to prove; query %s for the keys needed: %w", MaxProvenKeys, StateQueryPath, ErrTooLarge)
	}
	r.seen[k] = struct{}{}
	r.keys = append(r.keys, k)
	return nil
}

func (r *readSet) get(k string) ([]byte, error) {
	if err := r.add(k); err != nil {
		return nil, err
	}
	return r.kv.get(k)
}

func (r *readSet) scan(prefix string, fn func(key string, val []byte) error) error {
	return r.kv.scan(prefix, func(k string, v []byte) error {
		if err := r.add(k); err != nil {
			return err
		}
		return fn(k, v)
	})
}

// proofOps proves every key read, at snap.
func (r *readSet) proofOps(snap *statestore.Snapshot) (*cmtcrypto.ProofOps, error) {
	ops := make([]cmtcrypto.ProofOp, len(r.keys))
	for i, k := range r.keys {
		op, _, err := proveKey(snap, []byte(k))
		if err != nil {
			return nil, err
		}
		ops[i] = op
	}
	return &cmtcrypto.ProofOps{Ops: ops}, nil
}
