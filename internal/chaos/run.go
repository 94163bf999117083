package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ksb-project/ksb/attest"
)

// Schedule bounds, drawn per cycle from the seed.
const (
	// minBefore..maxBefore is how long the owners push before the fault:
	// the fault lands at a random point of a busy holder. At least a second,
	// so that a holder just restarted has been dialled and has acknowledged
	// pushes (a holder that acknowledges none fails the run).
	minBefore = time.Second
	maxBefore = 3 * time.Second
	// minAfter..maxAfter is how long the owners push to a holder restarted
	// with the chain down, before it is killed again.
	minAfter = time.Second
	maxAfter = 3 * time.Second
	// maxRestartDelay is the longest pause between a kill and the restart.
	maxRestartDelay = 500 * time.Millisecond
	// minChainDown..maxChainDown is how long the chain is down before the
	// holder is killed and restarted without it.
	minChainDown = 200 * time.Millisecond
	maxChainDown = 1500 * time.Millisecond
)

// faultWeights are the default odds of each fault: kills are cheap and the
// main point; a stop costs StopFor; a chain outage is in between.
var faultWeights = []struct {
	f Fault
	w int
}{{Kill, 6}, {Stop, 1}, {ChainDown, 2}}

// plan is one cycle's schedule, drawn all at once so that the seed alone
// fixes it, whatever happens during the cycle.
type plan struct {
	fault        Fault
	before       time.Duration
	after        time.Duration
	restartDelay time.Duration
	killStopped  bool           // Stop: SIGKILL the frozen holder instead of SIGCONT
	chainSig     syscall.Signal // ChainDown: how the validator is stopped
	chainDown    time.Duration  // ChainDown: outage before the holder is killed
}

func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}

func draw(r *rand.Rand, fixed *Fault) plan {
	p := plan{fault: Kill}
	total := 0
	for _, fw := range faultWeights {
		total += fw.w
	}
	x := r.IntN(total)
	for _, fw := range faultWeights {
		if x < fw.w {
			p.fault = fw.f
			break
		}
		x -= fw.w
	}
	if fixed != nil {
		p.fault = *fixed
	}
	p.before = between(r, minBefore, maxBefore)
	p.after = between(r, minAfter, maxAfter)
	p.restartDelay = between(r, 0, maxRestartDelay)
	p.killStopped = r.IntN(3) == 0
	p.chainSig = syscall.SIGTERM
	if r.IntN(3) == 0 {
		p.chainSig = syscall.SIGKILL
	}
	p.chainDown = between(r, minChainDown, maxChainDown)
	return p
}

// runner is one run in progress.
type runner struct {
	cfg     Config
	res     *Result
	net     *network
	owners  []*owner
	pushers []*pusher
	counts  pushCounts
}

