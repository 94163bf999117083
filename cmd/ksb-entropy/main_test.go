package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	bip39 "github.com/cosmos/go-bip39"

	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
)

// The fast generator must produce exactly the mnemonics go-bip39 makes from
// the same 32 bytes of entropy.
func TestGeneratorMatchesBIP39(t *testing.T) {
	for _, b := range []int64{0, 1, 12345} {
		g := generator(7, b)
		ref := generator(7, b).r // same stream, read by hand
		var buf [maxMnemonicLen]byte
		for range 500 {
			m := string(g.mnemonic(buf[:0]))
			ent := make([]byte, 32)
			_, _ = ref.Read(ent)
			want, err := bip39.NewMnemonic(ent)
			if err != nil {
				t.Fatal(err)
			}
			if m != want {
				t.Fatalf("batch %d: generated %q, go-bip39 gives %q", b, m, want)
			}
			if err := identity.Validate(m); err != nil || len(strings.Fields(m)) != 24 {
				t.Fatalf("generated mnemonic is not a valid 24-word mnemonic: %v", err)
			}
		}
	}
}

// The tool must measure exactly what the envelope checks.
func TestEntropyMatchesEnvelope(t *testing.T) {
	g := generator(3, 0)
	var buf [maxMnemonicLen]byte
	for range 2000 {
		m := g.mnemonic(buf[:0])
		if got, want := entropy(m), envelope.Entropy(string(m)); math.Abs(got-want) > 1e-12 {
			t.Fatalf("entropy(%q) = %v, envelope.Entropy = %v", m, got, want)
		}
	}
}

func TestEntropyKnownValues(t *testing.T) {
	for m, want := range map[string]float64{
		"aaaa":    0,
		"ab":      1,
		"abcd":    2,
		"aabb cc": -(3*(2.0/7)*math.Log2(2.0/7) + (1.0/7)*math.Log2(1.0/7)),
	} {
		if got := entropy([]byte(m)); math.Abs(got-want) > 1e-12 {
			t.Errorf("entropy(%q) = %v, want %v", m, got, want)
		}
	}
}

// withoutTiming drops the first line, which holds the elapsed time.
func withoutTiming(s string) string {
	_, rest, _ := strings.Cut(s, "\n")
	return rest
}

func TestRunIsReproducible(t *testing.T) {
	const n = batchSize + 1000 // a full batch and a partial one
	var one, two, other bytes.Buffer
	if err := run(&one, n, 42, 1); err != nil {
		t.Fatal(err)
	}
	if err := run(&two, n, 42, 2); err != nil {
		t.Fatal(err)
	}
	if withoutTiming(one.String()) != withoutTiming(two.String()) {
		t.Fatalf("1 worker and 2 workers differ:\n%s\n%s", one.String(), two.String())
	}
	if err := run(&other, n, 43, 2); err != nil {
		t.Fatal(err)
	}
	if withoutTiming(one.String()) == withoutTiming(other.String()) {
		t.Fatal("seeds 42 and 43 gave identical results")
	}
	for _, want := range []string{"min ", "q0.5 ", "max ", "threshold "} {
		if !strings.Contains(one.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, one.String())
		}
	}
}

// The reported minimum is the minimum over the sample, and the threshold
// lets every sampled mnemonic pass.
func TestStatsMinAndThreshold(t *testing.T) {
	s := sample(5000, 9, 2)
	g := generator(9, 0)
	var buf [maxMnemonicLen]byte
	lo := math.Inf(1)
	for range 5000 {
		lo = min(lo, envelope.Entropy(string(g.mnemonic(buf[:0]))))
	}
	if math.Abs(s.min-lo) > 1e-12 || s.n != 5000 {
		t.Fatalf("sample min %v over %d, direct min %v over 5000", s.min, s.n, lo)
	}
	if th := threshold(s.min); th > s.min || s.min-th >= 0.01 {
		t.Fatalf("threshold %v for min %v", th, s.min)
	}
	if q := s.quantile(0.5); q < s.min || q > s.max {
		t.Fatalf("median %v outside [%v, %v]", q, s.min, s.max)
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, 0, 1, 1); err == nil {
		t.Error("-n 0 accepted")
	}
	if err := run(&out, 10, 1, 0); err == nil {
		t.Error("-workers 0 accepted")
	}
	if out.Len() != 0 {
		t.Errorf("printed %q on a refusal", out.String())
	}
}

func BenchmarkMnemonicAndEntropy(b *testing.B) {
	g := gen{rand.NewChaCha8([32]byte{})}
	var buf [maxMnemonicLen]byte
	for b.Loop() {
		entropy(g.mnemonic(buf[:0]))
	}
}

// A sample of random mnemonics passes the envelope's threshold: MinEntropy is
// not above what random mnemonics reach.
func TestSamplePassesMinEntropy(t *testing.T) {
	s := sample(50_000, 1, 2)
	if s.min < envelope.MinEntropy {
		t.Fatalf("a random mnemonic has entropy %v < MinEntropy %v", s.min, envelope.MinEntropy)
	}
}
