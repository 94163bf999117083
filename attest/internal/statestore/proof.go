package statestore

import (
	"bytes"
	"fmt"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	ics23 "github.com/cosmos/ics23/go"
)

// ProofOpType is the type of the ProofOp that carries a Snapshot's proof in
// an ABCI query response: the Cosmos SDK's name for an ICS23 proof against
// an IAVL root (cosmos-sdk store/types/proof.go, ProofOpIAVLCommitment), so
// SDK-era tooling recognises it.
const ProofOpType = "ics23:iavl"

// ProofSpec is the ICS23 specification every proof of this store is checked
// against: IAVL's leaf and inner-node hashing (sha256, the node's height,
// size and version varint-prefixed in each operation).
var ProofSpec = ics23.IavlSpec

// NewProofOp wraps a proof of key as a ProofOp: Type ProofOpType, Key the
// store key, Data the proof's protobuf encoding (gogoproto, as ics23 defines
// it). This is the Cosmos SDK's CommitmentOp wire form.
func NewProofOp(key []byte, proof *ics23.CommitmentProof) (cmtcrypto.ProofOp, error) {
	data, err := proof.Marshal()
	if err != nil {
		return cmtcrypto.ProofOp{}, fmt.Errorf("encoding proof of %q: %w", key, err)
	}
	return cmtcrypto.ProofOp{Type: ProofOpType, Key: bytes.Clone(key), Data: data}, nil
}

// VerifyProofOp checks that op proves, against root (an app hash), that key
// has value, or with a nil value that key is absent. It fails with
// ErrBadProof when the op is not a ProofOpType op for key, cannot be
// decoded, or does not verify.
func VerifyProofOp(op cmtcrypto.ProofOp, root, key, value []byte) error {
	if op.Type != ProofOpType {
		return fmt.Errorf("proof op type %q, want %q: %w", op.Type, ProofOpType, ErrBadProof)
	}
	if !bytes.Equal(op.Key, key) {
		return fmt.Errorf("proof op for key %q, want %q: %w", op.Key, key, ErrBadProof)
	}
	var p ics23.CommitmentProof
	if err := p.Unmarshal(op.Data); err != nil {
		return fmt.Errorf("decoding proof of %q: %w: %w", key, ErrBadProof, err)
	}
	if value == nil {
		if !ics23.VerifyNonMembership(ProofSpec, root, &p, key) {
			return fmt.Errorf("proof does not show %q absent under root %X: %w", key, root, ErrBadProof)
		}
		return nil
	}
	if !ics23.VerifyMembership(ProofSpec, root, &p, key, value) {
		return fmt.Errorf("proof does not show %q = %x under root %X: %w", key, value, root, ErrBadProof)
	}
	return nil
}
