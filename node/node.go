package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	lpmetrics "github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/p2p"
	"github.com/ksb-project/ksb/store"
)

const (
	// shutdownTimeout bounds a clean stop: in-flight pushes finish (each is
	// bounded by p2p.PushTimeout) and the admin server drains.
	shutdownTimeout = p2p.PushTimeout + 5*time.Second

	// chainCallTimeout bounds one chain query or broadcast, so that a chain
	// outage delays the loops but never blocks them.
	chainCallTimeout = 20 * time.Second

	// connectTimeout bounds dialling one active node after a chain poll.
	connectTimeout = 10 * time.Second

	// repushAfter is how long after pushing a copy the owner waits for its
	// holder's attestation before pushing it again: a holder batches
	// attestations every chain.batch_interval (2 s by default) and the
	// chain commits them a block later, so 30 s is many batches, while a
	// holder that lost the copy or its queued attestation (a crash, a wiped
	// store) gets it again within a minute. A duplicate push re-queues the
	// holder's attestation; the chain fails a custody still unattested after
	// attest_window blocks and assigns a replacement.
	repushAfter = 30 * time.Second

	// maxConcurrentPushes bounds the pushes an owner runs at once (to
	// different holders; Service.Push keeps to each holder's allowance):
	// after a churn an owner pushes r copies of each of a few shares.
	maxConcurrentPushes = 8
)

// Options configure a Node.
type Options struct {
	// Home is the node's home directory; relative paths in Config are
	// resolved against it.
	Home string
	// Config is the node's configuration (see config.Load).
	Config config.Node
	// Mnemonic is the node's 24-word mnemonic.
	Mnemonic string
	// Logger receives the node's logs; nil means slog.Default(). Logs never
	// contain the mnemonic or plaintext.
	Logger *slog.Logger
	// Registry receives the node's metrics; nil means a new registry.
	Registry *prometheus.Registry
	// BandwidthReporter, if set, counts the bytes of the node's libp2p
	// streams (see p2p.HostConfig).
	BandwidthReporter lpmetrics.Reporter
	// Clock is the wall clock the node's gossip reads (heartbeat times) and
	// compares with the chain's and its peers' (clock.go); nil means
	// time.Now. Tests give a node a wrong clock with it.
	Clock func() time.Time
}

// Node is a running ksb daemon. Build it with New, run it with Run.
type Node struct {
	cfg  config.Node
	home string
	id   *identity.Identity
	addr string // bech32 node address
	log  *slog.Logger
	reg  *prometheus.Registry
	m    *metrics
	now  func() time.Time
	// clock is the last measurement of this node's clock offset (clock.go).
	clock *clockState

	st     *store.Store
	h      host.Host
	svc    *p2p.Service
	gossip *p2p.Gossip
	chain  *attest.Client
	sender *attest.Sender
	member *membership

	// params are the chain's parameters (fixed at genesis), once read or
	// loaded from the store.
	params atomic.Pointer[attest.Params]

	// ownMu serialises the owner side (sealing, committing, record updates).
	ownMu sync.Mutex
	// commitKick asks the owner loop to commit sealed share versions soon.
	commitKick chan struct{}
	// pendingMu serialises the holder's pending attestation/release queue.
	pendingMu sync.Mutex
	qidx      queueIndex // the queues' keys, under pendingMu (holder.go)
	// inflight are the queue records being written with their copies
	// (acceptRecords), by key, under pendingMu.
	inflight map[string]*inflightRecord
	// kick wakes the batcher early (after an accepted copy or a loss).
	kick chan struct{}
	// lastProved is the last epoch whose challenges this holder answered
	// (prover goroutine only; epoch+1, 0 for none).
	lastProved uint64
	// drill is the owner's restore drill bookkeeping (drill.go).
	drill drillState
	// silent are the copies DropCopy deleted silently (debug.go).
	silent silentSet
	// viewReady is closed once the first chain view is loaded.
	viewReady chan struct{}
	viewOnce  sync.Once

	// polls counts successful chain polls (follower goroutine only).
	polls int
	// lastSaved is the chain view last written to the store (follower
	// goroutine only).
	lastSaved []byte

	// self is what the latest chain view says of this node (self.go);
	// notActiveLogged when it last logged that it is not active.
	self            atomic.Pointer[selfState]
	notActiveLogged time.Time

	// nonce identifies this process to probes of its identity; other is
	// another live process of the same identity, as the last probe saw it
	// (instance.go).
	nonce p2p.InstanceNonce
	other atomic.Pointer[OtherInstance]

	// bootstrap are the configured peers dialled besides the active nodes.
	bootstrap []peer.AddrInfo
	// known are the active nodes and bootstrap peers of the last poll,
	// protected and allowlisted on the host; nodes churned out lose both.
	known *p2p.KnownPeers

	bw lpmetrics.Reporter

	admin     *adminServer
	closeOnce sync.Once
}

