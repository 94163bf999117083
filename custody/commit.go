package custody

import (
	"github.com/cometbft/cometbft/crypto/merkle"
)

// CopyRoot returns the Merkle root of one copy: the RFC 6962 root
// (crypto/merkle.HashFromByteSlices) over the copy's SegmentSize-byte
// segments, the last one shorter. The copy must be 1 to MaxSize bytes, else
// the error wraps ErrInvalidArgument.
func CopyRoot(blob []byte) ([HashSize]byte, error) {
	if err := checkSize(uint64(len(blob))); err != nil {
		return [HashSize]byte{}, err
	}
	return copyRoot(blob), nil
}

// CommitRoot returns the commitment root over the r copy roots, in copy
// index order: the RFC 6962 root over the 32-byte copy roots
// (crypto/merkle.HashFromByteSlices). It is what an owner posts, so a
// commitment is 32 bytes of hash however large r is. r must be 1 to
// MaxCopies, else the error wraps ErrInvalidArgument.
func CommitRoot(copyRoots [][HashSize]byte) ([HashSize]byte, error) {
	if err := checkCopies(len(copyRoots), 0); err != nil {
		return [HashSize]byte{}, err
	}
	return [HashSize]byte(merkle.HashFromByteSlices(hashes(copyRoots))), nil
}

// Commitment is what an owner computes for one share version sealed into r
// copies.
type Commitment struct {
	// Root is the commitment root (CommitRoot of CopyRoots): what the owner
	// posts on chain with Size.
	Root [HashSize]byte
	// Size is the size of every copy, in bytes.
	Size uint64
	// CopyRoots are the copies' roots, in copy index order.
	CopyRoots [][HashSize]byte
}

// NewCommitment commits to the copies of one share version (as
// envelope.SealCopies makes them): 1 to MaxCopies copies, all of one size
// of 1 to MaxSize bytes, else the error wraps ErrInvalidArgument.
func NewCommitment(copies [][]byte) (Commitment, error) {
	if err := checkCopies(len(copies), 0); err != nil {
		return Commitment{}, err
	}
	size := uint64(len(copies[0]))
	if err := checkSize(size); err != nil {
		return Commitment{}, err
	}
	c := Commitment{Size: size, CopyRoots: make([][HashSize]byte, len(copies))}
	for i, b := range copies {
		if uint64(len(b)) != size {
			return Commitment{}, badArg("copy %d is %d bytes, copy 0 is %d", i, len(b), size)
		}
		c.CopyRoots[i] = copyRoot(b)
	}
	c.Root = [HashSize]byte(merkle.HashFromByteSlices(hashes(c.CopyRoots)))
	return c, nil
}

// CommitPath returns the commit path of copy i: the hashes from copy root i
// to the commitment root, sibling first (crypto/merkle's Proof.Aunts). The
// owner sends it with the copy; the holder keeps it with the blob and the
// copy index, and needs nothing else to prove possession (ProveHeld).
// The arguments must be in range, else the error wraps ErrInvalidArgument.
func CommitPath(copyRoots [][HashSize]byte, i int) ([][]byte, error) {
	if err := checkCopies(len(copyRoots), i); err != nil {
		return nil, err
	}
	_, proofs := merkle.ProofsFromByteSlices(hashes(copyRoots))
	return proofs[i].Aunts, nil
}

// VerifyCopy checks that blob is copy copyIndex of the commitment
// (commitRoot, size, copies), with commitPath the path from its copy root
// to commitRoot: what a holder checks when a copy is pushed to it, a
// replacement when it receives a repaired copy, and recovery before it
// trusts a fetched blob. It refuses, before hashing, a blob that is not
// size bytes (ErrWrongSize) and a malformed path (ErrPathShape); then a
// copy or path that does not hash to commitRoot (ErrPathMismatch). Each
// refusal is a *ProofError. Arguments out of range (size, copies,
// copyIndex) wrap ErrInvalidArgument.
func VerifyCopy(commitRoot [HashSize]byte, size uint64, copies, copyIndex int, commitPath [][]byte, blob []byte) error {
	_, err := VerifyCopyRoot(commitRoot, size, copies, copyIndex, commitPath, blob)
	return err
}

// VerifyCopyRoot is VerifyCopy that also returns the copy's root
// (CopyRoot of blob) once blob is verified, so that a caller that needs it
// — a holder's receipt names it — hashes the copy once.
func VerifyCopyRoot(commitRoot [HashSize]byte, size uint64, copies, copyIndex int, commitPath [][]byte, blob []byte) ([HashSize]byte, error) {
	if err := checkSize(size); err != nil {
		return [HashSize]byte{}, err
	}
	if err := checkCopies(copies, copyIndex); err != nil {
		return [HashSize]byte{}, err
	}
	if uint64(len(blob)) != size {
		return [HashSize]byte{}, refuse(ErrWrongSize, "%d bytes, committed %d", len(blob), size)
	}
	if err := checkPath("commit path", commitPath, uint64(copyIndex), uint64(copies)); err != nil {
		return [HashSize]byte{}, err
	}
	root := copyRoot(blob)
	if err := verifyCommitPath(commitRoot, root, copies, copyIndex, commitPath); err != nil {
		return [HashSize]byte{}, err
	}
	return root, nil
}

// verifyCommitPath checks, with crypto/merkle's Proof.Verify, that copy
// root root is leaf copyIndex of the tree of copies leaves whose root is
// commitRoot, along path (already checked by checkPath).
func verifyCommitPath(commitRoot, root [HashSize]byte, copies, copyIndex int, path [][]byte) error {
	leaf := leafHash(root[:])
	p := merkle.Proof{Total: int64(copies), Index: int64(copyIndex), LeafHash: leaf[:], Aunts: path}
	if err := p.Verify(commitRoot[:], root[:]); err != nil {
		return refuse(ErrPathMismatch, "copy %d of %d", copyIndex, copies)
	}
	return nil
}
