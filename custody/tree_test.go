package custody_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/store"
)

func TestLimitsCoverWhatNodesStore(t *testing.T) {
	if custody.MaxSize < store.MaxBlobSize {
		t.Fatalf("MaxSize %d is below the store's blob cap %d", custody.MaxSize, store.MaxBlobSize)
	}
	if custody.MaxCopies < attest.MaxReplication || envelope.MaxCopies < attest.MaxReplication {
		t.Fatalf("MaxCopies %d (envelope %d) is below the chain's cap on r %d", custody.MaxCopies, envelope.MaxCopies, attest.MaxReplication)
	}
	// The proof bounds Verify's doc states.
	if n := custody.Leaves(custody.MaxSize); n != 1<<14 {
		t.Fatalf("a MaxSize copy has %d segments, want 2^14", n)
	}
}

func TestLeaves(t *testing.T) {
	for size, want := range map[uint64]uint64{0: 0, 1: 1, 63: 1, 64: 1, 65: 2, 128: 2, 129: 3, 27142: 425, 1 << 20: 1 << 14, ^uint64(0): 1 << 58} {
		if got := custody.Leaves(size); got != want {
			t.Errorf("Leaves(%d) = %d, want %d", size, got, want)
		}
	}
}

func sha(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// The copy root is RFC 6962 over 64-byte segments, with the 0x00 leaf and
// 0x01 node prefixes, as crypto/merkle computes it.
func TestCopyRootIsRFC6962OverSegments(t *testing.T) {
	one := randomBlob(64, 1)
	if r, err := custody.CopyRoot(one); err != nil || !bytes.Equal(r[:], sha([]byte{0}, one)) {
		t.Fatalf("one segment: %x, %v; want sha256(0x00 ‖ segment)", r, err)
	}
	two := randomBlob(100, 2)
	want := sha([]byte{1}, sha([]byte{0}, two[:64]), sha([]byte{0}, two[64:]))
	if r, err := custody.CopyRoot(two); err != nil || !bytes.Equal(r[:], want) {
		t.Fatalf("two segments (64 + 36): %x, %v; want sha256(0x01 ‖ leaf0 ‖ leaf1)", r, err)
	}
	three := randomBlob(129, 3) // RFC 6962 splits 3 leaves as 2 + 1
	l := func(b []byte) []byte { return sha([]byte{0}, b) }
	want = sha([]byte{1}, sha([]byte{1}, l(three[:64]), l(three[64:128])), l(three[128:]))
	if r, err := custody.CopyRoot(three); err != nil || !bytes.Equal(r[:], want) {
		t.Fatalf("three segments: %x, %v", r, err)
	}
	for _, n := range []int{1, 63, 64, 65, 127, 128, 1000, 27142, 60 << 10, 65537, custody.MaxSize} {
		b := randomBlob(n, uint64(n))
		var segs [][]byte
		for i := 0; i < n; i += custody.SegmentSize {
			segs = append(segs, b[i:min(i+custody.SegmentSize, n)])
		}
		r, err := custody.CopyRoot(b)
		if err != nil || !bytes.Equal(r[:], merkle.HashFromByteSlices(segs)) {
			t.Errorf("%d bytes: %x, %v; differs from crypto/merkle", n, r, err)
		}
	}
	for _, n := range []int{0, custody.MaxSize + 1} {
		if _, err := custody.CopyRoot(make([]byte, n)); !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("%d bytes: %v, want ErrInvalidArgument", n, err)
		}
	}
}

func TestCommitRoot(t *testing.T) {
	copies := [][]byte{randomBlob(300, 1), randomBlob(300, 2), randomBlob(300, 3)}
	o := newOwner(t, copies)
	roots := make([][]byte, 3)
	for i, c := range copies {
		r, err := custody.CopyRoot(c)
		if err != nil {
			t.Fatal(err)
		}
		if r != o.c.CopyRoots[i] {
			t.Fatalf("copy root %d differs", i)
		}
		roots[i] = r[:]
	}
	if !bytes.Equal(o.c.Root[:], merkle.HashFromByteSlices(roots)) || o.c.Size != 300 {
		t.Fatalf("commitment %x size %d", o.c.Root, o.c.Size)
	}
	if r, err := custody.CommitRoot(o.c.CopyRoots); err != nil || r != o.c.Root {
		t.Fatalf("CommitRoot: %x, %v", r, err)
	}
	for name, bad := range map[string][][]byte{
		"none":            nil,
		"different sizes": {randomBlob(300, 1), randomBlob(301, 2)},
		"empty copies":    {{}, {}},
		"too many":        make([][]byte, custody.MaxCopies+1),
	} {
		if _, err := custody.NewCommitment(bad); !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := custody.CommitRoot(nil); !errors.Is(err, custody.ErrInvalidArgument) {
		t.Errorf("CommitRoot(nil): %v", err)
	}
	for _, i := range []int{-1, 3} {
		if _, err := custody.CommitPath(o.c.CopyRoots, i); !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("CommitPath(%d): %v", i, err)
		}
	}
}

