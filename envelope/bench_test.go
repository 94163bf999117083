package envelope_test

import (
	"testing"

	"golang.org/x/crypto/scrypt"

	"github.com/ksb-project/ksb/envelope"
)

// The KDF is the floor: Seal and Open at the default work factor should cost
// about one scrypt at the same parameters (goal ≤ 1.1×). Run with
//
//	go test -run x -bench . -benchtime 10x ./envelope/

// BenchmarkScrypt is one scrypt at the envelope's parameters: N = 2^18,
// r = 8, p = 1, 32-byte key, age's labelled 16-byte salt.
func BenchmarkScrypt(b *testing.B) {
	salt := append([]byte("age-encryption.org/v1/scrypt"), make([]byte, 16)...)
	for b.Loop() {
		if _, err := scrypt.Key([]byte(testMnemonic), salt, 1<<envelope.DefaultWorkFactor, 8, 1, 32); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeal seals the 60 KB tss-lib ECDSA fixture with the defaults.
func BenchmarkSeal(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	b.SetBytes(int64(len(in)))
	var blob []byte
	for b.Loop() {
		blob = seal(b, in, nil)
	}
	if _, wf := stanza(b, blob); wf != "18" {
		b.Fatalf("work factor %s, want the default 18", wf)
	}
}

// BenchmarkOpen opens the 60 KB fixture sealed with the defaults.
func BenchmarkOpen(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	blob := seal(b, in, nil)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := envelope.Open(blob, testMnemonic, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealOverhead and BenchmarkOpenOverhead run at work factor 1, so
// they measure everything but the KDF: xz, age, the five checks.
func BenchmarkSealOverhead(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		seal(b, in, trivial)
	}
}

func BenchmarkOpenOverhead(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	blob := seal(b, in, trivial)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := envelope.Open(blob, testMnemonic, nil); err != nil {
			b.Fatal(err)
		}
	}
}
