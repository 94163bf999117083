package custody

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
)

// Domain tags: every hash this package derives from chain randomness starts
// with its own tag, so no value computed for one purpose can be replayed as
// another's.
const (
	tagAssign    = "ksb/assign/v1"
	tagEpoch     = "ksb/epoch/v1"
	tagChallenge = "ksb/challenge/v1"
	tagSegment   = "ksb/segment/v1"
	tagStream    = "ksb/stream/v1"
	tagRepair    = "ksb/repair/v1"
	tagSource    = "ksb/source/v1"
)

// seedHash writes length-prefixed fields, so that no two different field
// lists hash the same bytes (chain ID "a" with block hash "bc" differs from
// "ab" with "c").
type seedHash struct{ h hash.Hash }

func newSeedHash(tag string) seedHash {
	s := seedHash{sha256.New()}
	s.bytes([]byte(tag))
	return s
}

func (s seedHash) bytes(b []byte) {
	s.u64(uint64(len(b)))
	s.h.Write(b)
}

func (s seedHash) u64(x uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], x)
	s.h.Write(b[:])
}

func (s seedHash) sum() [HashSize]byte {
	var out [HashSize]byte
	s.h.Sum(out[:0])
	return out
}

// AssignSeed is the seed from which the chain assigns the holders of
// commitment commitmentID, in the block whose hash is blockHash:
// sha256("ksb/assign/v1" ‖ chainID ‖ blockHash ‖ commitmentID), where the
// tag, chainID and blockHash are each preceded by their length as 8 bytes
// big-endian and commitmentID is 8 bytes big-endian. The length prefixes
// keep two different inputs from hashing the same bytes (chain "a" with
// block hash "bc" against "ab" with "c").
func AssignSeed(chainID string, blockHash []byte, commitmentID uint64) [HashSize]byte {
	s := newSeedHash(tagAssign)
	s.bytes([]byte(chainID))
	s.bytes(blockHash)
	s.u64(commitmentID)
	return s.sum()
}

// RepairSeed is the seed from which the chain picks the replacement holder
// of slot slot of commitment commitmentID, in the block whose hash is
// blockHash: sha256 over "ksb/repair/v1", chainID, blockHash, commitmentID
// and slot, framed as AssignSeed's. Its own tag and the slot keep it apart
// from the commitment's original assignment in the same block and from every
// other repair of the commitment.
func RepairSeed(chainID string, blockHash []byte, commitmentID, slot uint64) [HashSize]byte {
	s := newSeedHash(tagRepair)
	s.bytes([]byte(chainID))
	s.bytes(blockHash)
	s.u64(commitmentID)
	s.u64(slot)
	return s.sum()
}

// SourceSeed is the seed from which the chain picks the source of a repair:
// the counted holder that sends its copy to the replacement of slot slot of
// commitment commitmentID. attempt counts the sources drawn before for that
// slot (0 for the first; the chain draws again when a source does not act
// within its deadline). sha256 over "ksb/source/v1", chainID, blockHash,
// commitmentID, slot and attempt, framed as AssignSeed's.
func SourceSeed(chainID string, blockHash []byte, commitmentID, slot, attempt uint64) [HashSize]byte {
	s := newSeedHash(tagSource)
	s.bytes([]byte(chainID))
	s.bytes(blockHash)
	s.u64(commitmentID)
	s.u64(slot)
	s.u64(attempt)
	return s.sum()
}

// EpochSeed is the seed of epoch epoch's challenges, from the hash of the
// epoch's first block: sha256 over "ksb/epoch/v1", chainID, epoch and
// blockHash, framed as AssignSeed's.
func EpochSeed(chainID string, epoch uint64, blockHash []byte) [HashSize]byte {
	s := newSeedHash(tagEpoch)
	s.bytes([]byte(chainID))
	s.u64(epoch)
	s.bytes(blockHash)
	return s.sum()
}

