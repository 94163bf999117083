package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/devnet"
	"github.com/ksb-project/ksb/envelope"
)

// ChainID is the simulated chain's ID.
const ChainID = "ksb-sim"

// Transport is what the simulated nodes listen on.
type Transport string

// The transports.
const (
	TransportTCP  Transport = "tcp"
	TransportQUIC Transport = "quic"
	// TransportBoth is what a node's default configuration listens on;
	// libp2p dials QUIC first when a peer has both.
	TransportBoth Transport = "tcp+quic"
)

// Defaults of Config.
const (
	// DefaultMaxVaultMembers is THORChain's largest asgard vault.
	DefaultMaxVaultMembers = 40

	// DefaultWorkFactor is the age scrypt work factor the nodes seal with:
	// 2^10 instead of the production 2^18, so that sealing 2N shares on two
	// cores takes milliseconds, not minutes. Every other step is the real
	// one; the scrypt cost is measured apart (docs/performance.md).
	DefaultWorkFactor = 10

	// DefaultChurnFraction is the part of the nodes a churn removes.
	DefaultChurnFraction = 0.1

	// DefaultPhaseTimeout bounds each waiting phase: a 200-node network on
	// a loaded two-core machine covers itself in minutes, so ten minutes
	// means something is stuck.
	DefaultPhaseTimeout = 10 * time.Minute

	// DefaultMeshTimeout bounds the wait for a join wave's mesh (every node
	// started so far has talked with every other); a network that does not
	// get there is still measured.
	DefaultMeshTimeout = 2 * time.Minute

	// DefaultJoinWave is how many nodes join at once: a network of 200
	// forms in eight waves.
	DefaultJoinWave = 25

	// DefaultEpochBlocks is the custody epoch of the simulated chain's
	// genesis: 30 blocks instead of the production 259,200 (three days of
	// 1 s blocks), so that a proof epoch starts, is answered and closes
	// within a run. Every custody is challenged every epoch (round_epochs
	// 1), the most proof work the chain can be asked for.
	DefaultEpochBlocks = 30

	// coveragePoll is how often the chain's coverage is read while waiting:
	// the figures it times are seconds to minutes long, and each read costs
	// the chain a scan of its whole state.
	coveragePoll = time.Second

	// meshPoll is how often the nodes' peer counts are read while waiting
	// for the mesh.
	meshPoll = 200 * time.Millisecond

	// sendRetryPause is the pause between two tries of one authority
	// transaction; the tries go on until Config.PhaseTimeout.
	sendRetryPause = 2 * time.Second

	// startConcurrency is how many nodes start at once.
	startConcurrency = 8

	// chainCallTimeout bounds one query or transaction of the simulation's
	// own (the authority's churns, coverage reads).
	chainCallTimeout = attest.MaxCommitWait + 10*time.Second
)

