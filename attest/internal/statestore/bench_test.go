package statestore_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ics23 "github.com/cosmos/ics23/go"
	badger "github.com/dgraph-io/badger/v4"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

// Benchmark state: keys of 90 bytes shaped like ksb's state keys
// ("s/att/" + 84 characters), values of 100 bytes.
const (
	benchKeyLen   = 90
	benchValueLen = 100
	// benchBlock is the changes of a measured block: half updates of
	// existing keys, half inserts.
	benchBlock = 100
	// benchMaxItems is attest.MaxBlockItems: a block of that many
	// attestation entries writes twice as many keys (the attestation and
	// the owner index).
	benchMaxItems = 4096
	// benchProofKeys is a 40-member vault's coverage: per member about five
	// records (latest-commitment pointer, commitment, three custodies) and
	// the holders' node records.
	benchProofKeys = 200
)

func benchKey(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	h := sha256.Sum256(b[:])
	x := hex.EncodeToString(h[:])
	k := fmt.Appendf(nil, "s/att/%s/%s%019d", x[:40], x[40:], i)
	if len(k) != benchKeyLen {
		panic(len(k))
	}
	return k
}

func benchValue(i, gen uint64) []byte {
	return fmt.Appendf(nil, "%-*s", benchValueLen, fmt.Sprintf(`{"size":%d,"height":%d}`, i, gen))
}

// benchSizes are the state sizes measured: KSB_BENCH_STATE_SIZES (comma
// separated) or 10^3 … 10^6.
func benchSizes() []uint64 {
	s := os.Getenv("KSB_BENCH_STATE_SIZES")
	if s == "" {
		s = "1000,10000,100000,1000000"
	}
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(d []time.Duration) time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t / time.Duration(len(d))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkStateStore measures the state store against the full-state hash
// it replaced, in one run, at each state size (benchSizes):
//
//   - block=100: a block of benchBlock changes (50 updates, 50 inserts):
//     set-ms (the writes into the working tree), apphash-ms (WorkingHash,
//     FinalizeBlock's app hash), commit-ms (Commit: one fsynced batch, and
//     every 10th block the pruning of 10 versions, so the mean includes it),
//     us/change ((set+apphash+commit)/changes) and cpu-ms per block (the
//     process's CPU, Pebble's background work included);
//   - fullhash: the application's app hash before this store, sha256 over
//     every state entry in a Badger transaction with the block's writes
//     (the old stateHash, kept here as the baseline): fullhash-ms, and
//     commit-ms, the Badger transaction's commit (the old app's default
//     options: no fsync);
//   - items=N: a block of N attestation entries (two key inserts each;
//     attest.MaxBlockItems is 4096), written, hashed and committed:
//     total-ms and cpu-ms;
//   - proof=200: a 40-member vault's worth of keys proven and verified:
//     prove-ms, verify-ms, proof-bytes (sum of the ProofOps' data),
//     batch-bytes (ics23.CombineProofs of all 200, compressed).
func BenchmarkStateStore(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) { benchSize(b, n) })
	}
}

