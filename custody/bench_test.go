package custody_test

import (
	"fmt"
	"testing"

	"github.com/cometbft/cometbft/crypto/merkle"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/custody"
)

// Sizes of real copies (BenchmarkSealedShareSize in internal/fixtures):
// sealed 20-party EdDSA and ECDSA shares, the sealed 40-party ECDSA share;
// and the raw 5 KB EdDSA and 60 KB ECDSA fixtures' sizes as blobs (Sia's
// "60 KB" example).
var benchSizes = []struct {
	name string
	size int
}{
	{"eddsa20-sealed", 2162},
	{"ecdsa20-sealed", 27142},
	{"ecdsa40-sealed", 52630},
	{"5KB", 5294},
	{"60KB", 60533},
}

// payloadBytes is what a proof carries besides framing: the segment and its
// hashes, and the three indices as varints.
func payloadBytes(p custody.Proof) int {
	n := len(p.Data) + custody.HashSize*(len(p.CopyPath)+len(p.CommitPath))
	return n + protowire.SizeVarint(uint64(p.CopyIndex)) + protowire.SizeVarint(uint64(p.Copies)) + protowire.SizeVarint(p.Segment)
}

// protoBytes is the proof's size as a protobuf message with fields 1 to 6
// (copy_index, copies, segment: varints; data: bytes; copy_path,
// commit_path: repeated bytes), zero varints omitted as proto3 does.
func protoBytes(p custody.Proof) int {
	n := 0
	for _, v := range []uint64{uint64(p.CopyIndex), uint64(p.Copies), p.Segment} {
		if v != 0 {
			n += protowire.SizeTag(1) + protowire.SizeVarint(v)
		}
	}
	n += protowire.SizeTag(4) + protowire.SizeBytes(len(p.Data))
	for range len(p.CopyPath) + len(p.CommitPath) {
		n += protowire.SizeTag(5) + protowire.SizeBytes(custody.HashSize)
	}
	return n
}

func benchOwner(b *testing.B, size int) owner {
	copies := make([][]byte, 3)
	for i := range copies {
		copies[i] = randomBlob(size, uint64(size+i))
	}
	return newOwner(b, copies)
}

// BenchmarkProve is a holder building one proof from its stored copy, r = 3,
// for a segment in the middle; it reports the proof's size. Run with
//
//	go test -run '^$' -bench 'Prove|Verify' -benchmem ./custody/
func BenchmarkProve(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			o := benchOwner(b, bs.size)
			path := o.path(b, 1)
			seg := custody.Leaves(o.c.Size) / 2
			var p custody.Proof
			for b.Loop() {
				var err error
				if p, err = custody.ProveHeld(o.copies[1], 1, 3, path, seg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(payloadBytes(p)), "payload-B")
			b.ReportMetric(float64(protoBytes(p)), "proto-B")
		})
	}
}

// BenchmarkVerify is the chain checking one proof.
func BenchmarkVerify(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			o := benchOwner(b, bs.size)
			seg := custody.Leaves(o.c.Size) / 2
			p := o.prove(b, 1, seg)
			for b.Loop() {
				if err := custody.Verify(o.c.Root, o.c.Size, 3, 1, seg, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCopy is a holder checking a whole received copy.
func BenchmarkVerifyCopy(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			o := benchOwner(b, bs.size)
			path := o.path(b, 2)
			b.SetBytes(int64(bs.size))
			for b.Loop() {
				if err := custody.VerifyCopy(o.c.Root, o.c.Size, 3, 2, path, o.copies[2]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSegmentSize compares leaf sizes for SegmentSize's table: the
// payload of a proof (segment, copy path, and the 2-hash commit path of
// r = 3), averaged over every segment, and the time to build a copy's tree
// and one proof with crypto/merkle. Run with
//
//	go test -run '^$' -bench SegmentSize ./custody/
func BenchmarkSegmentSize(b *testing.B) {
	for _, bs := range benchSizes[:3] {
		for _, seg := range []int{32, 64, 128, 256} {
			b.Run(fmt.Sprintf("%s/segment=%d", bs.name, seg), func(b *testing.B) {
				blob := randomBlob(bs.size, 1)
				var segs [][]byte
				for off := 0; off < len(blob); off += seg {
					segs = append(segs, blob[off:min(off+seg, len(blob))])
				}
				for b.Loop() {
					merkle.HashFromByteSlices(segs)
				}
				_, proofs := merkle.ProofsFromByteSlices(segs)
				total := 0
				for i, p := range proofs {
					total += len(segs[i]) + custody.HashSize*(len(p.Aunts)+2)
				}
				b.ReportMetric(float64(total)/float64(len(proofs)), "proof-B")
				b.ReportMetric(float64(len(segs)), "leaves")
			})
		}
	}
}

// BenchmarkChallenges is the chain deriving one holder's challenges for an
// epoch: 6 custodies (the reference network's 720 over 120 holders) and 600.
func BenchmarkChallenges(b *testing.B) {
	for _, n := range []int{6, 600} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			held := heldN(n)
			seed := epochSeed(1)
			for b.Loop() {
				if _, err := custody.Challenges(seed, "thor1holder", held, 1, 4); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
