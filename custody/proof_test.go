package custody_test

import (
	"errors"
	"testing"

	"github.com/ksb-project/ksb/custody"
)

func TestVerifyRefuses(t *testing.T) {
	copies := sealedCopies(t, "eddsa") // 2,162 bytes: 34 segments, the last of 50 bytes
	o := newOwner(t, copies)
	size, r := o.c.Size, len(copies)
	last := custody.Leaves(size) - 1
	const seg, idx = 5, 1
	good := o.prove(t, idx, seg)
	if err := custody.Verify(o.c.Root, size, r, idx, seg, good); err != nil {
		t.Fatal(err)
	}
	lastProof := o.prove(t, idx, last)
	if len(lastProof.Data) != int(size%custody.SegmentSize) {
		t.Fatalf("last segment has %d bytes", len(lastProof.Data))
	}
	other := o.prove(t, 2, seg) // another holder's copy, same segment

	type verifyCase struct {
		mutate func(p *custody.Proof)
		want   error
	}
	for name, c := range map[string]verifyCase{
		"another copy index":         {func(p *custody.Proof) { p.CopyIndex = 2 }, custody.ErrWrongCopy},
		"negative copy index":        {func(p *custody.Proof) { p.CopyIndex = -1 }, custody.ErrWrongCopy},
		"another r":                  {func(p *custody.Proof) { p.Copies = 4 }, custody.ErrWrongCopy},
		"another segment index":      {func(p *custody.Proof) { p.Segment = seg + 1 }, custody.ErrWrongSegment},
		"short segment":              {func(p *custody.Proof) { p.Data = p.Data[:63] }, custody.ErrSegmentLength},
		"long segment":               {func(p *custody.Proof) { p.Data = append(p.Data, 0) }, custody.ErrSegmentLength},
		"no segment":                 {func(p *custody.Proof) { p.Data = nil }, custody.ErrSegmentLength},
		"copy path short":            {func(p *custody.Proof) { p.CopyPath = p.CopyPath[1:] }, custody.ErrPathShape},
		"copy path long":             {func(p *custody.Proof) { p.CopyPath = append(p.CopyPath, p.CopyPath[0]) }, custody.ErrPathShape},
		"copy path hash short":       {func(p *custody.Proof) { p.CopyPath[2] = p.CopyPath[2][:31] }, custody.ErrPathShape},
		"copy path hash long":        {func(p *custody.Proof) { p.CopyPath[2] = append(p.CopyPath[2], 0) }, custody.ErrPathShape},
		"commit path missing":        {func(p *custody.Proof) { p.CommitPath = nil }, custody.ErrPathShape},
		"commit path hash nil":       {func(p *custody.Proof) { p.CommitPath[0] = nil }, custody.ErrPathShape},
		"paths swapped":              {func(p *custody.Proof) { p.CopyPath, p.CommitPath = p.CommitPath, p.CopyPath }, custody.ErrPathShape},
		"segment byte flipped":       {func(p *custody.Proof) { p.Data[17] ^= 0x80 }, custody.ErrPathMismatch},
		"copy path hash flipped":     {func(p *custody.Proof) { p.CopyPath[3][0] ^= 1 }, custody.ErrPathMismatch},
		"commit path hash flipped":   {func(p *custody.Proof) { p.CommitPath[len(p.CommitPath)-1][31] ^= 1 }, custody.ErrPathMismatch},
		"copy path hashes reordered": {func(p *custody.Proof) { p.CopyPath[0], p.CopyPath[1] = p.CopyPath[1], p.CopyPath[0] }, custody.ErrPathMismatch},
		// The case: a holder that lost copy 1 answers with copy 2's
		// segment and copy path, under its own copy index.
		"another holder's copy": {func(p *custody.Proof) {
			p.Data, p.CopyPath = other.Data, other.CopyPath
		}, custody.ErrPathMismatch},
		// ... or presents copy 2's whole proof.
		"another holder's proof": {func(p *custody.Proof) { *p = cloneProof(other) }, custody.ErrWrongCopy},
		// A segment from another place in its own copy, relabelled.
		"another segment's data": {func(p *custody.Proof) {
			q := o.prove(t, idx, seg+1)
			p.Data, p.CopyPath = q.Data, q.CopyPath
		}, custody.ErrPathMismatch},
	} {
		t.Run(name, func(t *testing.T) {
			p := cloneProof(good)
			c.mutate(&p)
			err := custody.Verify(o.c.Root, size, r, idx, seg, p)
			var pe *custody.ProofError
			if !errors.Is(err, c.want) || !errors.Is(err, custody.ErrInvalidProof) || !errors.As(err, &pe) || pe.Unwrap() != c.want {
				t.Fatalf("err = %v, want a ProofError with cause %v", err, c.want)
			}
			if errors.Is(err, custody.ErrInvalidArgument) {
				t.Fatalf("a bad proof is reported as a bad argument: %v", err)
			}
		})
	}

	t.Run("last segment full length", func(t *testing.T) {
		p := cloneProof(lastProof)
		p.Data = append(p.Data, make([]byte, custody.SegmentSize-len(p.Data))...)
		if err := custody.Verify(o.c.Root, size, r, idx, last, p); !errors.Is(err, custody.ErrSegmentLength) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("wrong root", func(t *testing.T) {
		root := o.c.Root
		root[0] ^= 1
		if err := custody.Verify(root, size, r, idx, seg, good); !errors.Is(err, custody.ErrPathMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("committed size differs", func(t *testing.T) {
		// Same segment count, another last segment length: the root covers
		// the segments, not the size (the holder checked the size when it
		// took the copy, VerifyCopy), so a full segment still verifies but
		// the last one has the wrong length.
		if err := custody.Verify(o.c.Root, size-1, r, idx, seg, good); err != nil {
			t.Fatalf("full segment: %v", err)
		}
		if err := custody.Verify(o.c.Root, size-1, r, idx, last, lastProof); !errors.Is(err, custody.ErrSegmentLength) {
			t.Fatalf("last segment: %v", err)
		}
		// Another segment count: the path shape differs.
		if err := custody.Verify(o.c.Root, size*4, r, idx, seg, good); !errors.Is(err, custody.ErrPathShape) {
			t.Fatalf("err = %v", err)
		}
	})

	for name, args := range map[string]struct {
		size      uint64
		copies    int
		copyIndex int
		segment   uint64
	}{
		"size 0":            {0, r, idx, seg},
		"size over MaxSize": {custody.MaxSize + 1, r, idx, seg},
		"no copies":         {size, 0, 0, seg},
		"too many copies":   {size, custody.MaxCopies + 1, idx, seg},
		"copy index ≥ r":    {size, r, r, seg},
		"copy index < 0":    {size, r, -1, seg},
		"segment ≥ leaves":  {size, r, idx, last + 1},
		"huge segment":      {size, r, idx, ^uint64(0)},
	} {
		t.Run(name, func(t *testing.T) {
			err := custody.Verify(o.c.Root, args.size, args.copies, args.copyIndex, args.segment, good)
			if !errors.Is(err, custody.ErrInvalidArgument) || errors.Is(err, custody.ErrInvalidProof) {
				t.Fatalf("err = %v, want ErrInvalidArgument only", err)
			}
		})
	}
}

func TestVerifyCopyRefuses(t *testing.T) {
	copies := sealedCopies(t, "eddsa")
	o := newOwner(t, copies)
	size, r := o.c.Size, len(copies)
	path := o.path(t, 1)
	if err := custody.VerifyCopy(o.c.Root, size, r, 1, path, copies[1]); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		blob  []byte
		path  [][]byte
		index int
		want  error
	}{
		"byte flipped":       {flip(copies[1], 1000), path, 1, custody.ErrPathMismatch},
		"last byte flipped":  {flip(copies[1], int(size)-1), path, 1, custody.ErrPathMismatch},
		"another copy":       {copies[2], path, 1, custody.ErrPathMismatch},
		"another copy index": {copies[1], path, 0, custody.ErrPathMismatch},
		"another path shape": {copies[1], path, 2, custody.ErrPathShape},
		"truncated":          {copies[1][:size-1], path, 1, custody.ErrWrongSize},
		"extended":           {append(append([]byte{}, copies[1]...), 0), path, 1, custody.ErrWrongSize},
		"path short":         {copies[1], path[:1], 1, custody.ErrPathShape},
		"path hash short":    {copies[1], [][]byte{path[0], path[1][:5]}, 1, custody.ErrPathShape},
		"path hash flipped":  {copies[1], [][]byte{path[0], flip(path[1], 3)}, 1, custody.ErrPathMismatch},
	} {
		t.Run(name, func(t *testing.T) {
			err := custody.VerifyCopy(o.c.Root, size, r, c.index, c.path, c.blob)
			var pe *custody.ProofError
			if !errors.Is(err, c.want) || !errors.As(err, &pe) || !errors.Is(err, custody.ErrInvalidProof) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	for name, err := range map[string]error{
		"size 0":    custody.VerifyCopy(o.c.Root, 0, r, 1, path, nil),
		"r = 0":     custody.VerifyCopy(o.c.Root, size, 0, 0, path, copies[1]),
		"index ≥ r": custody.VerifyCopy(o.c.Root, size, r, r, path, copies[1]),
	} {
		if !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestProveRefuses(t *testing.T) {
	copies := sealedCopies(t, "eddsa")
	o := newOwner(t, copies)
	leaves := custody.Leaves(o.c.Size)
	path := o.path(t, 0)
	for name, f := range map[string]func() error{
		"blob is another copy": func() error { _, err := custody.Prove(copies[1], o.c.CopyRoots, 0, 0); return err },
		"segment out of range": func() error { _, err := custody.Prove(copies[0], o.c.CopyRoots, 0, leaves); return err },
		"copy index ≥ r":       func() error { _, err := custody.Prove(copies[0], o.c.CopyRoots, 3, 0); return err },
		"empty blob":           func() error { _, err := custody.ProveHeld(nil, 0, 3, path, 0); return err },
		"held: bad path":       func() error { _, err := custody.ProveHeld(copies[0], 0, 3, path[:1], 0); return err },
		"held: index ≥ r":      func() error { _, err := custody.ProveHeld(copies[0], 3, 3, path, 0); return err },
		"held: segment":        func() error { _, err := custody.ProveHeld(copies[0], 0, 3, path, leaves); return err },
		"held: r too large":    func() error { _, err := custody.ProveHeld(copies[0], 0, custody.MaxCopies+1, path, 0); return err },
	} {
		if err := f(); !errors.Is(err, custody.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	// A proof does not alias the holder's stored blob or path.
	blob := append([]byte{}, copies[0]...)
	p, err := custody.ProveHeld(blob, 0, 3, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	blob[0] ^= 1
	path[0][0] ^= 1
	defer func() { path[0][0] ^= 1 }()
	if err := custody.Verify(o.c.Root, o.c.Size, 3, 0, 0, p); err != nil {
		t.Fatalf("proof changed with the holder's buffers: %v", err)
	}
}

// Copies sealed by envelope.SealCopies are independent: no segment of one
// verifies as the same segment of another.
func TestSealedCopiesDoNotAnswerForEachOther(t *testing.T) {
	for _, alg := range []string{"eddsa", "ecdsa"} {
		copies := sealedCopies(t, alg)
		o := newOwner(t, copies)
		for _, s := range segmentSample(custody.Leaves(o.c.Size)) {
			for i := range copies {
				p := o.prove(t, i, s)
				for j := range copies {
					q := cloneProof(p)
					q.CopyIndex = j
					q.CommitPath = o.path(t, j)
					err := custody.Verify(o.c.Root, o.c.Size, len(copies), j, s, q)
					if (i == j) != (err == nil) {
						t.Fatalf("%s segment %d of copy %d presented for copy %d: %v", alg, s, i, j, err)
					}
				}
			}
		}
	}
}
