package custody

import (
	"crypto/sha256"
	"math/bits"

	"github.com/cometbft/cometbft/crypto/merkle"
)

// Limits of the commitment trees. Verify, VerifyCopy and the provers refuse
// anything beyond them before hashing or allocating.
const (
	// SegmentSize is the leaf size of a copy's Merkle tree, in bytes: each
	// copy is cut into 64-byte segments (the last one shorter), the choice
	// Sia made for its storage proofs. A proof carries one segment and
	// about log2(leaves) hashes of 32 bytes, so its size is about
	// s + 32·log2(size/s), smallest near s = 32/ln 2 ≈ 46 bytes: 32 and 64
	// tie on real copies, and 64 has half the leaves to hash when a tree is
	// built (by the owner, by a holder checking a copy or proving). Measured
	// by BenchmarkSegmentSize (go test -run '^$' -bench SegmentSize
	// ./custody/): leaves, and proof payload in bytes (segment, copy path and
	// the 2-hash commit path of r = 3, averaged over every segment; indices
	// and framing add about 30 bytes):
	//
	//	segment | sealed EdDSA 20-party | sealed ECDSA 20-party | sealed ECDSA 40-party
	//	        | 2,162 B               | 27,142 B              | 52,630 B
	//	--------+-----------------------+-----------------------+----------------------
	//	   32   |  68 leaves, 312 B     | 849 leaves, 412 B     | 1,645 leaves, 444 B
	//	   64   |  34 leaves, 312 B     | 425 leaves, 412 B     |   823 leaves, 443 B
	//	  128   |  17 leaves, 344 B     | 213 leaves, 443 B     |   412 leaves, 475 B
	//	  256   |   9 leaves, 422 B     | 107 leaves, 537 B     |   206 leaves, 571 B
	//
	// A 60 KB blob has 946 segments: a proof is one segment, 10 hashes of
	// copy path and 2 of commit path (452 bytes of payload, 481 as protobuf;
	// BenchmarkProve).
	SegmentSize = 64

	// MaxSize is the largest copy, in bytes, the package commits to or
	// verifies: 1 MiB, at least the largest blob a ksb node stores
	// (store.MaxBlobSize, just under 1 MiB, which a test checks). It bounds
	// a copy path to 14 hashes and VerifyCopy's hashing to 1 MiB.
	MaxSize = 1 << 20

	// MaxCopies is the largest number of copies r of one commitment:
	// the chain's own cap on r (attest.MaxReplication, 64; more holders
	// per share is a broadcast, not a backup policy). It bounds a commit
	// path to 6 hashes.
	MaxCopies = 64

	// HashSize is the size of every root and path hash: SHA-256.
	HashSize = sha256.Size
)

// Leaves returns how many segments a copy of size bytes has:
// ceil(size / SegmentSize), 0 for 0.
func Leaves(size uint64) uint64 {
	n := size / SegmentSize
	if size%SegmentSize != 0 {
		n++
	}
	return n
}

// segmentLen is the length of segment i of a copy of size bytes (i must be
// below Leaves(size)).
func segmentLen(size, i uint64) uint64 {
	if i+1 < Leaves(size) || size%SegmentSize == 0 {
		return SegmentSize
	}
	return size % SegmentSize
}

// segments cuts blob into its segments, without copying.
func segments(blob []byte) [][]byte {
	segs := make([][]byte, 0, Leaves(uint64(len(blob))))
	for len(blob) > SegmentSize {
		segs = append(segs, blob[:SegmentSize:SegmentSize])
		blob = blob[SegmentSize:]
	}
	return append(segs, blob)
}

// checkSize checks a copy size against 1..MaxSize.
func checkSize(size uint64) error {
	if size == 0 || size > MaxSize {
		return badArg("copy size %d, want 1 to %d", size, MaxSize)
	}
	return nil
}

// checkCopies checks r against 1..MaxCopies and a copy index against 0..r-1.
func checkCopies(copies, copyIndex int) error {
	if copies < 1 || copies > MaxCopies {
		return badArg("%d copies, want 1 to %d", copies, MaxCopies)
	}
	if copyIndex < 0 || copyIndex >= copies {
		return badArg("copy index %d, want 0 to %d", copyIndex, copies-1)
	}
	return nil
}

// leafHash is RFC 6962's leaf hash, sha256(0x00 ‖ leaf), as crypto/merkle
// computes it (tests check they agree). Leaves here are segments or copy
// roots, at most SegmentSize bytes, so the input fits on the stack.
func leafHash(leaf []byte) [HashSize]byte {
	if len(leaf) > SegmentSize {
		h := sha256.New() // not reached: callers check lengths first
		h.Write([]byte{0x00})
		h.Write(leaf)
		return [HashSize]byte(h.Sum(nil))
	}
	var buf [1 + SegmentSize]byte
	n := copy(buf[1:], leaf)
	return sha256.Sum256(buf[:1+n])
}

