package custody_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/ksb-project/ksb/custody"
)

// fuzzOwner is a small commitment for FuzzVerify: r = 3 copies of 1,000
// bytes (16 segments, the last of 40 bytes), with every proof precomputed so
// an iteration costs one Verify.
var fuzzOwner = func() struct {
	owner
	proofs [3][]custody.Proof
} {
	var f struct {
		owner
		proofs [3][]custody.Proof
	}
	copies := [][]byte{randomBlob(1000, 11), randomBlob(1000, 12), randomBlob(1000, 13)}
	c, err := custody.NewCommitment(copies)
	if err != nil {
		panic(err)
	}
	f.owner = owner{copies: copies, c: c}
	for i := range copies {
		for s := uint64(0); s < custody.Leaves(c.Size); s++ {
			p, err := custody.Prove(copies[i], c.CopyRoots, i, s)
			if err != nil {
				panic(err)
			}
			f.proofs[i] = append(f.proofs[i], p)
		}
	}
	return f
}()

// flatten lays a proof out as bytes: copy index, copies (one byte each),
// segment (8 bytes), the segment, the copy path's hashes, the commit path's.
func flatten(p custody.Proof) []byte {
	b := []byte{byte(p.CopyIndex), byte(p.Copies)}
	b = binary.BigEndian.AppendUint64(b, p.Segment)
	b = append(b, p.Data...)
	for _, h := range slices.Concat(p.CopyPath, p.CommitPath) {
		b = append(b, h...)
	}
	return b
}

// unflatten reads a flattened proof back with the field sizes of shape.
func unflatten(b []byte, shape custody.Proof) custody.Proof {
	p := custody.Proof{CopyIndex: int(b[0]), Copies: int(b[1]), Segment: binary.BigEndian.Uint64(b[2:10])}
	b = b[10:]
	take := func(n int) []byte { out := bytes.Clone(b[:n]); b = b[n:]; return out }
	p.Data = take(len(shape.Data))
	for range shape.CopyPath {
		p.CopyPath = append(p.CopyPath, take(custody.HashSize))
	}
	for range shape.CommitPath {
		p.CommitPath = append(p.CommitPath, take(custody.HashSize))
	}
	return p
}

// arbitraryProof builds a proof of any shape from raw bytes: counts and
// lengths come from the input, so paths of every length, hashes of every
// size and segments of every length get tried.
func arbitraryProof(raw []byte) custody.Proof {
	next := func() byte {
		if len(raw) == 0 {
			return 0
		}
		c := raw[0]
		raw = raw[1:]
		return c
	}
	take := func(n int) []byte {
		n = min(n, len(raw))
		out := raw[:n:n]
		raw = raw[n:]
		return out
	}
	p := custody.Proof{CopyIndex: int(int8(next())), Copies: int(int8(next())), Segment: uint64(next()) | uint64(next())<<56}
	p.Data = take(int(next()))
	for n := int(next() % 24); n > 0; n-- {
		p.CopyPath = append(p.CopyPath, take(int(next()%40)))
	}
	for n := int(next() % 8); n > 0; n-- {
		p.CommitPath = append(p.CommitPath, take(int(next()%40)))
	}
	return p
}

func TestFuzzProofsAreValid(t *testing.T) {
	o := fuzzOwner
	for i := range o.proofs {
		for s, p := range o.proofs[i] {
			if err := custody.Verify(o.c.Root, o.c.Size, len(o.copies), i, uint64(s), p); err != nil {
				t.Fatalf("copy %d segment %d: %v", i, s, err)
			}
		}
	}
}

// FuzzVerify: Verify never panics; a valid proof passes and, mutated in any
// byte (an index, the segment or a hash), fails with a *ProofError; no
// proof of arbitrary shape is accepted unless it carries the committed
// segment; arbitrary verifier arguments never panic.
func FuzzVerify(f *testing.F) {
	f.Add(uint8(1), uint16(5), uint32(20), byte(1), []byte{})
	f.Add(uint8(2), uint16(15), uint32(0), byte(0x80), []byte{1, 3, 0, 0, 64})
	f.Add(uint8(0), uint16(0), uint32(300), byte(0xff), bytes.Repeat([]byte{32}, 200))
	f.Fuzz(func(t *testing.T, ci uint8, seg uint16, pos uint32, xor byte, raw []byte) {
		o := fuzzOwner
		r, size := len(o.copies), o.c.Size
		i, s := int(ci)%r, uint64(seg)%custody.Leaves(size)
		good := o.proofs[i][s] // valid: TestFuzzProofsAreValid

		// One byte of the valid proof changed.
		flat := flatten(good)
		if xor == 0 {
			xor = 1
		}
		flat[int(pos)%len(flat)] ^= xor
		bad := unflatten(flat, good)
		err := custody.Verify(o.c.Root, size, r, i, s, bad)
		var pe *custody.ProofError
		if err == nil || !errors.As(err, &pe) || !errors.Is(err, custody.ErrInvalidProof) {
			t.Fatalf("proof with byte %d ^ %#x: %v", int(pos)%len(flat), xor, err)
		}

		// Any shape, for the same challenge: accepted only with the real
		// segment (then it is a genuine proof).
		p := arbitraryProof(raw)
		if err := custody.Verify(o.c.Root, size, r, i, s, p); err == nil && !bytes.Equal(p.Data, good.Data) {
			t.Fatalf("forged proof accepted: %+v", p)
		}
		// Arbitrary arguments.
		args := arbitraryProof(raw)
		_ = custody.Verify(o.c.Root, uint64(len(raw))<<(ci%48), args.Copies, args.CopyIndex, args.Segment, p)
		blob := raw[:min(len(raw), 4096)]
		_ = custody.VerifyCopy(o.c.Root, uint64(len(blob)), args.Copies, args.CopyIndex, p.CopyPath, blob)
	})
}

