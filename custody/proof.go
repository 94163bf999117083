package custody

import "bytes"

// Proof shows possession of one segment of one copy: the segment's bytes,
// its path to the copy root and the copy root's path to the commitment
// root. For a 27 KB sealed share and r = 3 it carries 64 + 11·32 = 416
// bytes of segment and hashes.
type Proof struct {
	// CopyIndex is the index of the copy the segment is from, 0 to
	// Copies-1.
	CopyIndex int
	// Copies is r, the number of copies the commitment was made over.
	Copies int
	// Segment is the index of the segment, 0 to Leaves(size)-1.
	Segment uint64
	// Data is the segment: SegmentSize bytes, fewer for a blob's last
	// segment.
	Data []byte
	// CopyPath holds the hashes from the segment's leaf to the copy root,
	// sibling first (crypto/merkle's Proof.Aunts): ceil(log2(leaves)) or
	// one fewer, HashSize bytes each.
	CopyPath [][]byte
	// CommitPath holds the hashes from the copy root to the commitment
	// root, sibling first: ceil(log2(r)) or one fewer.
	CommitPath [][]byte
}

// Prove builds the proof of segment segment of blob, which is copy
// copyIndex of the commitment over copyRoots: the owner's form, and the one
// tests use. It refuses (ErrInvalidArgument) arguments out of range and a
// blob whose root is not copyRoots[copyIndex].
func Prove(blob []byte, copyRoots [][HashSize]byte, copyIndex int, segment uint64) (Proof, error) {
	path, err := CommitPath(copyRoots, copyIndex)
	if err != nil {
		return Proof{}, err
	}
	root, err := CopyRoot(blob)
	if err != nil {
		return Proof{}, err
	}
	if root != copyRoots[copyIndex] {
		return Proof{}, badArg("blob is not copy %d: its root differs", copyIndex)
	}
	return ProveHeld(blob, copyIndex, len(copyRoots), path, segment)
}

// ProveHeld builds the proof of segment segment of blob, which is copy
// copyIndex of a commitment over copies copies, with commitPath the path
// from its copy root to the commitment root: the holder's form, from
// exactly what it stores (blob, copy index, commit path; r is the
// commitment's). It refuses (ErrInvalidArgument) a blob of 0 or more than
// MaxSize bytes, copies or indices out of range and a commit path of the
// wrong shape. It does not know the commitment root, so a holder that
// wants to check its answer calls Verify.
func ProveHeld(blob []byte, copyIndex, copies int, commitPath [][]byte, segment uint64) (Proof, error) {
	size := uint64(len(blob))
	if err := checkSize(size); err != nil {
		return Proof{}, err
	}
	if err := checkCopies(copies, copyIndex); err != nil {
		return Proof{}, err
	}
	if n := Leaves(size); segment >= n {
		return Proof{}, badArg("segment %d of a %d-segment copy", segment, n)
	}
	if err := checkPath("commit path", commitPath, uint64(copyIndex), uint64(copies)); err != nil {
		return Proof{}, badArg("%v", err)
	}
	start := segment * SegmentSize
	return Proof{
		CopyIndex:  copyIndex,
		Copies:     copies,
		Segment:    segment,
		Data:       bytes.Clone(blob[start : start+segmentLen(size, segment)]),
		CopyPath:   copyPath(blob, segment),
		CommitPath: clonePath(commitPath),
	}, nil
}

func clonePath(path [][]byte) [][]byte {
	out := make([][]byte, len(path))
	for i, h := range path {
		out[i] = bytes.Clone(h)
	}
	return out
}

// Verify checks that p proves possession of segment segment of copy
// copyIndex of the commitment (commitRoot, size, copies). It is
// deterministic, never panics whatever p holds, allocates nothing that
// depends on p's sizes, and computes at most 23 SHA-256 of at most 65 bytes
// each (a leaf, 14 copy path nodes, the copy root as a leaf twice, 6 commit
// path nodes): about 10 µs.
//
// The arguments come from the verifier's own records: the committed root
// and size, the commitment's r, the copy index the custody holds and the
// challenged segment. Out of range, they give an error wrapping
// ErrInvalidArgument. Then, before hashing, p must name the same copy
// index and r (ErrWrongCopy) and segment (ErrWrongSegment), carry a
// segment of the right length (ErrSegmentLength) and paths of the tree's
// shape (ErrPathShape); finally the segment must hash up both paths to
// commitRoot (ErrPathMismatch). Each refusal of p is a *ProofError.
//
// Checking the copy index is what stops a holder from answering with
// another holder's copy: every copy has its own root, so another copy's
// segment only verifies under its own copy index.
func Verify(commitRoot [HashSize]byte, size uint64, copies, copyIndex int, segment uint64, p Proof) error {
	if err := checkSize(size); err != nil {
		return err
	}
	if err := checkCopies(copies, copyIndex); err != nil {
		return err
	}
	leaves := Leaves(size)
	if segment >= leaves {
		return badArg("segment %d of a %d-segment copy", segment, leaves)
	}
	if p.Copies != copies {
		return refuse(ErrWrongCopy, "proof over %d copies, the commitment has %d", p.Copies, copies)
	}
	if p.CopyIndex != copyIndex {
		return refuse(ErrWrongCopy, "proof for copy %d, the custody holds copy %d", p.CopyIndex, copyIndex)
	}
	if p.Segment != segment {
		return refuse(ErrWrongSegment, "proof for segment %d, challenged %d", p.Segment, segment)
	}
	if want := segmentLen(size, segment); uint64(len(p.Data)) != want {
		return refuse(ErrSegmentLength, "segment %d has %d bytes, want %d", segment, len(p.Data), want)
	}
	if err := checkPath("copy path", p.CopyPath, segment, leaves); err != nil {
		return err
	}
	if err := checkPath("commit path", p.CommitPath, uint64(copyIndex), uint64(copies)); err != nil {
		return err
	}
	root := rootFromPath(leafHash(p.Data), p.CopyPath, segment, leaves)
	return verifyCommitPath(commitRoot, root, copies, copyIndex, p.CommitPath)
}
