package envelope_test

import (
	"syscall"
	"testing"
	"time"

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

// BenchmarkRatio interleaves one scrypt, one Seal and one Open per iteration,
// rotating their order (the first 256 MiB allocation after the previous
// iteration's garbage costs more), and reports Seal and Open over scrypt in
// wall time and in this process's CPU time (user + system, GC included).
// Other processes on a shared machine inflate wall time unevenly; CPU time
// is what the operations themselves cost.
func BenchmarkRatio(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	salt := append([]byte("age-encryption.org/v1/scrypt"), make([]byte, 16)...)
	blob := seal(b, in, nil)
	var wall, cpu [3]time.Duration // scrypt, Seal, Open
	ops := [3]func(){
		func() {
			if _, err := scrypt.Key([]byte(testMnemonic), salt, 1<<envelope.DefaultWorkFactor, 8, 1, 32); err != nil {
				b.Fatal(err)
			}
		},
		func() { seal(b, in, nil) },
		func() {
			if _, err := envelope.Open(blob, testMnemonic, nil); err != nil {
				b.Fatal(err)
			}
		},
	}
	i := 0
	for b.Loop() {
		for k := range 3 {
			op := (i + k) % 3
			t0, c0 := time.Now(), cpuTime(b)
			ops[op]()
			wall[op] += time.Since(t0)
			cpu[op] += cpuTime(b) - c0
		}
		i++
	}
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "seal/scrypt-wall")
	b.ReportMetric(float64(wall[2])/float64(wall[0]), "open/scrypt-wall")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "seal/scrypt-cpu")
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "open/scrypt-cpu")
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSealCopies seals the 60 KB fixture into 3 copies with the
// defaults: one scrypt, three age encryptions and three opening checks.
func BenchmarkSealCopies(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		sealCopies(b, in, 3, nil)
	}
}

// BenchmarkSealCopiesRatio interleaves one Seal and one SealCopies(r = 3) of
// the 60 KB fixture at the default work factor per iteration, alternating
// their order, and reports SealCopies over Seal in wall and CPU time: the
// goal is ≈ 1, since both run one scrypt. Run with
//
//	go test -run '^$' -bench SealCopiesRatio -benchtime 10x ./envelope/
func BenchmarkSealCopiesRatio(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	var wall, cpu [2]time.Duration // Seal, SealCopies
	ops := [2]func(){
		func() { seal(b, in, nil) },
		func() { sealCopies(b, in, 3, nil) },
	}
	i := 0
	for b.Loop() {
		for k := range 2 {
			op := (i + k) % 2
			t0, c0 := time.Now(), cpuTime(b)
			ops[op]()
			wall[op] += time.Since(t0)
			cpu[op] += cpuTime(b) - c0
		}
		i++
	}
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "copies3/seal-wall")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "copies3/seal-cpu")
}

// BenchmarkSealCopiesOverhead is BenchmarkSealOverhead for three copies:
// everything but the KDF, so it shows what each copy adds.
func BenchmarkSealCopiesOverhead(b *testing.B) {
	in := testdata(b, "tsslib-ecdsa.json")
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		sealCopies(b, in, 3, trivial)
	}
}