// fuzzHeld reads custodies from raw: 4 bytes each (commitment, slot, size
// in units of 97 bytes with 0 and the over-MaxSize value possible, flags).
func fuzzHeld(raw []byte) []custody.Held {
	var held []custody.Held
	for len(raw) >= 4 && len(held) < 64 {
		size := uint64(raw[2]) * 97
		if raw[2] == 0xff {
			size = custody.MaxSize + 1
		}
		held = append(held, custody.Held{
			ID:   custody.CustodyID{Commitment: uint64(raw[0] % 64), Slot: uint64(raw[1] % 4)},
			Size: size, Pending: raw[3]&1 != 0, Stale: raw[3]&2 != 0, Challenged: raw[3]&4 != 0,
		})
		raw = raw[4:]
	}
	return held
}

// FuzzChallenge: the derivations never panic; their results are in range,
// follow the sampling rules, and depend only on their inputs (not on the
// order of the custodies or candidates).
func FuzzChallenge(f *testing.F) {
	f.Add([]byte("seed"), "thor1holder", uint8(0), uint8(4), []byte{1, 0, 200, 0, 1, 1, 10, 1, 2, 2, 30, 2, 3, 0, 40, 4})
	f.Add([]byte{}, "", uint8(3), uint8(4), []byte{1, 0, 0, 0})
	f.Add([]byte{9}, "h", uint8(5), uint8(2), []byte{1, 0, 1, 0, 1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, block []byte, holder string, j, round uint8, raw []byte) {
		seed := custody.EpochSeed("ksb-fuzz", uint64(j), block)
		held := fuzzHeld(raw)
		cs, err := custody.Challenges(seed, holder, held, uint64(j), uint64(round))
		if err != nil {
			if !errors.Is(err, custody.ErrInvalidArgument) {
				t.Fatalf("error %v is not ErrInvalidArgument", err)
			}
		} else {
			checkChallenges(t, seed, held, uint64(j), uint64(round), cs)
			rev := slices.Clone(held)
			slices.Reverse(rev)
			again, err := custody.Challenges(seed, holder, rev, uint64(j), uint64(round))
			if err != nil || !slices.Equal(again, cs) {
				t.Fatalf("reordered input: %v, %v; first %v", again, err, cs)
			}
		}

		// Assignment over candidates named by the input's first bytes (a
		// cap that keeps every iteration cheap).
		var cands []string
		for _, c := range raw[:min(len(raw), 256)] {
			cands = append(cands, string(rune('a'+c%40)))
		}
		exclude := func(a string) bool { return int(a[0])%3 == len(holder)%4 }
		r := int(round % 8)
		got := custody.Assign(seed, cands, exclude, r)
		eligible := slices.Compact(slices.Sorted(slices.Values(cands)))
		eligible = slices.DeleteFunc(eligible, exclude)
		if len(got) != min(r, len(eligible)) {
			t.Fatalf("assigned %d of %d eligible, r = %d", len(got), len(eligible), r)
		}
		seen := map[string]bool{}
		for _, a := range got {
			if seen[a] || exclude(a) || !slices.Contains(eligible, a) {
				t.Fatalf("assigned %q: %v from %v", a, got, eligible)
			}
			seen[a] = true
		}
		slices.Reverse(cands)
		if again := custody.Assign(seed, cands, exclude, r); !slices.Equal(again, got) {
			t.Fatalf("reordered candidates: %v, then %v", got, again)
		}
	})
}

func checkChallenges(t *testing.T, seed [32]byte, held []custody.Held, j, round uint64, cs []custody.Challenge) {
	t.Helper()
	byID := map[custody.CustodyID]custody.Held{}
	for _, h := range held {
		byID[h.ID] = h
	}
	if len(held) > 0 && len(cs) == 0 {
		t.Fatal("a holder with custodies got no challenge")
	}
	chosen := map[custody.CustodyID]bool{}
	for k, c := range cs {
		h, ok := byID[c.Custody]
		if !ok || chosen[c.Custody] || k > 0 && cs[k-1].Custody.Compare(c.Custody) >= 0 {
			t.Fatalf("challenge %v: unknown, repeated or out of order in %v", c, cs)
		}
		chosen[c.Custody] = true
		if c.Segment >= custody.Leaves(h.Size) || c.Segment != custody.SegmentIndex(seed, c.Custody, h.Size) {
			t.Fatalf("segment %d of %d", c.Segment, custody.Leaves(h.Size))
		}
	}
	unchallenged, taken := 0, 0
	for _, h := range held {
		if (h.Pending || h.Stale) && !chosen[h.ID] {
			t.Fatalf("pending or stale custody %v not challenged", h.ID)
		}
		if !h.Challenged {
			unchallenged++
			if chosen[h.ID] {
				taken++
			}
		}
	}
	if k := (unchallenged + int(round-j) - 1) / int(round-j); taken < k {
		t.Fatalf("%d of %d unchallenged custodies taken, want at least %d", taken, unchallenged, k)
	}
}