// Config configures one simulated network. Zero values take the defaults
// shown; intervals default to a node's and the chain's production defaults.
type Config struct {
	// Nodes is N, at least Replication+2 (a removed node must leave r
	// candidates for every owner).
	Nodes int
	// MaxVaultMembers caps a keygen: the nodes are split into
	// ⌈N/MaxVaultMembers⌉ vaults (40).
	MaxVaultMembers int
	// Replication is r (3).
	Replication int
	// WorkFactor is the age scrypt work factor (DefaultWorkFactor, 10).
	WorkFactor int
	// Transport is what nodes listen on (TransportBoth, as a default
	// node configuration).
	Transport Transport
	// BlockInterval is the chain's block time (attest.DefaultBlockInterval,
	// 1 s).
	BlockInterval time.Duration
	// PollInterval, BatchInterval and HeartbeatInterval are the nodes'
	// (config.Default: 5 s, 2 s, 30 s).
	PollInterval, BatchInterval, HeartbeatInterval time.Duration
	// ChurnFraction is the part of the nodes the churn removes, at least
	// one node (0.1).
	ChurnFraction float64
	// PhaseTimeout bounds each waiting phase (DefaultPhaseTimeout);
	// MeshTimeout the wait for each join wave's mesh
	// (DefaultMeshTimeout).
	PhaseTimeout, MeshTimeout time.Duration
	// JoinWave is how many nodes start and join the network at once
	// (DefaultJoinWave).
	JoinWave int
	// EpochBlocks is the chain's custody epoch in blocks
	// (DefaultEpochBlocks); ProofWindow the blocks a challenge may be
	// answered in (EpochBlocks/2). The nodes' PollInterval must leave
	// room for a poll and a block inside the proof window.
	EpochBlocks, ProofWindow int64
	// MaxRSS stops the run, as failed, when the process's resident memory
	// passes it (bytes; 0: no limit). It also becomes the Go runtime's soft
	// memory limit for the run.
	MaxRSS uint64
	// Dir holds the chain and node homes; "" means a new temporary
	// directory, removed at the end.
	Dir string
	// Seed picks the synthesized vaults and the removed nodes; the same
	// seed gives the same shares and the same churn (1).
	Seed uint64
	// Logger receives the chain's and nodes' logs; nil discards them.
	Logger *slog.Logger
	// Progress receives one line per phase; nil discards them.
	Progress io.Writer
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	nd := config.Default()
	if c.MaxVaultMembers == 0 {
		c.MaxVaultMembers = DefaultMaxVaultMembers
	}
	if c.Replication == 0 {
		c.Replication = nd.Backup.Replication
	}
	if c.WorkFactor == 0 {
		c.WorkFactor = DefaultWorkFactor
	}
	if c.Transport == "" {
		c.Transport = TransportBoth
	}
	def(&c.BlockInterval, attest.DefaultBlockInterval)
	def(&c.PollInterval, nd.Chain.PollInterval.Duration)
	def(&c.BatchInterval, nd.Chain.BatchInterval.Duration)
	def(&c.HeartbeatInterval, nd.P2P.HeartbeatInterval.Duration)
	def(&c.PhaseTimeout, DefaultPhaseTimeout)
	def(&c.MeshTimeout, DefaultMeshTimeout)
	if c.JoinWave == 0 {
		c.JoinWave = DefaultJoinWave
	}
	if c.EpochBlocks == 0 {
		c.EpochBlocks = DefaultEpochBlocks
	}
	if c.ProofWindow == 0 {
		c.ProofWindow = max(1, c.EpochBlocks/2)
	}
	if c.ChurnFraction == 0 {
		c.ChurnFraction = DefaultChurnFraction
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Replication < 1 || c.Replication > attest.MaxReplication:
		return fmt.Errorf("replication %d: want 1..%d", c.Replication, attest.MaxReplication)
	case c.Nodes < c.Replication+2:
		return fmt.Errorf("%d nodes: need at least r + 2 = %d", c.Nodes, c.Replication+2)
	case c.Nodes > attest.MaxChurnNodes:
		return fmt.Errorf("%d nodes: at most %d", c.Nodes, attest.MaxChurnNodes)
	case c.MaxVaultMembers < 2 || c.MaxVaultMembers > attest.MaxVaultMembers:
		return fmt.Errorf("vaults of at most %d members: want 2..%d", c.MaxVaultMembers, attest.MaxVaultMembers)
	case c.WorkFactor < 1 || c.WorkFactor > envelope.MaxWorkFactor:
		return fmt.Errorf("work factor %d: want 1..%d", c.WorkFactor, envelope.MaxWorkFactor)
	case c.Transport != TransportTCP && c.Transport != TransportQUIC && c.Transport != TransportBoth:
		return fmt.Errorf("transport %q: want %q, %q or %q", c.Transport, TransportTCP, TransportQUIC, TransportBoth)
	case c.JoinWave < 1:
		return fmt.Errorf("join wave %d: want at least 1", c.JoinWave)
	case c.EpochBlocks < 2 || c.ProofWindow < 1 || c.ProofWindow >= c.EpochBlocks:
		return fmt.Errorf("epochs of %d blocks with a proof window of %d: want 1 ≤ window < epoch", c.EpochBlocks, c.ProofWindow)
	case 2*c.PollInterval+c.BlockInterval > time.Duration(c.ProofWindow)*c.BlockInterval:
		// A holder reads its challenges once per poll and its Prove
		// commits a block later: two polls and a block must fit the
		// window, or honest holders miss on a loaded machine.
		return fmt.Errorf("poll interval %v: two polls and a block do not fit a proof window of %d blocks of %v", c.PollInterval, c.ProofWindow, c.BlockInterval)
	case c.ChurnFraction <= 0 || c.ChurnFraction >= 1:
		return fmt.Errorf("churn fraction %g: want between 0 and 1", c.ChurnFraction)
	case c.Nodes-removedCount(c) < c.Replication+1:
		return fmt.Errorf("removing %d of %d nodes leaves fewer than r + 1", removedCount(c), c.Nodes)
	}
	return nil
}

