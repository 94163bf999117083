package custody_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/ksb-project/ksb/custody"
)

// framed recomputes a seed from its specification: sha256 over the tag and
// the fields, strings and byte strings preceded by their length as 8 bytes
// big-endian, integers as 8 bytes big-endian.
func framed(tag string, fields ...any) [32]byte {
	h := sha256.New()
	var n [8]byte
	bytes := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	bytes([]byte(tag))
	for _, f := range fields {
		switch v := f.(type) {
		case string:
			bytes([]byte(v))
		case []byte:
			bytes(v)
		case uint64:
			binary.BigEndian.PutUint64(n[:], v)
			h.Write(n[:])
		default:
			panic(fmt.Sprintf("field %T", f))
		}
	}
	return [32]byte(h.Sum(nil))
}

func TestSeedsFollowTheirSpecification(t *testing.T) {
	block := sha256.Sum256([]byte("block"))
	if got, want := custody.AssignSeed("ksb-1", block[:], 7), framed("ksb/assign/v1", "ksb-1", block[:], uint64(7)); got != want {
		t.Errorf("AssignSeed %x, want %x", got, want)
	}
	if got, want := custody.EpochSeed("ksb-1", 9, block[:]), framed("ksb/epoch/v1", "ksb-1", uint64(9), block[:]); got != want {
		t.Errorf("EpochSeed %x, want %x", got, want)
	}
	if got, want := custody.RepairSeed("ksb-1", block[:], 7, 3), framed("ksb/repair/v1", "ksb-1", block[:], uint64(7), uint64(3)); got != want {
		t.Errorf("RepairSeed %x, want %x", got, want)
	}
	if got, want := custody.SourceSeed("ksb-1", block[:], 7, 3, 2), framed("ksb/source/v1", "ksb-1", block[:], uint64(7), uint64(3), uint64(2)); got != want {
		t.Errorf("SourceSeed %x, want %x", got, want)
	}
	seed := custody.EpochSeed("ksb-1", 9, block[:])
	// SegmentIndex: the first unbiased draw of the stream of its own seed.
	id := custody.CustodyID{Commitment: 3, Slot: 1}
	segSeed := framed("ksb/segment/v1", seed[:], id.Commitment, id.Slot)
	if got, want := custody.SegmentIndex(seed, id, 27142), custody.NewStream(segSeed).Uint64n(425); got != want {
		t.Errorf("SegmentIndex %d, want %d", got, want)
	}
}

func TestSeedsAreDomainSeparated(t *testing.T) {
	block := sha256.Sum256([]byte("block"))
	seen := map[[32]byte]string{}
	add := func(name string, s [32]byte) {
		if prev, dup := seen[s]; dup {
			t.Errorf("%s = %s", name, prev)
		}
		seen[s] = name
	}
	add("assign", custody.AssignSeed("ksb-1", block[:], 1))
	add("epoch", custody.EpochSeed("ksb-1", 1, block[:]))
	add("assign other chain", custody.AssignSeed("ksb-2", block[:], 1))
	add("assign other id", custody.AssignSeed("ksb-1", block[:], 2))
	add("assign other block", custody.AssignSeed("ksb-1", block[1:], 1))
	add("epoch other epoch", custody.EpochSeed("ksb-1", 2, block[:]))
	add("repair", custody.RepairSeed("ksb-1", block[:], 1, 0))
	add("repair other slot", custody.RepairSeed("ksb-1", block[:], 1, 1))
	add("source", custody.SourceSeed("ksb-1", block[:], 1, 0, 0))
	add("source other attempt", custody.SourceSeed("ksb-1", block[:], 1, 0, 1))
	// Length prefixes: moving a byte from one field to the next changes the seed.
	add("a|bc", custody.AssignSeed("a", []byte("bc"), 1))
	add("ab|c", custody.AssignSeed("ab", []byte("c"), 1))
}

func TestStreamIsSHA256CounterMode(t *testing.T) {
	seed := sha256.Sum256([]byte("seed"))
	s := custody.NewStream(seed)
	for block := uint64(0); block < 3; block++ {
		var ctr [8]byte
		binary.BigEndian.PutUint64(ctr[:], block)
		h := sha256.Sum256(slices.Concat([]byte("ksb/stream/v1"), seed[:], ctr[:]))
		for w := 0; w < 4; w++ {
			if got, want := s.Uint64(), binary.BigEndian.Uint64(h[8*w:]); got != want {
				t.Fatalf("block %d word %d: %x, want %x", block, w, got, want)
			}
		}
	}
}

func TestUint64n(t *testing.T) {
	s := custody.NewStream(sha256.Sum256([]byte("n")))
	if s.Uint64n(0) != 0 || s.Uint64n(1) != 0 {
		t.Fatal("Uint64n(0) and Uint64n(1) must be 0")
	}
	// Near 2^63 half the draws are rejected; it still ends, in range.
	big := uint64(1)<<63 + 1
	for range 100 {
		if v := s.Uint64n(big); v >= big {
			t.Fatalf("%d out of range", v)
		}
	}
	// Uniform: a chi-squared test over 7 buckets, 70,000 draws. The
	// critical value for 6 degrees of freedom at p = 0.001 is 22.46.
	const buckets, draws = 7, 70000
	var count [buckets]float64
	for range draws {
		count[s.Uint64n(buckets)]++
	}
	chi := 0.0
	for _, c := range count {
		chi += math.Pow(c-draws/buckets, 2) / (draws / buckets)
	}
	if chi > 22.46 {
		t.Fatalf("chi² = %.1f over %v", chi, count)
	}
}

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("thor1node%03d", i)
	}
	return out
}

