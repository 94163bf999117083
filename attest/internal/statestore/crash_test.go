package statestore_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corestore "cosmossdk.io/core/store"
	idb "github.com/cosmos/iavl/db"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

// childEnv makes the test binary a crash child: "mode dir arg".
const childEnv = "STATESTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(crashChild(strings.Fields(spec)))
	}
	os.Exit(m.Run())
}

// Crash-test blocks: version v sets blockSets keys of a pool of keyPool
// (values of ~100 bytes) and deletes blockDeletes, all derived from v.
const (
	blockSets    = 200
	blockDeletes = 10
	keyPool      = 5000
)

func crashKey(i uint64) []byte {
	h := sha256.Sum256([]byte(strconv.FormatUint(i, 10)))
	return fmt.Appendf(nil, "s/att/%x", h[:20])
}

func applyBlock(t testing.TB, s *statestore.Store, v int64) {
	rng := rand.New(rand.NewPCG(uint64(v), 7))
	for i := range blockSets {
		val := fmt.Appendf(nil, "%-100s", fmt.Sprintf("version %d change %d", v, i))
		if err := s.Set(crashKey(rng.Uint64N(keyPool)), val); err != nil {
			fail(t, err)
		}
	}
	for range blockDeletes {
		if err := s.Delete(crashKey(rng.Uint64N(keyPool))); err != nil {
			fail(t, err)
		}
	}
}

func fail(t testing.TB, err error) {
	if t == nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	t.Helper()
	t.Fatal(err)
}

// crashOpts are the options of every store in the crash tests: pruning
// every 5 versions, so kills also land in prunings.
func crashOpts(dir string) statestore.Options {
	return statestore.DefaultOptions(dir).WithKeepRecent(20).WithPruneInterval(5)
}

// referenceHashes returns the hash of versions 1..n of the crash-test
// blocks, committed without crashes, and the mean duration of a Commit.
func referenceHashes(t *testing.T, n int64) ([][]byte, time.Duration) {
	s := open(t, crashOpts(t.TempDir()))
	hashes := make([][]byte, n+1)
	var took time.Duration
	for v := int64(1); v <= n; v++ {
		applyBlock(t, s, v)
		start := time.Now()
		hashes[v] = mustCommit(t, s).Hash()
		took += time.Since(start)
	}
	return hashes, took / time.Duration(n)
}

// crashChild runs in the child process. Modes:
//
//	run DIR N        commit blocks up to version N, printing "C v" before
//	                 and "D v" after each Commit (the parent kills it)
//	die DIR K        commit the next block with a 4 KiB flush threshold
//	                 (many batches per version), exiting at batch write K
func crashChild(args []string) int {
	dir, arg := args[1], args[2]
	n, _ := strconv.ParseInt(arg, 10, 64)
	opts := crashOpts(dir)
	writes := 0
	if args[0] == "die" {
		opts = statestore.WithFlushThreshold(opts, 4096)
		opts = statestore.WithDBWrapper(opts, func(db idb.DB) idb.DB { return &countingDB{DB: db, writes: &writes} })
	}
	s, err := statestore.Open(opts)
	if err != nil {
		fail(nil, err)
	}
	v := s.Latest().Version() + 1
	switch args[0] {
	case "run":
		out := bufio.NewWriter(os.Stdout)
		for ; v <= n; v++ {
			applyBlock(nil, s, v)
			fmt.Fprintf(out, "C %d\n", v)
			out.Flush()
			if _, err := s.Commit(); err != nil {
				fail(nil, err)
			}
			fmt.Fprintf(out, "D %d\n", v)
			out.Flush()
		}
	case "die":
		applyBlock(nil, s, v)
		writes, dieAt = 0, int(n)
		if _, err := s.Commit(); err != nil {
			fail(nil, err)
		}
		fmt.Printf("%d\n", writes)
		return 4 // committed without reaching write K
	}
	return 0
}

// dieAt > 0 ends the process at that batch write.
var dieAt int

// countingDB counts batch writes, and exits at write dieAt.
type countingDB struct {
	idb.DB
	writes *int
}

func (c *countingDB) NewBatch() corestore.Batch { return &countingBatch{c.DB.NewBatch(), c} }
func (c *countingDB) NewBatchWithSize(n int) corestore.Batch {
	return &countingBatch{c.DB.NewBatchWithSize(n), c}
}

type countingBatch struct {
	corestore.Batch
	c *countingDB
}