// removedCount is how many nodes the churn removes: the fraction of N,
// rounded, at least one.
func removedCount(c Config) int {
	return max(1, int(float64(c.Nodes)*c.ChurnFraction+0.5))
}

// Phase statuses.
const (
	StatusOK = "ok"
	// StatusIncomplete is a phase that ran out of time but after which the
	// run went on (the mesh).
	StatusIncomplete = "incomplete"
	// StatusUnavailable is a step this build of ksb cannot run; see
	// Phase.Note for why.
	StatusUnavailable = "not available on this build"
	StatusFailed      = "failed"
	// StatusTimedOut is a waiting phase that did not see its condition
	// within Config.PhaseTimeout; the run stops there.
	StatusTimedOut = "timed out"
)

// ErrPhaseTimeout is the cause of a waiting phase that ran out of
// Config.PhaseTimeout.
var ErrPhaseTimeout = errors.New("phase timed out")

// Phase is one step of the run.
type Phase struct {
	Name     string        `json:"name"`
	Status   string        `json:"status"`
	Duration time.Duration `json:"duration"`
	Note     string        `json:"note,omitempty"`
}

// Result is what one run measured. A failed run has Error set and every
// figure measured up to the failure.
type Result struct {
	Nodes       int       `json:"nodes"`
	Replication int       `json:"replication"`
	WorkFactor  int       `json:"work_factor"`
	Transport   Transport `json:"transport"`
	// VaultSizes are the members of each keygen (each makes an ECDSA and an
	// EdDSA vault); Vaults is the number of vaults on chain, Shares the
	// share files keygen wrote (2N).
	VaultSizes []int `json:"vault_sizes"`
	Vaults     int   `json:"vaults"`
	Shares     int   `json:"shares"`
	// BlockInterval, PollInterval, BatchInterval and HeartbeatInterval are
	// the settings used.
	BlockInterval     time.Duration `json:"block_interval"`
	PollInterval      time.Duration `json:"poll_interval"`
	BatchInterval     time.Duration `json:"batch_interval"`
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	// EpochBlocks and ProofWindow are the chain's custody epoch and proof
	// window (blocks) of the run's genesis.
	EpochBlocks int64 `json:"epoch_blocks"`
	ProofWindow int64 `json:"proof_window"`

	Phases []Phase `json:"phases"`
	// Start is the time to lay the network out and start the chain.
	Start time.Duration `json:"start"`
	// Join is the time for every node to start and join in waves (see
	// Config.JoinWave); MeshPeers is the fewest peers a node had talked
	// with at its end (N-1 in a full mesh).
	Join      time.Duration `json:"join"`
	MeshPeers int           `json:"mesh_peers"`
	// JoinWave is the setting used.
	JoinWave int `json:"join_wave"`
	// Coverage is the time from keygen writing the share files until the
	// chain shows every vault safe and every member's share with r
	// counted holders (each owner committed, pushed a copy to every holder
	// the chain assigned, and the holders attested).
	Coverage time.Duration `json:"coverage"`
	// Proof is the first proof epoch after full coverage.
	Proof *ProofEpoch `json:"proof,omitempty"`
	// Removed is the nodes the churn removed. Safe is the time from the
	// churn's commit until the chain's coverage first shows every vault
	// safe (the chain fails the removed holders' custodies in the churn's
	// block and assigns replacements); Restore the time until every share
	// of a remaining node has r counted holders again (its owner pushes a
	// copy to each replacement) and every vault is safe. Unrepaired counts
	// the shares of removed nodes left with fewer than r counted holders
	// then: their owners are gone and the chain names one of the remaining
	// holders as each replacement's source (/ksb/repair; docs/performance.md,
	// "Churn simulation").
	Removed    int           `json:"removed"`
	Safe       time.Duration `json:"safe"`
	Restore    time.Duration `json:"restore"`
	Unrepaired int           `json:"unrepaired"`

	// Chain counts the blocks from keygen to the end of the run.
	Chain *ChainStats `json:"chain,omitempty"`
	// Traffic is what the nodes' libp2p streams carried from keygen to the
	// end of the run (the churn period: backup, churn and repair, with the
	// gossip heartbeats and mesh upkeep of that time).
	Traffic *TrafficStats `json:"traffic,omitempty"`
	// Resources are the process's memory and CPU over the whole run.
	Resources Resources `json:"resources"`
	// Wall is the run's duration.
	Wall time.Duration `json:"wall"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
}

// MemoryPerNode is the peak resident memory above the start of the run,
// divided by N.
func (r *Result) MemoryPerNode() uint64 {
	if r.Nodes == 0 || r.Resources.PeakRSS < r.Resources.BaseRSS {
		return 0
	}
	return (r.Resources.PeakRSS - r.Resources.BaseRSS) / uint64(r.Nodes)
}

// Run simulates one network of cfg.Nodes nodes through a churn, in this
// process, and measures it (see the package documentation). It returns the
// result even when a step fails, with the error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	res := &Result{
		Nodes: cfg.Nodes, Replication: cfg.Replication, WorkFactor: cfg.WorkFactor, Transport: cfg.Transport,
		BlockInterval: cfg.BlockInterval, PollInterval: cfg.PollInterval, BatchInterval: cfg.BatchInterval,
		HeartbeatInterval: cfg.HeartbeatInterval, Removed: removedCount(cfg), JoinWave: cfg.JoinWave,
		EpochBlocks: cfg.EpochBlocks, ProofWindow: cfg.ProofWindow,
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.MaxRSS > 0 {
		old := debug.SetMemoryLimit(int64(cfg.MaxRSS))
		defer debug.SetMemoryLimit(old)
	}
	t0 := time.Now()
	m := startMeter(cfg.MaxRSS, func(err error) { cancel(err) })
	r := &runner{cfg: cfg, res: res, out: cfg.Progress}
	err := r.run(ctx)
	if cerr := context.Cause(ctx); err != nil && cerr != nil && !errors.Is(cerr, context.Canceled) {
		err = fmt.Errorf("%w (stopped: %v)", err, cerr)
	}
	res.Resources = m.finish()
	res.Wall = time.Since(t0)
	if err != nil {
		res.Error = err.Error()
	}
	return res, err
}

// runner runs the phases of one Run.
type runner struct {
	cfg    Config
	res    *Result
	out    io.Writer
	net    *network
	sender *attest.Sender
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "[N=%d] "+format+"\n", append([]any{r.cfg.Nodes}, args...)...)
}

// phase runs f as the named phase and records it.
func (r *runner) phase(name string, f func() (status, note string, err error)) error {
	t := time.Now()
	status, note, err := f()
	p := Phase{Name: name, Status: status, Duration: time.Since(t), Note: note}
	if err != nil {
		p.Status = StatusFailed
		if errors.Is(err, ErrPhaseTimeout) {
			p.Status = StatusTimedOut
		}
		p.Note = err.Error()
	}
	r.res.Phases = append(r.res.Phases, p)
	line := fmt.Sprintf("%-12s %-10s %8s", name, p.Status, p.Duration.Round(10*time.Millisecond))
	if p.Note != "" {
		line += "  " + p.Note
	}
	r.logf("%s", line)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (r *runner) run(ctx context.Context) (err error) {
	cfg := r.cfg
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ksb-sim-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	r.logf("%d nodes, r = %d, vaults of at most %d, age work factor %d (LOW: production is %d), %s, blocks %v, epochs of %d blocks (proof window %d; SHORT: production is %d), poll %v, batch %v, heartbeat %v",
		cfg.Nodes, cfg.Replication, cfg.MaxVaultMembers, cfg.WorkFactor, envelope.DefaultWorkFactor, cfg.Transport,
		cfg.BlockInterval, cfg.EpochBlocks, cfg.ProofWindow, attest.DefaultEpochBlocks, cfg.PollInterval, cfg.BatchInterval, cfg.HeartbeatInterval)
	defer r.stop()
	var from int64
	defer func() {
		// A run that stopped early still reports what the chain and the
		// nodes did up to then.
		if err != nil && r.net != nil && r.net.chain != nil && r.res.Chain == nil && from > 0 {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), chainCallTimeout)
			defer cancel()
			_ = r.phase("accounting", func() (string, string, error) { return r.account(actx, from) })
		}
	}()

	if err := r.phase("start", func() (string, string, error) { return r.start(ctx, dir) }); err != nil {
		return err
	}
	if err := r.phase("join", func() (string, string, error) { return r.join(ctx) }); err != nil {
		return err
	}
	for _, m := range r.net.members {
		m.traffic.mark()
	}
	if err := r.phase("keygen", func() (string, string, error) {
		var err error
		from, err = r.keygen(ctx)
		return StatusOK, fmt.Sprintf("%d share files of %d vaults written, vaults created on chain", r.res.Shares, r.res.Vaults), err
	}); err != nil {
		return err
	}
	tKeygen := time.Now()
	if err := r.phase("backup", func() (string, string, error) {
		err := r.waitCoverage(ctx, nil, nil)
		if err == nil {
			r.res.Coverage = time.Since(tKeygen)
		}
		return StatusOK, fmt.Sprintf("every share committed, with r = %d attested holders, every vault safe, %v after keygen", cfg.Replication, r.res.Coverage.Round(time.Millisecond)), err
	}); err != nil {
		return err
	}
	if err := r.phase("proof epoch", func() (string, string, error) { return r.proofEpoch(ctx) }); err != nil {
		return err
	}
	if err := r.phase("churn", func() (string, string, error) { return r.churn(ctx) }); err != nil {
		return err
	}
	return r.phase("accounting", func() (string, string, error) { return r.account(ctx, from) })
}

// start lays the network out and starts the chain (no node registered
// yet: they join in waves).
func (r *runner) start(ctx context.Context, dir string) (string, string, error) {
	t := time.Now()
	n, err := layout(r.cfg, dir)
	if err != nil {
		return "", "", err
	}
	r.net = n
	for _, v := range n.vaults {
		r.res.Shares += len(v.members)
	}
	r.res.Vaults = len(n.vaults)
	for i := 0; i < len(n.vaults); i += 2 {
		r.res.VaultSizes = append(r.res.VaultSizes, len(n.vaults[i].members))
	}
	n.chain, err = attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home: filepath.Join(dir, "chain"), ChainID: ChainID, Genesis: n.genesis(),
		BlockInterval: r.cfg.BlockInterval, Logger: r.cfg.Logger.With("component", "chain"),
	})
	if err != nil {
		return "", "", fmt.Errorf("starting the chain: %w", err)
	}
	if n.client, err = attest.NewClient(n.chain.RPCURL()); err != nil {
		return "", "", err
	}
	r.res.Start = time.Since(t)
	return StatusOK, fmt.Sprintf("%d nodes laid out (%d keygens: %v members), chain up", len(n.members), len(r.res.VaultSizes), r.res.VaultSizes), nil
}

// join starts the nodes and adds them to the network in waves of
// JoinWave, as nodes join a running network: each wave's daemons start, the
// authority's Churn adds them, and the wave ends when every node started so
// far has exchanged bytes with every other (each connection runs identify,
// so the counters show the mesh). All N joining at once would make every
// node dial every other at the same moment, N(N-1) handshakes at once,
// which is not how a network forms and, past about 100 nodes on two cores,
// makes the handshakes time out faster than they complete.
func (r *runner) join(ctx context.Context) (string, string, error) {
	t := time.Now()
	n := r.net
	incomplete := 0
	for lo := 0; lo < len(n.members); lo += r.cfg.JoinWave {
		wave := n.members[lo:min(lo+r.cfg.JoinWave, len(n.members))]
		if err := r.startNodes(ctx, wave); err != nil {
			return "", "", err
		}
		add := &attest.Churn{}
		for _, m := range wave {
			add.AddNodes = append(add.AddNodes, attest.NodeSpec{PubKey: m.id.PubKeyHex(), Multiaddrs: m.cfg.P2P.Listen})
		}
		joined := lo + len(wave)
		err := r.authoritySend(ctx, add, func(ctx context.Context) (bool, error) {
			nodes, err := n.client.Nodes(ctx)
			return len(nodes) == joined, err
		})
		if err != nil {
			return "", "", fmt.Errorf("adding nodes %d..%d: %w", lo, joined-1, err)
		}
		if !r.waitMesh(ctx, n.members[:joined]) {
			incomplete++
		}
		if err := ctx.Err(); err != nil {
			return "", "", context.Cause(ctx)
		}
	}
	r.res.Join = time.Since(t)
	r.res.MeshPeers = leastPeers(n.members)
	if incomplete > 0 {
		return StatusIncomplete, fmt.Sprintf("%d of %d waves did not mesh within %v; at the end the least connected node had talked with %d of %d peers; going on",
			incomplete, (len(n.members)+r.cfg.JoinWave-1)/r.cfg.JoinWave, r.cfg.MeshTimeout, r.res.MeshPeers, len(n.members)-1), nil
	}
	return StatusOK, fmt.Sprintf("%d nodes joined in waves of %d; every node talked with all %d others", len(n.members), r.cfg.JoinWave, len(n.members)-1), nil
}

// startNodes starts the daemons of ms, a few at a time: each start opens a
// Badger store (file creation and syncs) and a libp2p host.
func (r *runner) startNodes(ctx context.Context, ms []*member) error {
	sem := make(chan struct{}, startConcurrency)
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = r.net.startNode(ctx, m, r.cfg.Logger)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// leastPeers is the fewest distinct peers any of ms has talked with.
func leastPeers(ms []*member) int {
	least := len(ms)
	for _, m := range ms {
		least = min(least, m.traffic.peerCount())
	}
	return least
}

// waitMesh waits, at most MeshTimeout, until every node of ms has talked
// with all the others, and reports whether they did.
func (r *runner) waitMesh(ctx context.Context, ms []*member) bool {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.MeshTimeout)
	defer cancel()
	return waitFor(wctx, meshPoll, func() (bool, error) { return leastPeers(ms) >= len(ms)-1, nil }) == nil
}

// keygen writes every node's share files, as keygen does at the end of a
// churn, and creates the vaults on chain (the authority's Churn). It returns
// the chain height before it.
func (r *runner) keygen(ctx context.Context) (int64, error) {
	n := r.net
	var from int64
	err := r.chainCall(ctx, "reading the height", func(ctx context.Context) (err error) {
		from, err = n.client.Height(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, m := range n.members {
		if err := placeShares(m); err != nil {
			return 0, fmt.Errorf("node %d: %w", m.index, err)
		}
	}
	churn := &attest.Churn{}
	for _, v := range n.vaults {
		spec := attest.VaultSpec{PubKey: v.pubKey, Threshold: v.threshold}
		for _, i := range v.members {
			spec.Members = append(spec.Members, n.members[i].address)
		}
		churn.CreateVaults = append(churn.CreateVaults, spec)
	}
	err = r.authoritySend(ctx, churn, func(ctx context.Context) (bool, error) {
		vs, err := n.client.Vaults(ctx)
		return len(vs) == len(n.vaults), err
	})
	if err != nil {
		return 0, fmt.Errorf("creating the vaults: %w", err)
	}
	return from + 1, nil
}

// authoritySend signs msg as the authority and waits for its commit. A
// failed RPC (the chain's RPC drops connections or answers late when the
// process is starved of CPU) is tried again until Config.PhaseTimeout: the
// authority's transactions are the harness, not what is measured, and a
// starved run should end as a timed-out phase, not on one lost answer.
// After any failure, done tells whether the change is on chain all the
// same (an earlier attempt committed).
func (r *runner) authoritySend(ctx context.Context, msg attest.Msg, done func(context.Context) (bool, error)) error {
	if r.sender == nil {
		r.sender = attest.NewSender(r.net.client, r.net.authority)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.PhaseTimeout, fmt.Errorf("%w: the authority's %s transaction not committed after %v", ErrPhaseTimeout, msg.Type(), r.cfg.PhaseTimeout))
	defer cancel()
	var err error
	for {
		cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
		_, err = r.sender.Send(cctx, msg)
		if err != nil {
			if ok, derr := done(cctx); derr == nil && ok {
				err = nil
			}
		}
		cancel()
		var te *attest.TxError
		if err == nil || errors.As(err, &te) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last: %v)", context.Cause(ctx), err)
		}
		r.logf("authority transaction: %v; trying again", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", context.Cause(ctx), err)
		case <-time.After(sendRetryPause):
		}
	}
}

// chainCall runs one query of the simulation's own, each try bounded by
// chainCallTimeout, until it succeeds or Config.PhaseTimeout passes: a
// lost answer (the RPC answers EOF or late when the process is starved of
// CPU) is the harness's problem, not a measurement.
func (r *runner) chainCall(ctx context.Context, what string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, r.cfg.PhaseTimeout, fmt.Errorf("%w: %s: no answer after %v", ErrPhaseTimeout, what, r.cfg.PhaseTimeout))
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, chainCallTimeout)
		err := f(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		r.logf("%s: %v; trying again", what, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", context.Cause(ctx), err)
		case <-time.After(sendRetryPause):
		}
	}
}

// waitCoverage waits until every vault is safe and every member's share
// has r holders; members in removed are only counted towards their vault's
// safety (their owners are gone, so nobody can push their shares again).
// safe, if not nil, is called at the first coverage read that shows every
// vault safe.
func (r *runner) waitCoverage(ctx context.Context, removed map[string]bool, safe func()) error {
	wctx, cancel := context.WithTimeoutCause(ctx, r.cfg.PhaseTimeout, fmt.Errorf("%w: no full coverage after %v", ErrPhaseTimeout, r.cfg.PhaseTimeout))
	defer cancel()
	var last error
	err := waitFor(wctx, coveragePoll, func() (bool, error) {
		cctx, cancel := context.WithTimeout(wctx, chainCallTimeout)
		defer cancel()
		cov, err := r.net.client.Coverage(cctx, "")
		if err != nil {
			last = err
			return false, nil
		}
		if safe != nil && allSafe(cov) {
			safe()
			safe = nil
		}
		if removed == nil {
			last = devnet.FullyCovered(cov, len(r.net.vaults))
			return last == nil, nil
		}
		last = restored(cov, len(r.net.vaults), removed)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return nil
}

// allSafe reports whether cov shows every vault safe.
func allSafe(cov *attest.Coverage) bool {
	for _, v := range cov.Vaults {
		if !v.Safe {
			return false
		}
	}
	return true
}

// restored reports why cov is not restored after a churn that removed the
// nodes in removed: every vault safe, every member not removed with r
// holders.
func restored(cov *attest.Coverage, vaults int, removed map[string]bool) error {
	if len(cov.Vaults) != vaults {
		return fmt.Errorf("%d vaults on chain, want %d", len(cov.Vaults), vaults)
	}
	for _, v := range cov.Vaults {
		if !v.Safe {
			return fmt.Errorf("vault %s not safe (%d of %d members covered)", v.PubKey, v.Covered, v.Threshold)
		}
		for _, m := range v.Members {
			if !removed[m.Address] && len(m.Holders) < int(v.Replication) {
				return fmt.Errorf("vault %s member %s has %d holders, want %d", v.PubKey, m.Address, len(m.Holders), v.Replication)
			}
		}
	}
	return nil
}

// churn removes a tenth of the nodes (the authority's Churn; their daemons
// stop, as machines leaving the network) and waits until the shares they
// held are back at r holders: the chain fails their custodies in the
// churn's block and assigns a replacement for each, and each remaining
// owner pushes its copy to the replacement at its next reconcile.
func (r *runner) churn(ctx context.Context) (string, string, error) {
	n := r.net
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0x636875726e)) // "churn"
	perm := rng.Perm(len(n.members))[:r.res.Removed]
	sort.Ints(perm)
	removed := map[string]bool{}
	churn := &attest.Churn{}
	for _, i := range perm {
		removed[n.members[i].address] = true
		churn.RemoveNodes = append(churn.RemoveNodes, n.members[i].address)
	}
	err := r.authoritySend(ctx, churn, func(ctx context.Context) (bool, error) {
		nodes, err := n.client.Nodes(ctx)
		return len(nodes) == len(n.members)-len(perm), err
	})
	if err != nil {
		return "", "", fmt.Errorf("removing %d nodes: %w", len(perm), err)
	}
	t := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(perm))
	for k, i := range perm {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = stopNode(n.members[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", "", err
	}
	if err := r.waitCoverage(ctx, removed, func() { r.res.Safe = max(time.Since(t), time.Nanosecond) }); err != nil {
		return "", "", err
	}
	r.res.Restore = time.Since(t)
	var cov *attest.Coverage
	err = r.chainCall(ctx, "reading the coverage", func(ctx context.Context) (err error) {
		cov, err = n.client.Coverage(ctx, "")
		return err
	})
	if err != nil {
		return "", "", err
	}
	for _, v := range cov.Vaults {
		for _, m := range v.Members {
			if removed[m.Address] && len(m.Holders) < int(v.Replication) {
				r.res.Unrepaired++
			}
		}
	}
	note := fmt.Sprintf("%d nodes removed; every vault safe %v and every remaining node's shares back at r holders %v after the churn's commit",
		len(perm), r.res.Safe.Round(time.Millisecond), r.res.Restore.Round(time.Millisecond))
	if r.res.Unrepaired > 0 {
		note += fmt.Sprintf("; %d shares of removed nodes stay under r (their replacements' sources are holders: /ksb/repair)", r.res.Unrepaired)
	}
	return StatusOK, note, nil
}

// account reads the chain's blocks from height from to now and the nodes'
// traffic counters.
func (r *runner) account(ctx context.Context, from int64) (string, string, error) {
	// The nodes' counters first: they need no chain, so a run whose chain
	// no longer answers still reports what its nodes sent.
	r.res.Traffic = trafficStats(r.net.members)
	var to int64
	err := r.chainCall(ctx, "reading the height", func(ctx context.Context) (err error) {
		to, err = r.net.client.Height(ctx)
		return err
	})
	if err != nil {
		return "", "", err
	}
	st, err := scanChain(ctx, r.net.chain.RPCURL(), from, to)
	if err != nil {
		return "", "", err
	}
	r.res.Chain = st
	if pe := r.res.Proof; pe != nil {
		p := st.Proofs[pe.Epoch]
		pe.Proofs, pe.ProveTxs, pe.ProveBytes = p.Proofs, p.Txs, p.Bytes
	}
	return StatusOK, fmt.Sprintf("blocks %d..%d: %d txs, %d B; nodes sent %d B in %d messages", from, to, st.Txs, st.TxBytes,
		r.res.Traffic.SentBytes, r.res.Traffic.SentMsgs), nil
}

// stop stops every node, then the chain.
func (r *runner) stop() {
	if r.net == nil {
		return
	}
	var wg sync.WaitGroup
	for _, m := range r.net.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopNode(m); err != nil {
				r.logf("stopping node %d: %v", m.index, err)
			}
		}()
	}
	wg.Wait()
	if r.net.chain != nil {
		if err := r.net.chain.Stop(); err != nil {
			r.logf("stopping the chain: %v", err)
		}
	}
}