// Run lays out a network in cfg.Dir, runs the cycles and returns what it
// found; the run is clean when Result.OK. The processes are stopped before
// Run returns; their logs stay in cfg.Dir. An error means the run could not
// be set up (a bad Config, no free ports, no directory), not a fault of the
// build under test: those are Result.Problems.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	for cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	start := time.Now()
	res := &Result{Seed: cfg.Seed, Faults: map[Fault]int{}}
	defer func() { res.Elapsed = time.Since(start) }()
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }
	logf("chaos: seed %d (rerun: -seed %d); up to %d cycles or %v; %d owners x %d pushers, %d vaults; %s",
		cfg.Seed, cfg.Seed, cfg.Cycles, cfg.Duration, cfg.Owners, cfg.Pushers, cfg.Vaults, cfg.KSB)

	if err := mkdirEmpty(cfg.Dir); err != nil {
		return nil, err
	}
	n, err := layOut(filepath.Join(cfg.Dir, "net"), cfg.Owners)
	if err != nil {
		return nil, err
	}
	n.procs(cfg.KSB, cfg.Dir)
	r := &runner{cfg: cfg, res: res, net: n}
	defer func() {
		for _, o := range r.owners {
			o.h.Close()
		}
	}()
	setup := func() error {
		if err := n.startChain(ctx); err != nil {
			return err
		}
		var addrs []string
		for _, nd := range n.layout.Nodes[1:] {
			addrs = append(addrs, nd.Address)
		}
		if err := n.createVaults(ctx, addrs, cfg.Vaults); err != nil {
			return err
		}
		if err := n.startHolder(ctx); err != nil {
			return err
		}
		holder, err := peer.Decode(n.layout.Nodes[0].PeerID)
		if err != nil {
			return err
		}
		c, err := attest.NewClient(n.layout.Chains[0].RPC)
		if err != nil {
			return err
		}
		index, err := n.vaultIndex(ctx, c)
		if err != nil {
			return err
		}
		sched := rand.New(rand.NewPCG(cfg.Seed, 1))
		for i, nd := range n.layout.Nodes[1:] {
			o, err := startOwner(i+1, nd.Dir, holder, n.p2p, n.vaults, c, index, cfg.Owners)
			if err != nil {
				return err
			}
			r.owners = append(r.owners, o)
			for p := range cfg.Pushers {
				w := &pusher{o: o, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(1000*(i+1)+p)))}
				for v, s := range o.slots {
					if v%cfg.Pushers == p {
						w.slots = append(w.slots, s)
					}
				}
				// Pushers start at different slots, so the vaults see
				// concurrent pushes from several owners.
				w.next = sched.IntN(len(w.slots))
				r.pushers = append(r.pushers, w)
			}
		}
		return nil
	}
	if err := setup(); err != nil {
		n.shutdown()
		res.Problems = append(res.Problems, Problem{What: "setting up: " + firstLine(err.Error()), Detail: rest(err.Error())})
		return res, nil
	}
	logf("chaos: testnet in %s up after %v: validator %s, holder %s (admin %s)",
		cfg.Dir, time.Since(start).Round(time.Millisecond), n.layout.Chains[0].RPC, n.layout.Nodes[0].Address, n.admin)

	sched := rand.New(rand.NewPCG(cfg.Seed, 2))
	for c := 1; c <= cfg.Cycles && ctx.Err() == nil; c++ {
		if time.Since(start) > cfg.Duration {
			logf("chaos: time bound %v reached after %d cycles", cfg.Duration, c-1)
			break
		}
		var fixed *Fault
		if len(cfg.Schedule) > 0 {
			fixed = &cfg.Schedule[c-1]
		}
		p := draw(sched, fixed)
		problems := r.cycle(ctx, c, p)
		res.Cycles = c
		res.Faults[p.fault]++
		if len(problems) > 0 {
			res.Problems = append(res.Problems, problems...)
			break // keep the state of the first failure for inspection
		}
	}

	// A clean stop of both processes is part of the check, and so are the
	// logs it writes.
	for _, p := range []*proc{n.holder, n.chain} {
		if err := p.terminate(); err != nil {
			res.Problems = append(res.Problems, Problem{Cycle: res.Cycles + 1, What: "stopping at the end: " + err.Error(), Detail: p.logTail(2000)})
		}
	}
	if panics := n.panics(); len(panics) > 0 {
		res.Problems = append(res.Problems, Problem{Cycle: res.Cycles + 1, What: "panic in a log at shutdown", Detail: indent(strings.Join(panics, "\n"))})
	}
	res.Receipts = int(r.counts.receipts.Load())
	res.Failed = int(r.counts.failed.Load())
	logf("chaos: pushes without a receipt: %s", r.counts.summary())
	return res, nil
}