func (b *countingBatch) count() {
	*b.c.writes++
	if dieAt > 0 && *b.c.writes >= dieAt {
		os.Exit(3)
	}
}

func (b *countingBatch) Write() error     { b.count(); return b.Batch.Write() }
func (b *countingBatch) WriteSync() error { b.count(); return b.Batch.WriteSync() }

func child(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	return cmd
}

// checkAt opens the store in dir and checks that it is at a version
// between lo and hi whose hash is the reference, with a proof that
// verifies; it returns the version.
func checkAt(t *testing.T, dir string, ref [][]byte, lo, hi int64, opts ...func(statestore.Options) statestore.Options) int64 {
	t.Helper()
	o := crashOpts(dir)
	for _, f := range opts {
		o = f(o)
	}
	s, err := statestore.Open(o)
	if err != nil {
		t.Fatalf("reopening after the crash: %v", err)
	}
	defer s.Close()
	l := s.Latest()
	v := l.Version()
	if v < lo || v > hi {
		t.Fatalf("reopened at version %d, want %d..%d", v, lo, hi)
	}
	if v > 0 && !bytes.Equal(l.Hash(), ref[v]) {
		t.Fatalf("version %d has hash %X, want %X", v, l.Hash(), ref[v])
	}
	if v > 0 {
		k := crashKey(uint64(v) % keyPool)
		val, proof, err := l.Prove(k)
		if err != nil {
			t.Fatal(err)
		}
		ok := val == nil && ics23.VerifyNonMembership(statestore.ProofSpec, ref[v], proof, k) ||
			val != nil && ics23.VerifyMembership(statestore.ProofSpec, ref[v], proof, k, val)
		if !ok {
			t.Fatalf("version %d: proof of %s does not verify", v, k)
		}
	}
	return v
}