// innerHash is RFC 6962's node hash, sha256(0x01 ‖ left ‖ right), of two
// HashSize-byte children.
func innerHash(left, right []byte) [HashSize]byte {
	var buf [1 + 2*HashSize]byte
	buf[0] = 0x01
	copy(buf[1:], left)
	copy(buf[1+HashSize:], right)
	return sha256.Sum256(buf[:])
}

// split is where crypto/merkle (and RFC 6962) splits a tree of n ≥ 2
// leaves: the largest power of two below n.
func split(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// maxDepth bounds the depth of any tree here: a tree of at most 2^64 leaves.
const maxDepth = 64

// pathShape returns, for leaf index of a tree of total leaves (index <
// total), the number of hashes in its path and, per level from the root
// down, whether the path goes right.
func pathShape(index, total uint64) (depth int, right [maxDepth]bool) {
	for total > 1 {
		k := split(total)
		if index < k {
			total = k
		} else {
			right[depth] = true
			index, total = index-k, total-k
		}
		depth++
	}
	return depth, right
}

// pathLen is the number of hashes in the path of leaf index of a tree of
// total leaves.
func pathLen(index, total uint64) int {
	d, _ := pathShape(index, total)
	return d
}

// checkPath checks a path's hash count against the tree shape and every
// hash's length, before anything is hashed.
func checkPath(name string, path [][]byte, index, total uint64) error {
	if want := pathLen(index, total); len(path) != want {
		return refuse(ErrPathShape, "%s has %d hashes, want %d (leaf %d of %d)", name, len(path), want, index, total)
	}
	for i, h := range path {
		if len(h) != HashSize {
			return refuse(ErrPathShape, "%s hash %d is %d bytes, want %d", name, i, len(h), HashSize)
		}
	}
	return nil
}

// rootFromPath hashes leaf index's hash up its path (aunts ordered from the
// leaf's sibling to the root's child, as crypto/merkle's Proof.Aunts) to the
// root. The path must have passed checkPath. It computes what
// crypto/merkle's unexported computeHashFromAunts does, without recursion;
// tests check the two agree on every leaf of trees of 1 to 300 leaves.
func rootFromPath(leaf [HashSize]byte, path [][]byte, index, total uint64) [HashSize]byte {
	depth, right := pathShape(index, total)
	h := leaf
	for i := 0; i < depth; i++ {
		aunt := path[i]
		if right[depth-1-i] {
			h = innerHash(aunt, h[:])
		} else {
			h = innerHash(h[:], aunt)
		}
	}
	return h
}

// copyRoot is the root of the segments' tree: crypto/merkle's RFC 6962
// HashFromByteSlices.
//
// It is crypto/merkle.HashFromByteSlices over segments(blob) (a test checks
// they agree), computed without allocating: a holder hashes every pushed
// copy, and crypto/merkle's two slices per node made that hashing cost about
// twice its SHA-256 work.
func copyRoot(blob []byte) [HashSize]byte {
	return subtreeRoot(blob)
}

// subtreeRoot is the RFC 6962 root of the segments of blob, which starts
// at a segment boundary: split as crypto/merkle splits, recursing at most
// 14 levels for MaxSize.
func subtreeRoot(blob []byte) [HashSize]byte {
	n := Leaves(uint64(len(blob)))
	if n <= 1 {
		return leafHash(blob)
	}
	k := split(n) * SegmentSize
	l, r := subtreeRoot(blob[:k]), subtreeRoot(blob[k:])
	return innerHash(l[:], r[:])
}

// copyPath returns the path of segment i of blob (i < Leaves): the roots
// of the sibling subtrees from the leaf up, each computed with
// crypto/merkle.HashFromByteSlices. Every segment is hashed once, as for
// the root, instead of building every leaf's proof as
// merkle.ProofsFromByteSlices does (for a 27 KB copy: 0.65 ms instead of
// 1.1 ms, 854 allocations instead of 4,637; a test checks the paths are
// the same).
func copyPath(blob []byte, i uint64) [][]byte {
	segs := segments(blob)
	depth, right := pathShape(i, uint64(len(segs)))
	path := make([][]byte, depth)
	for level := 0; level < depth; level++ {
		k := split(uint64(len(segs)))
		if right[level] {
			path[depth-1-level] = merkle.HashFromByteSlices(segs[:k])
			segs = segs[k:]
		} else {
			path[depth-1-level] = merkle.HashFromByteSlices(segs[k:])
			segs = segs[:k]
		}
	}
	return path
}

// hashes returns the roots as byte slices, the form crypto/merkle takes.
func hashes(roots [][HashSize]byte) [][]byte {
	out := make([][]byte, len(roots))
	for i := range roots {
		out[i] = roots[i][:]
	}
	return out
}
