// Command ksb-entropy derives the envelope's minimum mnemonic entropy
// (envelope.MinEntropy) the way ADR 004 asks: it generates N random 24-word
// BIP39 mnemonics, computes the Shannon entropy (base 2) of each one's byte
// distribution, and reports the minimum, low quantiles and the threshold (the
// minimum rounded down to two decimals, so every generated mnemonic passes).
//
// The mnemonics come from a seeded ChaCha8 generator, so a run is
// reproducible: the same -n and -seed give the same figures whatever the
// number of workers. Work is split into fixed batches, each with its own
// generator seeded from (seed, batch number).
//
// Usage:
//
//	ksb-entropy [-n 10000000] [-seed 1] [-workers NCPU]
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"time"

	bip39 "github.com/cosmos/go-bip39"
)

const (
	// batchSize is the number of mnemonics drawn from one generator. Fixed,
	// so results do not depend on how batches are spread over workers.
	batchSize = 1 << 16

	// words is the mnemonic length the envelope requires.
	words = 24

	// binWidth is the resolution of the quantiles: entropies are counted in
	// bins this wide (the minimum and maximum are exact).
	binWidth = 1e-4

	// maxEntropy bounds the histogram: a 24-word mnemonic has at most 27
	// distinct bytes (26 letters and the space), so log2(27) ≈ 4.75 bits.
	maxEntropy = 5.0

	// maxMnemonicLen is the longest 24-word mnemonic: 24 words of at most 8
	// letters and 23 spaces.
	maxMnemonicLen = 24*8 + 23
)

// quantiles are the lower-tail fractions reported besides min and max.
var quantiles = []float64{1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.5}

func main() {
	n := flag.Int64("n", 10_000_000, "number of mnemonics to generate")
	seed := flag.Uint64("seed", 1, "seed of the deterministic generator")
	workers := flag.Int("workers", runtime.NumCPU(), "parallel workers")
	flag.Parse()
	if err := run(os.Stdout, *n, *seed, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "ksb-entropy:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, n int64, seed uint64, workers int) error {
	if n < 1 {
		return errors.New("-n must be at least 1")
	}
	if workers < 1 {
		return errors.New("-workers must be at least 1")
	}
	start := time.Now()
	s := sample(n, seed, workers)
	elapsed := time.Since(start)

	fmt.Fprintf(w, "mnemonics  %d (24 words, seed %d, %d workers, %.1fs)\n", n, seed, workers, elapsed.Seconds())
	fmt.Fprintf(w, "min        %.6f  (mnemonic #%d)\n", s.min, s.minIndex)
	for _, q := range quantiles {
		if float64(n)*q < 1 {
			continue
		}
		fmt.Fprintf(w, "q%-9g %.4f\n", q, s.quantile(q))
	}
	fmt.Fprintf(w, "max        %.6f\n", s.max)
	fmt.Fprintf(w, "threshold  %.2f  (min rounded down to 0.01)\n", threshold(s.min))
	return nil
}

// threshold is the minimum rounded down to two decimals.
func threshold(min float64) float64 { return math.Floor(min*100) / 100 }

// stats is what a run measured.
type stats struct {
	n        int64
	min, max float64
	minIndex int64
	hist     []int64
}

func newStats() *stats {
	return &stats{min: math.Inf(1), max: math.Inf(-1), minIndex: -1, hist: make([]int64, int(maxEntropy/binWidth)+1)}
}

func (s *stats) add(i int64, h float64) {
	s.n++
	if h < s.min || (h == s.min && i < s.minIndex) {
		s.min, s.minIndex = h, i
	}
	s.max = max(s.max, h)
	s.hist[int(h/binWidth)]++
}

func (s *stats) merge(o *stats) {
	s.n += o.n
	if o.min < s.min || (o.min == s.min && o.minIndex < s.minIndex) {
		s.min, s.minIndex = o.min, o.minIndex
	}
	s.max = max(s.max, o.max)
	for i, c := range o.hist {
		s.hist[i] += c
	}
}

// quantile returns the lower edge of the bin holding the q-quantile.
func (s *stats) quantile(q float64) float64 {
	want := int64(math.Ceil(q * float64(s.n)))
	var cum int64
	for i, c := range s.hist {
		cum += c
		if cum >= want {
			return float64(i) * binWidth
		}
	}
	return s.max
}

// sample generates n mnemonics in batches spread over workers.
func sample(n int64, seed uint64, workers int) *stats {
	batches := (n + batchSize - 1) / batchSize
	next := make(chan int64)
	results := make(chan *stats, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newStats()
			var buf [maxMnemonicLen]byte
			for b := range next {
				g := generator(seed, b)
				first := b * batchSize
				for i := first; i < min(first+batchSize, n); i++ {
					m := g.mnemonic(buf[:0])
					s.add(i, entropy(m))
				}
			}
			results <- s
		}()
	}
	for b := int64(0); b < batches; b++ {
		next <- b
	}
	close(next)
	wg.Wait()
	close(results)
	total := newStats()
	for s := range results {
		total.merge(s)
	}
	return total
}

// gen draws BIP39 mnemonics from a ChaCha8 stream.
type gen struct{ r *rand.ChaCha8 }

// generator returns the generator of batch b: ChaCha8 keyed with
// SHA-256(seed || b), both little-endian uint64.
func generator(seed uint64, b int64) gen {
	var in [16]byte
	binary.LittleEndian.PutUint64(in[:8], seed)
	binary.LittleEndian.PutUint64(in[8:], uint64(b))
	return gen{rand.NewChaCha8(sha256.Sum256(in[:]))}
}

// mnemonic appends the next 24-word mnemonic to dst: 32 bytes of entropy
// from the stream, the first byte of their SHA-256 as checksum, 24 11-bit
// word indexes, exactly as BIP39 specifies.
func (g gen) mnemonic(dst []byte) []byte {
	var ent [33]byte
	_, _ = g.r.Read(ent[:32]) // ChaCha8.Read never fails
	sum := sha256.Sum256(ent[:32])
	ent[32] = sum[0]
	list := bip39.WordList
	for i := range words {
		bit := i * 11
		// 11 bits starting at bit; they span at most 3 bytes.
		v := uint32(ent[bit/8])<<16 | uint32(ent[bit/8+1])<<8
		if bit/8+2 < len(ent) {
			v |= uint32(ent[bit/8+2])
		}
		idx := (v >> (24 - 11 - bit%8)) & 0x7FF
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, list[idx]...)
	}
	return dst
}

// xlog2x[c] is c·log2(c), precomputed for every count a mnemonic can have.
var xlog2x = func() (t [maxMnemonicLen + 1]float64) {
	for c := 2; c <= maxMnemonicLen; c++ {
		t[c] = float64(c) * math.Log2(float64(c))
	}
	return t
}()

// entropy is the Shannon entropy (base 2) of the byte distribution of m,
// computed as log2(n) - Σ c·log2(c) / n over the byte counts c — the same
// formula as envelope.Entropy, with table lookups instead of logarithms.
// m must be at most maxMnemonicLen bytes.
func entropy(m []byte) float64 {
	var counts [256]uint8
	for _, c := range m {
		counts[c]++
	}
	// A generated mnemonic holds only lower-case letters and spaces.
	sum := xlog2x[counts[' ']]
	for c := 'a'; c <= 'z'; c++ {
		sum += xlog2x[counts[c]]
	}
	n := len(m)
	return math.Log2(float64(n)) - sum/float64(n)
}