// New opens the node's store, starts its libp2p host and protocols, and
// connects its chain client. It does not start the daemon's loops: Run does.
func New(ctx context.Context, opts Options) (*Node, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	id, err := identity.New(opts.Mnemonic)
	if err != nil {
		return nil, err
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	n := &Node{
		cfg:        cfg,
		home:       opts.Home,
		id:         id,
		addr:       id.Address(cfg.HRP),
		log:        log.With("node", id.Address(cfg.HRP)),
		reg:        reg,
		member:     &membership{},
		kick:       make(chan struct{}, 1),
		commitKick: make(chan struct{}, 1),
		viewReady:  make(chan struct{}),
		bw:         opts.BandwidthReporter,
		now:        opts.Clock,
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.m = newMetrics(reg)
	n.clock = newClockState(reg)
	for _, s := range cfg.P2P.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("config p2p.bootstrap %q: %w", s, err)
		}
		n.bootstrap = append(n.bootstrap, *ai)
	}
	if err := n.open(ctx); err != nil {
		n.closeAll()
		return nil, err
	}
	n.registerStoreGauges()
	n.initDrills()
	n.loadSavedView()
	if n.cfg.Admin.Listen != "" {
		if n.admin, err = listenAdmin(n.cfg.Admin.Listen, n.reg, n.Status, n.healthy, n.debugRoutes, n.log); err != nil {
			n.closeAll()
			return nil, fmt.Errorf("admin endpoint %s: %w", n.cfg.Admin.Listen, err)
		}
	}
	return n, nil
}

func (n *Node) open(ctx context.Context) error {
	var err error
	dir := config.Path(n.home, n.cfg.Store.Dir)
	if n.st, err = store.Open(store.DefaultOptions(dir).WithLogger(n.log.With("component", "store"))); err != nil {
		return fmt.Errorf("opening store %s: %w", dir, err)
	}
	if n.chain, err = attest.NewClient(n.cfg.Chain.RPC); err != nil {
		return fmt.Errorf("chain client %s: %w", n.cfg.Chain.RPC, err)
	}
	n.sender = attest.NewSender(n.chain, n.id)
	n.member.chain = n.chain
	if n.h, err = p2p.NewHost(p2p.HostConfig{
		Identity: n.id,
		Listen:   n.cfg.P2P.Listen,
		ConnLow:  n.cfg.P2P.ConnLow,
		ConnHigh: n.cfg.P2P.ConnHigh,

		BandwidthReporter: n.bw,
	}); err != nil {
		return fmt.Errorf("libp2p host: %w", err)
	}
	if n.nonce, err = p2p.NewInstanceNonce(); err != nil {
		return fmt.Errorf("instance nonce: %w", err)
	}
	p2p.ServeInstance(n.h, n.nonce)
	n.known = p2p.NewKnownPeers(n.h)
	n.svc, err = p2p.NewService(n.h, n.id, n.st, n.member,
		p2p.WithLogger(n.log.With("component", "p2p")),
		p2p.WithQuota(n.cfg.Store.QuotaBlobs, n.cfg.Store.QuotaBytes),
		p2p.WithHRP(n.cfg.HRP),
		p2p.WithRegisterer(n.reg),
		p2p.AcceptRecords(n.acceptRecords),
		p2p.OnAccepted(n.onAccepted),
	)
	if err != nil {
		return fmt.Errorf("holder service: %w", err)
	}
	n.gossip, err = p2p.NewGossip(n.h, n.id, n.member,
		p2p.WithGossipLogger(n.log.With("component", "gossip")),
		p2p.WithGossipRegisterer(n.reg),
		p2p.WithClock(n.now),
		// Every node of a network runs the same interval; half of it leaves
		// room for jitter and still refuses a node that floods the topic.
		p2p.WithHeartbeatMinInterval(n.cfg.P2P.HeartbeatInterval.Duration/2),
		p2p.ServeRecovery(n.svc),
	)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	return nil
}