// cycle runs one cycle of plan p and returns what went wrong. The owners
// push while the fault hits the holder; once it is back the pushes stop and
// the check runs at once, so every blob checked was receipted before the
// last fault (a holder that acknowledged blobs it had not written loses them
// here). The holder's taking pushes again after a restart is checked by the
// next cycle's pushes, and by the pushes with the chain down.
func (r *runner) cycle(ctx context.Context, c int, p plan) (problems []Problem) {
	n := r.net
	fail := func(what string, detail string) {
		problems = append(problems, Problem{Cycle: c, What: what, Detail: detail})
	}
	receipts0, failed0 := r.counts.receipts.Load(), r.counts.failed.Load()
	pctx, stopPushes := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range r.pushers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(pctx, &r.counts) }()
	}
	stopAll := func() { stopPushes(); wg.Wait() }
	defer stopAll()

	sleep(ctx, p.before)
	if r.counts.receipts.Load() == receipts0 {
		fail(fmt.Sprintf("the holder acknowledged no push in %v (since it last came back)", p.before.Round(time.Millisecond)), n.holder.logTail(3000))
		return problems
	}
	// restart starts the holder again after a kill and waits until it is
	// healthy; then the owners reconnect.
	restart := func() bool {
		if !n.holder.running() {
			sleep(ctx, p.restartDelay)
			if err := n.holder.start(); err != nil {
				fail(err.Error(), "")
				return false
			}
		}
		if err := n.waitHolder(ctx); err != nil {
			fail("the holder did not come back: "+firstLine(err.Error()), rest(err.Error()))
			return false
		}
		for _, o := range r.owners {
			o.holderBack()
		}
		return true
	}
	var what string
	down := time.Now()
	switch p.fault {
	case Kill:
		what = "SIGKILL"
		if err := n.holder.kill(); err != nil {
			fail(err.Error(), "")
			return problems
		}
	case Stop:
		if err := n.holder.signal(syscall.SIGSTOP); err != nil {
			fail(err.Error(), "")
			return problems
		}
		sleep(ctx, r.cfg.StopFor)
		if p.killStopped {
			what = fmt.Sprintf("SIGSTOP %v, SIGKILL", r.cfg.StopFor)
			if err := n.holder.kill(); err != nil {
				fail(err.Error(), "")
				return problems
			}
		} else {
			what = fmt.Sprintf("SIGSTOP %v, SIGCONT", r.cfg.StopFor)
			if err := n.holder.signal(syscall.SIGCONT); err != nil {
				fail(err.Error(), "")
				return problems
			}
		}
	case ChainDown:
		if err := n.stopChain(p.chainSig); err != nil {
			fail("the validator: "+err.Error(), n.chain.logTail(3000))
			return problems
		}
		sleep(ctx, p.chainDown)
		if err := n.holder.kill(); err != nil {
			fail(err.Error(), "")
			return problems
		}
		// The holder runs from its saved chain view and keeps what it takes
		// over the next kill.
		before := r.counts.receipts.Load()
		if !restart() {
			return problems
		}
		sleep(ctx, p.after)
		downReceipts := r.counts.receipts.Load() - before
		// Zero receipts here is not a fault of the holder: with the chain
		// down the owners cannot commit, and once refused for custodies the
		// saved view cannot check they wait for the chain, so nothing may
		// reach the holder in the window (the line shows 0 receipts). What
		// is checked is that it came back (restart) and that every earlier
		// receipt survives the next kill.
		what = fmt.Sprintf("chain %v; %v later holder SIGKILL, restart without chain, %d receipts, SIGKILL",
			p.chainSig, p.chainDown.Round(time.Millisecond), downReceipts)
		down = time.Now()
		if err := n.holder.kill(); err != nil {
			fail(err.Error(), "")
			return problems
		}
	}
	if !restart() {
		return problems
	}
	backAt := time.Now()
	stopAll()
	receipts := r.counts.receipts.Load()

	verified, rechecks := 0, 0
	for _, o := range r.owners {
		v, ps, again := o.check(ctx, down, backAt)
		verified += v
		if again {
			rechecks++
		}
		for _, p := range ps {
			fail(p, "")
		}
	}
	r.res.Verified += verified
	r.res.Rechecks += rechecks
	if p.fault == ChainDown {
		if err := n.startChain(ctx); err != nil {
			fail("the validator did not come back: "+firstLine(err.Error()), rest(err.Error()))
		}
	}
	if panics := n.panics(); len(panics) > 0 {
		fail("panic in a log", indent(strings.Join(panics, "\n")))
	}
	status := "ok"
	if rechecks > 0 {
		status = fmt.Sprintf("ok (%d owners' first fetch disagreed, the second agreed)", rechecks)
	}
	if len(problems) > 0 {
		status = fmt.Sprintf("FAILED (%d problems)", len(problems))
	}
	fmt.Fprintf(r.cfg.Log, "cycle %d/%d %-10s at %5.2fs: %s; holder back in %v; %d receipts, %d pushes without; %d blobs checked: %s\n",
		c, r.cfg.Cycles, p.fault, p.before.Seconds(), what, backAt.Sub(down).Round(time.Millisecond),
		receipts-receipts0, r.counts.failed.Load()-failed0, verified, status)
	return problems
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func rest(s string) string {
	_, r, _ := strings.Cut(s, "\n")
	return r
}