// TestKillDuringCommits kills (SIGKILL) a process committing blocks at
// random moments around its commits, many times; each time the store
// reopens at a complete version — the last one Commit returned, or the
// one it was writing — whose hash is the crash-free run's, and committing
// the remaining blocks again (as CometBFT replays them) reaches the same
// hashes.
func TestKillDuringCommits(t *testing.T) {
	const last = 60
	// A kill lands up to twice a commit's duration (as measured by the
	// reference run, so the race detector's slowdown is included) after
	// the commit begins: inside it, or just after it.
	ref, commitTime := referenceHashes(t, last)
	dir := t.TempDir()
	kills := 6
	if testing.Short() {
		kills = 3
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var durable int64 // the last version a Commit returned for
	atNew, atOld := 0, 0
	for k := range kills {
		cmd := child(t, "run", dir, strconv.Itoa(last))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		var committing int64 // the last version whose Commit began
		record := func(line string) (began bool) {
			var what string
			var v int64
			fmt.Sscanf(line, "%s %d", &what, &v)
			if what == "D" {
				durable = v
				return false
			}
			committing = v
			return true
		}
		// Kill during the n-th commit of this run.
		n := 1 + rng.IntN(3)
		delay := time.Duration(rng.Int64N(int64(2 * commitTime)))
		for began := 0; began < n; {
			line, ok := <-lines
			if !ok {
				t.Fatal("the child ended before it was killed")
			}
			if record(line) {
				began++
			}
		}
		killedIn := committing
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		for line := range lines { // what it reported before it died
			record(line)
		}
		cmd.Wait()
		v := checkAt(t, dir, ref, durable, committing)
		if v == committing {
			atNew++
		} else {
			atOld++
		}
		durable = v
		t.Logf("kill %d: %v after commit %d began; last commit begun %d → reopened at %d", k+1, delay.Round(10*time.Microsecond), killedIn, committing, v)
	}
	t.Logf("%d kills (a commit takes %v): %d reopened at the version being committed, %d at the one before",
		kills, commitTime.Round(10*time.Microsecond), atNew, atOld)

	s := open(t, crashOpts(dir))
	for v := s.Latest().Version() + 1; v <= last; v++ {
		applyBlock(t, s, v)
		if got := mustCommit(t, s).Hash(); !bytes.Equal(got, ref[v]) {
			t.Fatalf("replayed version %d: hash %X, want %X", v, got, ref[v])
		}
	}
}

// TestOneBatchPerVersion: with the package's options a version is one
// batch write (atomic), however large; with IAVL's default threshold it is
// many, which TestIncompleteVersionDropped shows is not crash-safe.
func TestOneBatchPerVersion(t *testing.T) {
	writes := 0
	wrap := func(db idb.DB) idb.DB { return &countingDB{DB: db, writes: &writes} }
	s := open(t, statestore.WithDBWrapper(statestore.DefaultOptions(t.TempDir()), wrap))
	for v := int64(1); v <= 3; v++ {
		applyBlock(t, s, v)
		writes = 0
		mustCommit(t, s)
		if writes != 1 {
			t.Fatalf("version %d written in %d batches, want 1", v, writes)
		}
	}
}

// TestIncompleteVersionDropped makes a store that writes a version in many
// batches (4 KiB flush threshold) die at several of those writes. Open
// finds the incomplete version, drops it and loads the one before, and
// re-committing the block gives the crash-free hash.
func TestIncompleteVersionDropped(t *testing.T) {
	ref, _ := referenceHashes(t, 3)
	base := func() string {
		dir := t.TempDir()
		s, err := statestore.Open(crashOpts(dir))
		if err != nil {
			t.Fatal(err)
		}
		for v := int64(1); v <= 2; v++ {
			applyBlock(t, s, v)
			mustCommit(t, s)
		}
		s.Close()
		return dir
	}
	// How many batches does version 3 take with the small threshold?
	cmd := child(t, "die", base(), "0")
	outb, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("counting run: %v", err)
	}
	total, _ := strconv.Atoi(strings.TrimSpace(string(outb)))
	if total < 10 {
		t.Fatalf("version 3 took %d batches with a 4 KiB threshold; the test needs many", total)
	}
	// Which batch first leaves a version IAVL sees is not fixed (it varies
	// from run to run among the last batches), so the child dies at the
	// first batches, a quarter in, and at each batch of the second half, in
	// up to three rounds, until one has left an incomplete version.
	points := []int{1, 2, total / 4}
	for at := total / 2; at <= total; at++ {
		points = append(points, at)
	}
	dropped := 0
	for round := 0; round < 3 && dropped == 0; round++ {
		for _, at := range points {
			dir := base()
			err := child(t, "die", dir, strconv.Itoa(at)).Run()
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("die at write %d of %d: %v", at, total, err)
			}
			var logs bytes.Buffer
			withLog := func(o statestore.Options) statestore.Options {
				return o.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))
			}
			v := checkAt(t, dir, ref, 2, 2, withLog)
			if strings.Contains(logs.String(), "incomplete") {
				dropped++
			}
			s := open(t, crashOpts(dir))
			applyBlock(t, s, 3)
			if got := mustCommit(t, s).Hash(); !bytes.Equal(got, ref[3]) {
				t.Fatalf("died at write %d: re-committed version 3 has hash %X, want %X", at, got, ref[3])
			}
			s.Close()
			t.Logf("died at batch write %d of %d: reopened at %d", at, total, v)
		}
	}
	// Without the fallback none of the later crash points would open.
	if dropped == 0 {
		t.Fatal("no crash point left an incomplete version: the fallback was not exercised")
	}
	t.Logf("%d crash points left an incomplete version, dropped at Open", dropped)

	// The incomplete version is the first: the store opens empty. The
	// child dies at each of the second half of version 1's batches, in up
	// to three rounds, until one has left an incomplete version; every one
	// must open empty and commit version 1 again to the crash-free hash.
	out1, err := child(t, "die", t.TempDir(), "0").Output()
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("counting run of version 1: %v", err)
	}
	total1, _ := strconv.Atoi(strings.TrimSpace(string(out1)))
	first := 0
	for round := 0; round < 3 && first == 0; round++ {
		for at := max(1, total1/2); at <= total1; at++ {
			dir := t.TempDir()
			if err := child(t, "die", dir, strconv.Itoa(at)).Run(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("die at write %d of version 1: %v", at, err)
			}
			var logs bytes.Buffer
			checkAt(t, dir, ref, 0, 0, func(o statestore.Options) statestore.Options {
				return o.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))
			})
			if strings.Contains(logs.String(), "incomplete") {
				first++
			}
			s := open(t, crashOpts(dir))
			applyBlock(t, s, 1)
			if got := mustCommit(t, s).Hash(); !bytes.Equal(got, ref[1]) {
				t.Fatalf("died at write %d of version 1: re-committed version 1 has hash %X, want %X", at, got, ref[1])
			}
			s.Close()
		}
	}
	if first == 0 {
		t.Fatal("no crash in version 1 left an incomplete version: dropping the only version was not exercised")
	}
	t.Logf("version 1 (%d batches): %d crash points left an incomplete first version, dropped at Open", total1, first)
}