// Addrs returns the multiaddrs the node's host listens on, with /p2p/.
func (n *Node) Addrs() []string {
	var out []string
	for _, a := range n.h.Addrs() {
		out = append(out, a.String()+"/p2p/"+n.h.ID().String())
	}
	return out
}

// PeerID is the node's libp2p peer ID.
func (n *Node) PeerID() peer.ID { return n.h.ID() }

// Address is the node's bech32 address.
func (n *Node) Address() string { return n.addr }

// AdminAddr is the address of the admin HTTP endpoint once Run has started
// it, or "".
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.Addr()
}

// Run runs the daemon until ctx is done, then stops it cleanly: it stops
// accepting pushes, lets in-flight ones finish (an acknowledged blob is
// already synced), and closes the host and the store. Everything not yet on
// chain stays queued in the store for the next start.
func (n *Node) Run(ctx context.Context) error {
	defer n.closeAll()
	if n.admin != nil {
		go n.admin.serve(n.log)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			n.admin.close(sctx)
		}()
	}
	n.log.Info("node started", "peer_id", n.h.ID().String(), "addrs", n.Addrs(), "admin", n.AdminAddr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	run("chain follower", n.followChain)
	run("attestation batcher", n.runBatcher)
	run("prover", n.runProver)
	run("owner", n.runOwner)
	run("clock", n.runClock)
	run("repairer", n.runRepairer)
	run("restore drills", n.runDrills)
	run("heartbeats", func(ctx context.Context) error {
		// Peers accept heartbeats of active nodes only; this node's own
		// validator needs the chain view too.
		if !n.waitView(ctx) {
			return nil
		}
		n.gossip.RunHeartbeats(ctx, n.cfg.P2P.HeartbeatInterval.Duration, n.svc.Stats)
		return nil
	})

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		n.log.Error("stopping after a fatal error", "err", err)
	}
	cancel()
	wg.Wait()
	n.log.Info("node stopped")
	return err
}

// closeAll stops the protocols first (no new pushes), then the host, then the
// store. Safe on a partially opened node.
func (n *Node) closeAll() {
	n.closeOnce.Do(func() {
		if n.admin != nil {
			n.admin.ln.Close() // when Run never served it
		}
		if n.gossip != nil {
			n.gossip.Close()
		}
		if n.svc != nil {
			n.svc.Close()
		}
		if n.h != nil {
			n.h.Close()
		}
		if n.st != nil {
			n.st.Close()
		}
	})
}

// healthy is /healthz: ready once the chain view is loaded, this node is
// active on chain and no other live instance of its identity runs.
func (n *Node) healthy() error {
	select {
	case <-n.viewReady:
		if err := n.notReady(); err != nil {
			return err
		}
	default:
		return errors.New("chain state not loaded yet")
	}
	return n.clockErr()
}