func benchSize(b *testing.B, n uint64) {
	start := time.Now()
	// The whole state in version 1, so that pruning the measured blocks'
	// versions costs what it costs in steady state (pruning a version walks
	// what the next version replaced).
	st, err := statestore.Open(statestore.DefaultOptions(b.TempDir()).WithKeepRecent(10).WithPruneInterval(10))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range n {
		if err := st.Set(benchKey(i), benchValue(i, 0)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.Commit(); err != nil {
		b.Fatal(err)
	}
	built := time.Since(start)

	start = time.Now()
	bdb, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithLogger(nil).WithBlockCacheSize(16 << 20))
	if err != nil {
		b.Fatal(err)
	}
	defer bdb.Close()
	wb := bdb.NewWriteBatch()
	for i := range n {
		if err := wb.Set(benchKey(i), benchValue(i, 0)); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d entries: IAVL state built in %v, Badger baseline in %v", n, built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	rng := rand.New(rand.NewPCG(n, 1))
	next := n // the next key to insert
	block := func(gen uint64, size int) [][2][]byte {
		w := make([][2][]byte, 0, size)
		for j := range size {
			i := next
			if j%2 == 0 && size == benchBlock {
				i = rng.Uint64N(next) // an update
			} else {
				next++
			}
			w = append(w, [2][]byte{benchKey(i), benchValue(i, gen)})
		}
		return w
	}

	b.Run("block=100", func(b *testing.B) {
		const blocks = 40
		var set, hash, commit, cpu []time.Duration
		for g := range uint64(blocks) {
			w := block(g+1, benchBlock)
			c0, t0 := cpuTime(), time.Now()
			for _, kv := range w {
				if err := st.Set(kv[0], kv[1]); err != nil {
					b.Fatal(err)
				}
			}
			t1 := time.Now()
			st.WorkingHash()
			t2 := time.Now()
			if _, err := st.Commit(); err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			set, hash, commit = append(set, t1.Sub(t0)), append(hash, t2.Sub(t1)), append(commit, t3.Sub(t2))
			cpu = append(cpu, cpuTime()-c0)
		}
		b.ReportMetric(ms(median(set)), "set-ms")
		b.ReportMetric(ms(median(hash)), "apphash-ms")
		b.ReportMetric(ms(mean(commit)), "commit-ms")
		b.ReportMetric(ms(slices.Max(commit)), "commit-max-ms")
		b.ReportMetric(float64(median(set)+median(hash)+mean(commit))/float64(time.Microsecond)/benchBlock, "us/change")
		b.ReportMetric(ms(mean(cpu)), "cpu-ms")
	})

	b.Run("fullhash", func(b *testing.B) {
		blocks := 10
		if n >= 1_000_000 {
			blocks = 4
		}
		var hash, commit []time.Duration
		for g := range uint64(blocks) {
			txn := bdb.NewTransaction(true)
			for _, kv := range block(1000+g, benchBlock) {
				if err := txn.Set(kv[0], kv[1]); err != nil {
					b.Fatal(err)
				}
			}
			t0 := time.Now()
			if _, err := fullStateHash(txn); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := txn.Commit(); err != nil {
				b.Fatal(err)
			}
			hash, commit = append(hash, t1.Sub(t0)), append(commit, time.Since(t1))
		}
		b.ReportMetric(ms(median(hash)), "fullhash-ms")
		b.ReportMetric(ms(median(commit)), "commit-ms")
	})

	for _, items := range []int{1024, 2048, benchMaxItems} {
		b.Run(fmt.Sprintf("items=%d", items), func(b *testing.B) {
			var total, cpu []time.Duration
			for g := range uint64(3) {
				w := block(2000+g, 2*items)
				c0, t0 := cpuTime(), time.Now()
				for _, kv := range w {
					if err := st.Set(kv[0], kv[1]); err != nil {
						b.Fatal(err)
					}
				}
				st.WorkingHash()
				if _, err := st.Commit(); err != nil {
					b.Fatal(err)
				}
				total, cpu = append(total, time.Since(t0)), append(cpu, cpuTime()-c0)
			}
			b.ReportMetric(ms(median(total)), "total-ms")
			b.ReportMetric(ms(median(cpu)), "cpu-ms")
		})
	}

	b.Run("proof=200", func(b *testing.B) {
		snap := st.Latest()
		root := snap.Hash()
		keys := make([][]byte, benchProofKeys)
		for i := range keys {
			keys[i] = benchKey(rng.Uint64N(n))
		}
		var prove, verify []time.Duration
		var bytes, batch int
		for range 5 {
			t0 := time.Now()
			ops := make([]cmtcrypto.ProofOp, len(keys))
			vals := make([][]byte, len(keys))
			proofs := make([]*ics23.CommitmentProof, len(keys))
			for i, k := range keys {
				v, p, err := snap.Prove(k)
				if err != nil || v == nil {
					b.Fatalf("proving %s: %v", k, err)
				}
				if ops[i], err = statestore.NewProofOp(k, p); err != nil {
					b.Fatal(err)
				}
				vals[i], proofs[i] = v, p
			}
			t1 := time.Now()
			for i, k := range keys {
				if err := statestore.VerifyProofOp(ops[i], root, k, vals[i]); err != nil {
					b.Fatal(err)
				}
			}
			prove, verify = append(prove, t1.Sub(t0)), append(verify, time.Since(t1))
			bytes = 0
			for _, op := range ops {
				bytes += len(op.Data)
			}
			combined, err := ics23.CombineProofs(proofs)
			if err != nil {
				b.Fatal(err)
			}
			bz, _ := combined.Marshal()
			batch = len(bz)
		}
		b.ReportMetric(ms(median(prove)), "prove-ms")
		b.ReportMetric(ms(median(verify)), "verify-ms")
		b.ReportMetric(float64(bytes), "proof-bytes")
		b.ReportMetric(float64(bytes)/benchProofKeys, "bytes/key")
		b.ReportMetric(float64(batch), "batch-bytes")
	})
}

// fullStateHash is the application's app hash before the IAVL store
// (attest/state.go until this package replaced it), kept as the benchmark
// baseline: sha256 over every state entry the transaction sees, its own
// pending writes included.
func fullStateHash(txn *badger.Txn) ([]byte, error) {
	h := sha256.New()
	h.Write([]byte("ksb/attest/state/v1\x00"))
	var lenBuf [binary.MaxVarintLen64]byte
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte("s/")
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(k)))])
		h.Write(k)
		err := item.Value(func(v []byte) error {
			h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(v)))])
			h.Write(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return h.Sum(nil), nil
}