// Stream is a deterministic stream of random numbers from a seed: SHA-256
// in counter mode, block i = sha256("ksb/stream/v1" ‖ seed ‖ i) with i as 8
// bytes big-endian, read 8 bytes at a time as big-endian uint64s. Anyone
// with the seed gets the same numbers; without it they are unpredictable.
// The zero value is not usable: call NewStream.
type Stream struct {
	seed  [HashSize]byte
	ctr   uint64
	block [HashSize]byte
	off   int
}

// NewStream returns the stream of seed.
func NewStream(seed [HashSize]byte) *Stream {
	return &Stream{seed: seed, off: HashSize}
}

// Uint64 returns the next 64 bits of the stream.
func (s *Stream) Uint64() uint64 {
	if s.off == HashSize {
		var in [len(tagStream) + HashSize + 8]byte
		copy(in[:], tagStream)
		copy(in[len(tagStream):], s.seed[:])
		binary.BigEndian.PutUint64(in[len(tagStream)+HashSize:], s.ctr)
		s.block = sha256.Sum256(in[:])
		s.ctr++
		s.off = 0
	}
	v := binary.BigEndian.Uint64(s.block[s.off:])
	s.off += 8
	return v
}

// Uint64n returns a uniform number in [0, n), without modulo bias: it
// rejects draws below 2^64 mod n (at most one in two, for n just above
// 2^63). Uint64n(0) is 0.
func (s *Stream) Uint64n(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	floor := -n % n // 2^64 mod n
	for {
		if v := s.Uint64(); v >= floor {
			return v % n
		}
	}
}

// Assign picks up to r of the candidates, uniformly at random from seed and
// in a random order, skipping those exclude reports true for (nil excludes
// none): a partial Fisher–Yates shuffle over the remaining candidates sorted
// bytewise, driven by NewStream(seed). The candidates may come in any order
// and with duplicates: they are sorted and deduplicated first, so the result
// depends only on the seed and the set. With fewer than r eligible
// candidates it returns them all (shuffled); r ≤ 0 gives none.
//
// The chain assigns a commitment's holders with
// Assign(AssignSeed(…), active nodes, owner or failed, r) and a repair's
// replacement with the current holders excluded too.
func Assign(seed [HashSize]byte, candidates []string, exclude func(string) bool, r int) []string {
	if r <= 0 {
		return nil
	}
	pool := slices.Clone(candidates)
	slices.Sort(pool)
	pool = slices.Compact(pool)
	if exclude != nil {
		pool = slices.DeleteFunc(pool, exclude)
	}
	k := min(r, len(pool))
	st := NewStream(seed)
	for i := 0; i < k; i++ {
		j := i + int(st.Uint64n(uint64(len(pool)-i)))
		pool[i], pool[j] = pool[j], pool[i]
	}
	return slices.Clip(pool[:k])
}

// CustodyID names a custody: a slot of a commitment. Slots 0 to r-1 are
// assigned at commit time; repair adds slots from r up.
type CustodyID struct {
	Commitment uint64
	Slot       uint64
}

// Compare orders custody IDs by commitment, then slot.
func (c CustodyID) Compare(o CustodyID) int {
	return cmp.Or(cmp.Compare(c.Commitment, o.Commitment), cmp.Compare(c.Slot, o.Slot))
}

// SegmentIndex is the segment of custody id challenged from epoch seed
// seed, for a copy of size bytes: uniform over the copy's Leaves(size)
// segments, from the stream of sha256 over "ksb/segment/v1", seed and id
// (framed as AssignSeed's). A size of 0 gives 0.
func SegmentIndex(seed [HashSize]byte, id CustodyID, size uint64) uint64 {
	s := newSeedHash(tagSegment)
	s.bytes(seed[:])
	s.u64(id.Commitment)
	s.u64(id.Slot)
	return NewStream(s.sum()).Uint64n(Leaves(size))
}
