package attest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/ksb-project/ksb/attest"
)

// crashChildEnv makes the test binary a crash child (see crashChild).
const crashChildEnv = "KSB_ATTEST_CRASH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		os.Exit(crashChild(strings.Fields(spec)))
	}
	os.Exit(m.Run())
}

// crashChild runs in a child process:
//
//	app DIR N    drive an App in DIR through blocks up to N (crashBlock),
//	             printing "C h" before and "D h" after each Commit
//	node HOME    run an embedded validator in HOME, print its RPC URL, and
//	             run until killed or until its stdin closes
func crashChild(args []string) int {
	switch args[0] {
	case "app":
		n, _ := strconv.ParseInt(args[2], 10, 64)
		app, err := attest.NewApp(args[1], nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		out := bufio.NewWriter(os.Stdout)
		err = driveApp(app, n, func(h int64, committing bool) {
			if committing {
				fmt.Fprintf(out, "C %d\n", h)
			} else {
				fmt.Fprintf(out, "D %d\n", h)
			}
			out.Flush()
		}, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	case "node":
		logf, err := os.OpenFile(args[1]+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		e, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{
			Home: args[1], ChainID: testChainID, Genesis: embeddedGenesis(), BlockInterval: testBlockInterval,
			Logger: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println(e.RPCURL())
		// Run until killed, or until the test process is gone (its end of
		// stdin closes), so that no validator outlives a failed test.
		io.Copy(io.Discard, os.Stdin)
	}
	return 0
}

// crashBlock returns block h's transactions (h ≥ 2): Commits of testVault
// by members h%4 and (h+1)%4 (each supersedes the member's previous one;
// a third deletes the oldest), UpdateNodes of nodes 4 + h%5 and
// 4 + (h+2)%5, and a Churn adding eight new nodes (candidates for the
// holders drawn after it), at the sequences their signers reach by then.
// Under testGenesis's windows the chain's own work comes in too: epochs,
// attest timeouts from block 31 on, pruning after the retention.
func crashBlock(h int64) [][]byte {
	if h < 2 {
		return nil
	}
	var txs [][]byte
	add := func(id int, account uint64, seq uint64, msg attest.Msg) {
		tx, err := attest.SignTx(testIDs[id], testChainID, testHRP, account, seq, msg)
		if err != nil {
			panic(err)
		}
		txs = append(txs, tx)
	}
	// count is how many of blocks 2..h-1 include signer j in the role
	// pick(p) gives.
	count := func(j int64, picks ...func(p int64) int64) uint64 {
		n := uint64(0)
		for p := int64(2); p < h; p++ {
			for _, pick := range picks {
				if pick(p) == j {
					n++
				}
			}
		}
		return n
	}
	owner1 := func(p int64) int64 { return p % 4 }
	owner2 := func(p int64) int64 { return (p + 1) % 4 }
	upd1 := func(p int64) int64 { return 4 + p%5 }
	upd2 := func(p int64) int64 { return 4 + (p+2)%5 }
	for _, j := range []int64{owner1(h), owner2(h)} {
		root := sha256.Sum256(fmt.Appendf(nil, "crash share %d/%d", h, j))
		add(int(j), uint64(j)+1, count(j, owner1, owner2), &attest.Commit{Shares: []attest.ShareCommit{{Vault: testVaultIdx, Size: 4096, Root: root}}})
	}
	for _, j := range []int64{upd1(h), upd2(h)} {
		add(int(j), uint64(j)+1, count(j, upd1, upd2), update(int(h)))
	}
	var nodes []attest.NodeSpec
	for i := range 8 {
		seed := sha256.Sum256(fmt.Appendf(nil, "crash node %d/%d", h, i))
		pub := secp256k1.PrivKeyFromBytes(seed[:]).PubKey().SerializeCompressed()
		nodes = append(nodes, attest.NodeSpec{PubKey: hex.EncodeToString(pub), Multiaddrs: []string{fmt.Sprintf("/ip4/10.1.%d.%d/tcp/1", h, i+1)}})
	}
	add(len(testIDs)-1, attest.AuthorityAccount, uint64(h-2), &attest.Churn{AddNodes: nodes})
	return txs
}

// driveApp does what CometBFT's handshake and consensus do with app: from
// its Info height (InitChain first if 0), finalize and commit blocks up to
// n. mark is told before and after each Commit; check, if not nil, gets
// every block's app hash.
func driveApp(app *attest.App, n int64, mark func(h int64, committing bool), check func(h int64, hash []byte) error) error {
	ctx := context.Background()
	info, err := app.Info(ctx, &abci.InfoRequest{})
	if err != nil {
		return err
	}
	if info.LastBlockHeight == 0 {
		gb, _ := json.Marshal(testGenesis())
		if _, err := app.InitChain(ctx, &abci.InitChainRequest{ChainId: testChainID, AppStateBytes: gb}); err != nil {
			return err
		}
	}
	for h := info.LastBlockHeight + 1; h <= n; h++ {
		res, err := app.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: h, Hash: blockHash(h), Txs: crashBlock(h)})
		if err != nil {
			return err
		}
		for i, r := range res.TxResults {
			if r.Code != 0 {
				return fmt.Errorf("block %d tx %d: %s", h, i, r.Log)
			}
		}
		if check != nil {
			if err := check(h, res.AppHash); err != nil {
				return err
			}
		}
		if mark != nil {
			mark(h, true)
		}
		if _, err := app.Commit(ctx, &abci.CommitRequest{}); err != nil {
			return err
		}
		if mark != nil {
			mark(h, false)
		}
	}
	return nil
}

// TestAppKilledDuringCommits kills (SIGKILL) a process running the
// application at random moments around its commits, many times. Each time
// the application reopens at a complete height, the last one committed or
// the one being committed, with that height's app hash from a run without
// crashes, and replaying the remaining blocks as CometBFT does after Info
// gives the same app hash at every height.
func TestAppKilledDuringCommits(t *testing.T) {
	const last = 40
	ref := map[int64][]byte{}
	var commitTime time.Duration
	refApp, err := attest.NewApp(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var began time.Time
	err = driveApp(refApp, last, func(h int64, committing bool) {
		if committing {
			began = time.Now()
		} else {
			commitTime += time.Since(began)
			_, ref[h] = refApp.AppHash()
		}
	}, nil)
	refApp.Close()
	if err != nil {
		t.Fatal(err)
	}
	commitTime /= last

	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var durable int64
	kills := 5
	if testing.Short() {
		kills = 2
	}
	for k := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"=app "+dir+" "+strconv.Itoa(last))
		cmd.Stderr = os.Stderr
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
		var committing int64
		record := func(line string) bool {
			var what string
			var h int64
			fmt.Sscanf(line, "%s %d", &what, &h)
			if what == "D" {
				durable = h
				return false
			}
			committing = h
			return true
		}
		n := 1 + rng.IntN(3)
		delay := time.Duration(rng.Int64N(int64(2 * commitTime)))
		for seen := 0; seen < n; {
			line, ok := <-lines
			if !ok {
				t.Fatal("the child ended before it was killed")
			}
			if record(line) {
				seen++
			}
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		for line := range lines {
			record(line)
		}
		cmd.Wait()

		app, err := attest.NewApp(dir, nil)
		if err != nil {
			t.Fatalf("kill %d: reopening: %v", k+1, err)
		}
		info, _ := app.Info(context.Background(), &abci.InfoRequest{})
		app.Close()
		h := info.LastBlockHeight
		if h < durable || h > committing || !bytes.Equal(info.LastBlockAppHash, ref[h]) {
			t.Fatalf("kill %d: reopened at %d (%X), want %d..%d with the reference hash %X",
				k+1, h, info.LastBlockAppHash, durable, committing, ref[h])
		}
		durable = h
		t.Logf("kill %d: %v after commit %d began → reopened at %d", k+1, delay.Round(10*time.Microsecond), committing, h)
	}

	app, err := attest.NewApp(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	err = driveApp(app, last, nil, func(h int64, hash []byte) error {
		if !bytes.Equal(hash, ref[h]) {
			return fmt.Errorf("replayed block %d: app hash %X, want %X", h, hash, ref[h])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills (a commit takes %v); replay to %d matched every hash", kills, commitTime.Round(10*time.Microsecond), last)
}

// TestEmbeddedKilledRestarts kills a validator process (SIGKILL) while
// transactions are being committed, three times, and restarts it each
// time: CometBFT's handshake finds the application's last complete height
// and replays the rest, the chain goes on, every transaction acknowledged
// before a kill is in the state, and the app hash of the last height is the
// one the next block's header carries.
func TestEmbeddedKilledRestarts(t *testing.T) {
	home := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(home + ".log")
			t.Logf("the killed validators' log, last 16 KiB:\n%s", b[max(0, len(b)-16<<10):])
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// ack is a Commit acknowledged (committed) before a kill.
	type ack struct {
		owner  int
		id     uint64
		root   [32]byte
		height int64
	}
	var acked []ack
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for k := range 3 {
		cycleStart := time.Now()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"=node "+home)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdin, err := cmd.StdinPipe() // the child runs while it is open
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		if !sc.Scan() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: the validator did not start", k+1)
		}
		c, err := attest.NewClient(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		// Two members send Commits, one at a time each, until the kill.
		cctx, ccancel := context.WithCancel(ctx)
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			stop atomic.Bool
			sent atomic.Int64
		)
		for _, j := range []int{1, 2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := attest.NewSender(c, testIDs[j])
				for i := 0; !stop.Load(); i++ {
					sh := fakeShare(fmt.Sprintf("cycle %d node %d share %d", k, j, i))
					// A transaction whose sequence the previous run's
					// last block took (replayed after the restart) is
					// dropped from the mempool at recheck: Send sees the
					// sequence pass it and sends again (sender.go).
					res, err := s.Commit(cctx, sh)
					if err != nil {
						// Killed: stop; anything else is a failure.
						if !stop.Load() && cctx.Err() == nil {
							t.Errorf("cycle %d node %d: %v", k+1, j, err)
						}
						return
					}
					if len(res.Commitments()) != 1 {
						t.Errorf("commit result names %v", res.Commitments())
						return
					}
					sent.Add(1)
					mu.Lock()
					acked = append(acked, ack{owner: j, id: res.Commitments()[0], root: sh.Root, height: res.Height})
					mu.Unlock()
				}
			}()
		}
		target := int64(2 + rng.IntN(6))
		for sent.Load() < target && ctx.Err() == nil && !t.Failed() {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(testBlockInterval))))
		stop.Store(true)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		ccancel()
		wg.Wait()
		t.Logf("cycle %d: killed after %d acknowledged transactions (%v)", k+1, sent.Load(), time.Since(cycleStart).Round(time.Millisecond))
	}

	e := startEmbedded(t, home)
	c, _ := attest.NewClient(e.RPCURL())
	h0, err := c.Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitHeight(t, ctx, c, h0+2)
	// Every acknowledged Commit is in the state of the block that committed
	// it (a kept version), and the newest of each owner is at most its live
	// commitment.
	newest := map[int]uint64{}
	acks := map[int]uint64{}
	for _, a := range acked {
		var cm attest.Commitment
		res, err := e.App().Query(ctx, &abci.QueryRequest{Path: fmt.Sprintf("/commitment/%d", a.id), Height: a.height})
		if err != nil || res.Code != 0 || json.Unmarshal(res.Value, &cm) != nil {
			t.Fatalf("commitment %d acknowledged at %d: %v, code %d %s", a.id, a.height, err, res.Code, res.Log)
		}
		if cm.Owner != addr(a.owner) || cm.Root != hex.EncodeToString(a.root[:]) || cm.CommitHeight != a.height {
			t.Fatalf("commitment %d at %d is %+v, want owner %s root %x", a.id, a.height, cm, addr(a.owner), a.root)
		}
		newest[a.owner] = max(newest[a.owner], a.id)
		acks[a.owner]++
	}
	for j, id := range newest {
		cs, err := c.CommitmentsByOwner(ctx, addr(j))
		if err != nil {
			t.Fatal(err)
		}
		latest := uint64(0)
		for _, cm := range cs {
			if cm.Live {
				latest = cm.ID
			}
		}
		acct, err := c.Account(ctx, addr(j))
		if err != nil {
			t.Fatal(err)
		}
		if latest < id || acct.Sequence < acks[j] {
			t.Fatalf("node %d after the restarts: live commitment %d, sequence %d; acknowledged up to %d, %d transactions", j, latest, acct.Sequence, id, acks[j])
		}
	}
	// The app hash the application reports for its height is the one the
	// next header carries.
	rpc, err := rpchttp.New(e.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	h, hash := e.App().AppHash()
	waitHeight(t, ctx, c, h+1)
	next := h + 1
	blk, err := rpc.Block(ctx, &next)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(blk.Block.AppHash, hash) {
		t.Fatalf("app hash at %d is %X, header %d says %X", h, hash, next, blk.Block.AppHash)
	}
	t.Logf("after 3 kills: %d acknowledged commitments all present, height %d, app hash matches header %d", len(acked), h, next)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (log handlers).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStopWithQueriesInFlight is issue 14.5: stopping the validator (SIGTERM
// of `ksb chain start`) while RPC queries are being answered must not log a
// recovered "panic in RPC HTTP handler … pebble: closed": the RPC server has
// to stop, and its handlers to finish, before the stores close.
func TestStopWithQueriesInFlight(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home: t.TempDir(), ChainID: testChainID, Genesis: testGenesis(), BlockInterval: testBlockInterval, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	c, _ := attest.NewClient(e.RPCURL())
	res, err := attest.NewSender(c, testIDs[1]).Send(ctx, update(1))
	if err != nil {
		t.Fatal(err)
	}

	// Queries that read each store: the transaction index, the block
	// store, the state store and the application's state.
	paths := []string{
		"/tx?hash=0x" + res.Hash,
		fmt.Sprintf("/block?height=%d", res.Height),
		fmt.Sprintf("/block_results?height=%d", res.Height),
		"/validators",
		"/abci_query?path=" + url.QueryEscape(`"/coverage"`),
		"/abci_query?prove=true&path=" + url.QueryEscape(`"/coverage/`+testVault+`"`),
		"/status",
	}
	const clients = 6
	var (
		wg       sync.WaitGroup
		answered atomic.Int64
		stop     = make(chan struct{})
		warm     = make(chan struct{})
		warmOnce sync.Once
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One keep-alive connection per client, as a node's chain
			// client has: its requests keep coming after the listener
			// closes.
			hc := &http.Client{Timeout: 10 * time.Second}
			for n := i; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hc.Get(e.RPCURL() + paths[n%len(paths)])
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if answered.Add(1) == 10*clients {
					warmOnce.Do(func() { close(warm) })
				}
			}
		}()
	}
	select {
	case <-warm:
	case <-ctx.Done():
		t.Fatal("queries never answered")
	}
	if err := e.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	close(stop)
	wg.Wait()
	if l := logs.String(); strings.Contains(strings.ToLower(l), "panic") {
		var lines []string
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(strings.ToLower(line), "panic") && len(lines) < 3 {
				lines = append(lines, line[:min(len(line), 300)])
			}
		}
		t.Fatalf("stopping with %d queries answered logged %d panics, the first:\n%s", answered.Load(),
			strings.Count(strings.ToLower(l), "panic in rpc"), strings.Join(lines, "\n"))
	}
	t.Logf("%d queries answered; stop logged no panic", answered.Load())
}