// Verify's path arithmetic agrees with crypto/merkle on every leaf of every
// tree of 1 to 300 segments: proofs made by crypto/merkle verify, with the
// commit path of a single copy (empty).
func TestVerifyAgreesWithCometBFTOnEveryLeaf(t *testing.T) {
	for leaves := 1; leaves <= 300; leaves++ {
		size := leaves*custody.SegmentSize - leaves%7 // a short last segment sometimes
		blob := randomBlob(size, uint64(leaves))
		var segs [][]byte
		for i := 0; i < size; i += custody.SegmentSize {
			segs = append(segs, blob[i:min(i+custody.SegmentSize, size)])
		}
		copyRoot, proofs := merkle.ProofsFromByteSlices(segs)
		commit := merkle.HashFromByteSlices([][]byte{copyRoot})
		for i, p := range proofs {
			proof := custody.Proof{Copies: 1, Segment: uint64(i), Data: segs[i], CopyPath: p.Aunts, CommitPath: [][]byte{}}
			if err := custody.Verify([32]byte(commit), uint64(size), 1, 0, uint64(i), proof); err != nil {
				t.Fatalf("%d segments, segment %d: %v", leaves, i, err)
			}
		}
	}
}

// segmentSample is every segment of a small copy, and of a large one the
// first and last few and every 17th.
func segmentSample(leaves uint64) []uint64 {
	var out []uint64
	for s := uint64(0); s < leaves; s++ {
		if leaves <= 64 || s < 5 || s+5 >= leaves || s%17 == 0 {
			out = append(out, s)
		}
	}
	return out
}

// Every segment of every copy proves with Prove and verifies; its paths are
// the ones crypto/merkle's ProofsFromByteSlices gives, and crypto/merkle
// accepts them.
func TestProveVerifyEverySegment(t *testing.T) {
	for _, tc := range []struct {
		size   int
		copies int
	}{{1, 1}, {64, 2}, {65, 3}, {1000, 3}, {4096, 5}, {4097, 64}, {27142, 3}} {
		copies := make([][]byte, tc.copies)
		for i := range copies {
			copies[i] = randomBlob(tc.size, uint64(tc.size*100+i))
		}
		o := newOwner(t, copies)
		_, commitProofs := merkle.ProofsFromByteSlices(hashesOf(o.c.CopyRoots))
		for i := range copies {
			path := o.path(t, i)
			if !equalPaths(path, commitProofs[i].Aunts) {
				t.Fatalf("size %d copy %d: commit path differs from crypto/merkle's", tc.size, i)
			}
			if err := custody.VerifyCopy(o.c.Root, o.c.Size, tc.copies, i, path, copies[i]); err != nil {
				t.Fatalf("size %d copy %d: VerifyCopy: %v", tc.size, i, err)
			}
			var segs [][]byte
			for off := 0; off < tc.size; off += custody.SegmentSize {
				segs = append(segs, copies[i][off:min(off+custody.SegmentSize, tc.size)])
			}
			_, segProofs := merkle.ProofsFromByteSlices(segs)
			for _, s := range segmentSample(custody.Leaves(o.c.Size)) {
				p := o.prove(t, i, s)
				if !equalPaths(p.CopyPath, segProofs[s].Aunts) {
					t.Fatalf("size %d copy %d segment %d: copy path differs from crypto/merkle's", tc.size, i, s)
				}
				if err := custody.Verify(o.c.Root, o.c.Size, tc.copies, i, s, p); err != nil {
					t.Fatalf("size %d copy %d segment %d: %v", tc.size, i, s, err)
				}
				held, err := custody.ProveHeld(copies[i], i, tc.copies, path, s)
				if err != nil || !equalProofs(held, p) {
					t.Fatalf("ProveHeld differs from Prove: %v", err)
				}
				segProof := merkle.Proof{Total: int64(custody.Leaves(o.c.Size)), Index: int64(s), LeafHash: sha([]byte{0}, p.Data), Aunts: p.CopyPath}
				if err := segProof.Verify(o.c.CopyRoots[i][:], p.Data); err != nil {
					t.Fatalf("crypto/merkle refuses copy path: %v", err)
				}
			}
		}
	}
}

func equalPaths(x, y [][]byte) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !bytes.Equal(x[i], y[i]) {
			return false
		}
	}
	return true
}

func equalProofs(a, b custody.Proof) bool {
	return a.CopyIndex == b.CopyIndex && a.Copies == b.Copies && a.Segment == b.Segment &&
		bytes.Equal(a.Data, b.Data) && equalPaths(a.CopyPath, b.CopyPath) && equalPaths(a.CommitPath, b.CommitPath)
}

func hashesOf(roots [][32]byte) [][]byte {
	out := make([][]byte, len(roots))
	for i := range roots {
		out[i] = roots[i][:]
	}
	return out
}
