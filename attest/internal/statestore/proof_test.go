package statestore_test

import (
	"bytes"
	"errors"
	"testing"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

// TestProofs: present keys get membership proofs and absent ones
// non-membership proofs (before the first key, between two, deleted, after
// the last), all verifying against the snapshot's hash with ProofSpec, and
// through a ProofOp; a tampered value, proof, key or root fails.
func TestProofs(t *testing.T) {
	s := open(t, statestore.DefaultOptions(t.TempDir()))
	for _, k := range []string{"s/b", "s/d", "s/f", "s/gone"} {
		mustSet(t, s, k, "value of "+k)
	}
	mustCommit(t, s)
	if err := s.Delete([]byte("s/gone")); err != nil {
		t.Fatal(err)
	}
	snap := mustCommit(t, s)
	root := snap.Hash()

	for _, k := range []string{"s/b", "s/d", "s/f"} {
		v, proof, err := snap.Prove([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != "value of "+k || !ics23.VerifyMembership(statestore.ProofSpec, root, proof, []byte(k), v) {
			t.Fatalf("%s: value %q, membership does not verify", k, v)
		}
		op, err := statestore.NewProofOp([]byte(k), proof)
		if err != nil {
			t.Fatal(err)
		}
		if op.Type != "ics23:iavl" || string(op.Key) != k {
			t.Fatalf("op %s %q", op.Type, op.Key)
		}
		if err := statestore.VerifyProofOp(op, root, []byte(k), v); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		// Each tampering fails.
		for name, err := range map[string]error{
			"value":         statestore.VerifyProofOp(op, root, []byte(k), append(bytes.Clone(v), 'x')),
			"absent":        statestore.VerifyProofOp(op, root, []byte(k), nil),
			"root":          statestore.VerifyProofOp(op, flip(root, 0), []byte(k), v),
			"other key":     statestore.VerifyProofOp(op, root, []byte("s/c"), v),
			"proof bytes":   statestore.VerifyProofOp(withData(op, flip(op.Data, len(op.Data)-3)), root, []byte(k), v),
			"truncated":     statestore.VerifyProofOp(withData(op, op.Data[:len(op.Data)/2]), root, []byte(k), v),
			"op type":       statestore.VerifyProofOp(withType(op, "ics23:simple"), root, []byte(k), v),
			"op key":        statestore.VerifyProofOp(withKey(op, []byte("s/d2")), root, []byte("s/d2"), v),
			"earlier value": statestore.VerifyProofOp(op, root, []byte(k), []byte("value of s/x")),
		} {
			if !errors.Is(err, statestore.ErrBadProof) {
				t.Errorf("%s: tampered %s: %v, want ErrBadProof", k, name, err)
			}
		}
	}
	for _, k := range []string{"s/a", "s/c", "s/gone", "s/z", "t"} {
		v, proof, err := snap.Prove([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if v != nil || !ics23.VerifyNonMembership(statestore.ProofSpec, root, proof, []byte(k)) {
			t.Fatalf("%s: value %q, non-membership does not verify", k, v)
		}
		op, _ := statestore.NewProofOp([]byte(k), proof)
		if err := statestore.VerifyProofOp(op, root, []byte(k), nil); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		// An absence proof is no proof of any value, nor of another key's absence.
		if err := statestore.VerifyProofOp(op, root, []byte(k), []byte("x")); !errors.Is(err, statestore.ErrBadProof) {
			t.Errorf("%s: absence proof accepted as a value: %v", k, err)
		}
		if err := statestore.VerifyProofOp(op, flip(root, 31), []byte(k), nil); !errors.Is(err, statestore.ErrBadProof) {
			t.Errorf("%s: absence proof accepted under another root: %v", k, err)
		}
	}
	// A present key cannot be shown absent with a neighbour's proof.
	_, absent, _ := snap.Prove([]byte("s/c"))
	op, _ := statestore.NewProofOp([]byte("s/d"), absent)
	if err := statestore.VerifyProofOp(op, root, []byte("s/d"), nil); !errors.Is(err, statestore.ErrBadProof) {
		t.Errorf("s/d shown absent with s/c's proof: %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func withData(op cmtProofOp, d []byte) cmtProofOp { op.Data = d; return op }
func withType(op cmtProofOp, t string) cmtProofOp { op.Type = t; return op }
func withKey(op cmtProofOp, k []byte) cmtProofOp  { op.Key = k; return op }

type cmtProofOp = cmtcrypto.ProofOp