// followChain re-reads the chain every poll interval: its parameters (once),
// the active nodes, the vaults and this node's custodies. It updates the
// view the protocols check, connects to active nodes, and compares held
// copies with the chain (attestations missing, copies lost, custodies gone).
func (n *Node) followChain(ctx context.Context) error {
	t := time.NewTicker(n.cfg.Chain.PollInterval.Duration)
	defer t.Stop()
	for {
		if err := n.pollChain(ctx); err != nil {
			n.m.chainErrors.Inc()
			n.log.Warn("reading chain state", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (n *Node) pollChain(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, chainCallTimeout)
	defer cancel()
	if _, err := n.chainParams(cctx); err != nil {
		return err
	}
	nodes, err := n.chain.Nodes(cctx)
	if err != nil {
		return err
	}
	vaults, err := n.chain.Vaults(cctx)
	if err != nil {
		return err
	}
	held, err := n.chain.CustodiesByHolder(cctx, n.addr)
	if err != nil {
		return err
	}
	v := newChainView(nodes, vaults, held)
	n.member.setView(v)
	n.noteView(v)
	n.viewOnce.Do(func() { close(n.viewReady) })
	n.saveView(nodes, vaults, held)
	n.connectActive(ctx, v)
	if n.polls%heldReconcileEvery == 0 {
		if err := n.reconcileHeld(ctx, v); err != nil {
			return fmt.Errorf("comparing held copies with the chain: %w", err)
		}
	}
	n.polls++
	return nil
}

// chainParams returns the chain's parameters: read once from the chain and
// kept in the store (they are fixed at genesis), so a node restarted while
// the chain is down still knows r.
func (n *Node) chainParams(ctx context.Context) (*attest.Params, error) {
	if p := n.params.Load(); p != nil {
		return p, nil
	}
	p, err := n.chain.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading chain parameters: %w", err)
	}
	if p.HRP != "" && p.HRP != n.cfg.HRP {
		return nil, fmt.Errorf("the chain's address prefix is %q, this node's config says %q", p.HRP, n.cfg.HRP)
	}
	if err := putJSON(n.st, chainParamsKey, p); err != nil {
		n.log.Warn("saving chain parameters", "err", err)
	}
	n.params.Store(&p)
	return &p, nil
}

// connectActive makes the active nodes and bootstrap peers the host's known
// set (protected, allowlisted; nodes churned out since the last poll lose
// both), adds their addresses to the peerstore and dials those not
// connected, in parallel, bounded by connectTimeout.
func (n *Node) connectActive(ctx context.Context, v *chainView) {
	infos := append([]peer.AddrInfo(nil), n.bootstrap...)
	for pub := range v.nodes {
		ai, ok := v.addrInfo(pub)
		if !ok || ai.ID == n.h.ID() {
			continue
		}
		infos = append(infos, ai)
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := n.known.Set(cctx, infos); err != nil {
		n.log.Debug("connecting to active nodes", "err", err)
	}
}

// savedView is the last chain view read, kept in the store so that a node
// restarted while the chain is unreachable still knows who is active and
// which custodies are its own: it keeps accepting pushes of those, proving
// nothing is lost meanwhile.
type savedView struct {
	Nodes     []attest.Node        `json:"nodes"`
	Vaults    []attest.Vault       `json:"vaults"`
	Custodies []attest.HeldCustody `json:"custodies"`
}

// chainViewKey is the meta key of the saved chain view.
const chainViewKey = "chainview"

// saveView stores the view when it changed (live vaults only: retired ones
// only grow the record).
func (n *Node) saveView(nodes []attest.Node, vaults []attest.Vault, held []attest.HeldCustody) {
	var live []attest.Vault
	for _, v := range vaults {
		if !v.Retired {
			live = append(live, v)
		}
	}
	b, err := json.Marshal(savedView{Nodes: nodes, Vaults: live, Custodies: held})
	if err != nil || bytes.Equal(b, n.lastSaved) {
		return
	}
	if err := n.st.PutMeta(chainViewKey, b); err != nil {
		n.log.Warn("saving the chain view", "err", err)
		return
	}
	n.lastSaved = b
}

func (n *Node) loadSavedView() {
	var p attest.Params
	if found, err := getJSON(n.st, chainParamsKey, &p); err == nil && found {
		n.params.Store(&p)
	}
	var sv savedView
	found, err := getJSON(n.st, chainViewKey, &sv)
	if err != nil || !found {
		return
	}
	v := newChainView(sv.Nodes, sv.Vaults, sv.Custodies)
	n.member.setView(v)
	n.noteView(v)
	n.viewOnce.Do(func() { close(n.viewReady) })
	n.log.Info("using the saved chain view until the chain answers", "nodes", len(sv.Nodes), "vaults", len(sv.Vaults), "custodies", len(sv.Custodies))
}

// waitView blocks until the first chain view is loaded or ctx is done.
func (n *Node) waitView(ctx context.Context) bool {
	select {
	case <-n.viewReady:
		return true
	case <-ctx.Done():
		return false
	}
}