func TestAssign(t *testing.T) {
	cands := nodes(120)
	seed := custody.AssignSeed("ksb-1", []byte("block"), 42)
	got := custody.Assign(seed, cands, nil, 3)
	if len(got) != 3 || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
		t.Fatalf("%v", got)
	}
	// Deterministic, and independent of the candidates' order and duplicates.
	shuffled := slices.Clone(cands)
	slices.Reverse(shuffled)
	shuffled = append(shuffled, cands[:10]...)
	if again := custody.Assign(seed, shuffled, nil, 3); !slices.Equal(again, got) {
		t.Fatalf("%v, then %v with the candidates reordered", got, again)
	}
	// A prefix of a longer draw: assigning 5 extends assigning 3.
	if five := custody.Assign(seed, cands, nil, 5); !slices.Equal(five[:3], got) {
		t.Fatalf("r = 5 gives %v, r = 3 %v", five, got)
	}
	// Exclusions: the owner and failed nodes are never picked.
	owner := got[0]
	ex := func(a string) bool { return a == owner || a == got[1] }
	for i := range 200 {
		s := custody.AssignSeed("ksb-1", []byte("block"), uint64(i))
		for _, h := range custody.Assign(s, cands, ex, 3) {
			if ex(h) {
				t.Fatalf("excluded %s assigned", h)
			}
		}
	}
	// Fewer candidates than r: all of them.
	few := custody.Assign(seed, cands[:2], nil, 3)
	slices.Sort(few)
	if !slices.Equal(few, cands[:2]) {
		t.Fatalf("%v", few)
	}
	if len(custody.Assign(seed, cands, nil, 0)) != 0 || len(custody.Assign(seed, cands, nil, -1)) != 0 || len(custody.Assign(seed, nil, nil, 3)) != 0 {
		t.Fatal("r = 0 or no candidates must assign nobody")
	}
	if len(custody.Assign(seed, cands, func(string) bool { return true }, 3)) != 0 {
		t.Fatal("everyone excluded, yet someone assigned")
	}
	// The input is not modified.
	if !slices.IsSorted(cands) || len(cands) != 120 {
		t.Fatal("candidates modified")
	}
}

// Every candidate is picked about r/n of the time: chi-squared over 12
// candidates, 12,000 draws of 3 (critical value for 11 degrees of freedom at
// p = 0.001: 31.26).
func TestAssignUniform(t *testing.T) {
	cands := nodes(12)
	count := map[string]float64{}
	const draws = 12000
	for i := range draws {
		for _, h := range custody.Assign(custody.AssignSeed("u", nil, uint64(i)), cands, nil, 3) {
			count[h]++
		}
	}
	want := float64(draws) * 3 / 12
	chi := 0.0
	for _, c := range cands {
		chi += math.Pow(count[c]-want, 2) / want
	}
	if chi > 31.26 {
		t.Fatalf("chi² = %.1f: %v", chi, count)
	}
}

func TestSegmentIndex(t *testing.T) {
	seed := custody.EpochSeed("ksb-1", 3, []byte("block"))
	id := custody.CustodyID{Commitment: 5, Slot: 2}
	if custody.SegmentIndex(seed, id, 0) != 0 {
		t.Fatal("size 0 must give 0")
	}
	hits := make([]int, custody.Leaves(2162))
	for c := uint64(0); c < 34*200; c++ {
		s := custody.SegmentIndex(seed, custody.CustodyID{Commitment: c}, 2162)
		if s >= uint64(len(hits)) {
			t.Fatalf("segment %d of %d", s, len(hits))
		}
		hits[s]++
	}
	for i, h := range hits {
		if h == 0 {
			t.Errorf("segment %d never challenged in 6,800 draws", i)
		}
	}
	other := custody.SegmentIndex(custody.EpochSeed("ksb-1", 4, []byte("block")), id, 1<<20)
	same := custody.SegmentIndex(custody.EpochSeed("ksb-1", 4, []byte("block")), id, 1<<20)
	if other != same {
		t.Fatal("not deterministic")
	}
}

// The derivations are consensus: every replica of the chain, and every
// verifying client, must compute these exact values, so a change here forks
// the chain. These vectors pin them; change them only together with the
// version in the domain tags ("ksb/…/v1").
func TestDerivationVectors(t *testing.T) {
	s := custody.AssignSeed("ksb-1", []byte("block"), 42)
	if got := fmt.Sprintf("%x", s); got != "a52aa08157eccd4a9bf9fa451f2d0c29763a575012fa407aab670d456f6d68c8" {
		t.Errorf("AssignSeed %s", got)
	}
	if got := custody.Assign(s, nodes(120), nil, 3); !slices.Equal(got, []string{"thor1node074", "thor1node086", "thor1node056"}) {
		t.Errorf("Assign %v", got)
	}
	if got := custody.NewStream(s).Uint64(); got != 17303075513299207754 {
		t.Errorf("stream %d", got)
	}
	e := custody.EpochSeed("ksb-1", 9, []byte("block"))
	if got := fmt.Sprintf("%x", e); got != "e0fee0f8e1abda9e7a99cae5fb4a67ef41901e042a4c475fd0b845c35946f0d5" {
		t.Errorf("EpochSeed %s", got)
	}
	if got := custody.SegmentIndex(e, custody.CustodyID{Commitment: 3, Slot: 1}, 27142); got != 284 {
		t.Errorf("SegmentIndex %d", got)
	}
	cs, err := custody.Challenges(e, "thor1h", heldN(12), 1, 4)
	if got := fmt.Sprint(cs); err != nil || got != "[{{0 1} 80} {{1 2} 321} {{2 1} 350} {{3 1} 284}]" {
		t.Errorf("Challenges %s, %v", got, err)
	}
}
