// Package devnet runs a whole ksb network in one process: an embedded
// single-validator CometBFT chain running the ksb application and N nodes on
// 127.0.0.1, each with a fresh mnemonic, as `ksb devnet` shows and as the
// daemon's tests use it.
//
// Start lays the network out and starts it; PlaceShares drops real keyshare
// files (shipped with the binary, see internal/fixtures) into every node's
// keyshare directory as keygen would; WaitCovered waits until the chain says
// every vault is safe. Members can be stopped, wiped down to their mnemonic
// and started again, which is how the devnet demonstrates recovery.
package devnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/fixtures"
	"github.com/ksb-project/ksb/internal/freeport"
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/node"
)

const (
	// ChainID is the devnet chain's ID.
	ChainID = "ksb-devnet"

	// MaxNodes is the most members a devnet has: one share of each shipped
	// keygen per member.
	MaxNodes = fixtures.Parties

	// MinNodes is the fewest members that can each have Replication (3)
	// holders other than themselves.
	MinNodes = 4

	// mnemonicAttempts bounds how many fresh mnemonics are drawn for one
	// member until one passes the envelope's checks; a random mnemonic fails
	// the entropy check about once in 10^8 draws.
	mnemonicAttempts = 16

	// stopTimeout bounds how long a member takes to stop.
	stopTimeout = time.Minute

	// maxSpares bounds Options.Spares: a devnet is one process on a
	// shared machine.
	maxSpares = 16
)

// Options configure a devnet. Zero values take the defaults shown.
type Options struct {
	// Nodes is the number of members, MinNodes..MaxNodes (5).
	Nodes int
	// Spares is the number of further active nodes that are members of no
	// vault and have no shares (0): holders only, which give the chain
	// replacement candidates beyond the vault members (Members[Nodes:]).
	Spares int
	// Dir holds the chain and member homes; "" means a new temporary
	// directory, removed by Close.
	Dir string
	// Replication is r, the holders each share needs (3).
	Replication int
	// WorkFactor is the age scrypt work factor members seal with (18).
	// Below 18 only with AllowLowWorkFactor (tests).
	WorkFactor         int
	AllowLowWorkFactor bool
	// BlockInterval is the chain's block time (300 ms).
	BlockInterval time.Duration
	// EpochBlocks is the chain's custody epoch in blocks (genesis
	// epoch_blocks; attest.DefaultEpochBlocks if 0). `ksb devnet
	// --epoch-blocks N` sets it; the proof window is half of it.
	EpochBlocks int64
	// Custody are the other genesis custody parameters (retention, attest
	// and repair windows, round length, strategy); zero fields take their
	// defaults (attest.CustodyParams). EpochBlocks, if set, overrides
	// Custody.EpochBlocks.
	Custody attest.CustodyParams
	// PollInterval, BatchInterval and HeartbeatInterval are the members'
	// chain poll, attestation batch and gossip heartbeat intervals
	// (500 ms, 500 ms, 1 s).
	PollInterval, BatchInterval, HeartbeatInterval time.Duration
	// QUIC makes members listen on QUIC as well as TCP.
	QUIC bool
	// Logger receives the chain's and members' logs; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Nodes == 0 {
		o.Nodes = MaxNodes
	}
	if o.Replication == 0 {
		o.Replication = 3
	}
	if o.WorkFactor == 0 {
		o.WorkFactor = 18
	}
	def(&o.BlockInterval, 300*time.Millisecond)
	def(&o.PollInterval, 500*time.Millisecond)
	def(&o.BatchInterval, 500*time.Millisecond)
	def(&o.HeartbeatInterval, time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Member is one node of the devnet.
type Member struct {
	Index    int
	Home     string
	Mnemonic string
	ID       *identity.Identity
	Address  string
	Config   config.Node
	// Shares maps file names (localstate-<vault>.json) to the bytes keygen
	// would have written for this member.
	Shares map[string][]byte

	mu     sync.Mutex
	node   *node.Node
	reg    *prometheus.Registry // the running daemon's metrics
	cancel context.CancelFunc
	done   chan error
}

// Running reports whether the member's daemon runs.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node != nil
}

// Node returns the member's running daemon, or nil.
func (m *Member) Node() *node.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node
}

// KeysharesDir is where keygen writes this member's share files.
func (m *Member) KeysharesDir() string { return config.Path(m.Home, m.Config.Backup.KeysharesDir) }

// Network is a running devnet.
type Network struct {
	Dir     string
	Chain   *attest.Embedded
	Client  *attest.Client
	Members []*Member
	// Vaults are the vault public keys registered in genesis.
	Vaults []string
	// Authority is the key that signs Churn transactions (a devnet's own,
	// fresh, never written to disk).
	Authority *identity.Identity

	opts    Options
	tempDir bool
}

// Start lays out and starts a devnet: fresh mnemonics, a genesis registering
// every member and both shipped vaults (each member is a member of both,
// threshold ⌈2n/3⌉), the embedded chain, and every member's daemon.
func Start(ctx context.Context, opts Options) (_ *Network, err error) {
	opts = opts.withDefaults()
	if opts.Nodes < MinNodes || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("devnet: %d nodes; want %d..%d", opts.Nodes, MinNodes, MaxNodes)
	}
	if opts.Spares < 0 || opts.Spares > maxSpares {
		return nil, fmt.Errorf("devnet: %d spare nodes; want 0..%d", opts.Spares, maxSpares)
	}
	if opts.Replication >= opts.Nodes {
		return nil, fmt.Errorf("devnet: replication %d needs more than %d nodes", opts.Replication, opts.Nodes)
	}
	n := &Network{Dir: opts.Dir, opts: opts}
	if n.Dir != "" {
		// Fresh mnemonics and a fresh genesis must not mix with an old
		// network's homes and chain data.
		if entries, err := os.ReadDir(n.Dir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("devnet: directory %s is not empty", n.Dir)
		}
	}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "ksb-devnet-"); err != nil {
			return nil, err
		}
		n.tempDir = true
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	authority, err := freshMnemonic()
	if err != nil {
		return nil, err
	}
	authID, err := identity.New(authority)
	if err != nil {
		return nil, err
	}
	n.Authority = authID
	gen := attest.Genesis{Authority: authID.PubKeyHex(), Replication: uint32(opts.Replication), CustodyParams: opts.Custody}
	if opts.EpochBlocks != 0 {
		gen.EpochBlocks = opts.EpochBlocks
	}
	vaultMembers := map[string][]string{}
	for i := 0; i < opts.Nodes+opts.Spares; i++ {
		m, err := n.newMember(i)
		if err != nil {
			return nil, err
		}
		n.Members = append(n.Members, m)
		gen.Nodes = append(gen.Nodes, attest.NodeSpec{PubKey: m.ID.PubKeyHex(), Multiaddrs: m.Config.P2P.Listen})
		for name := range m.Shares {
			info, err := keyshare.Parse(m.Shares[name])
			if err != nil {
				return nil, fmt.Errorf("shipped fixture %s: %w", name, err)
			}
			vaultMembers[info.VaultPubKey] = append(vaultMembers[info.VaultPubKey], m.Address)
		}
	}
	for vault, members := range vaultMembers {
		n.Vaults = append(n.Vaults, vault)
		gen.Vaults = append(gen.Vaults, attest.VaultSpec{
			PubKey: vault, Members: members, Threshold: uint32(math.Ceil(2 * float64(len(members)) / 3)),
		})
	}
	n.Chain, err = attest.StartEmbedded(ctx, attest.EmbeddedConfig{
		Home:          filepath.Join(n.Dir, "chain"),
		ChainID:       ChainID,
		Genesis:       gen,
		BlockInterval: opts.BlockInterval,
		Logger:        opts.Logger.With("component", "chain"),
	})
	if err != nil {
		return nil, fmt.Errorf("starting chain: %w", err)
	}
	if n.Client, err = attest.NewClient(n.Chain.RPCURL()); err != nil {
		return nil, err
	}
	for _, m := range n.Members {
		m.Config.Chain.RPC = n.Chain.RPCURL()
		if err := config.Write(filepath.Join(m.Home, config.FileName), m.Config); err != nil {
			return nil, err
		}
		if err := n.StartMember(ctx, m.Index); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// freshMnemonic draws a 24-word mnemonic that passes the envelope's checks.
func freshMnemonic() (string, error) {
	var err error
	for i := 0; i < mnemonicAttempts; i++ {
		var m string
		if m, err = identity.Generate(); err != nil {
			return "", err
		}
		if err = envelope.CheckMnemonic(m); err == nil {
			return m, nil
		}
	}
	return "", fmt.Errorf("no usable mnemonic in %d draws: %w", mnemonicAttempts, err)
}

func (n *Network) newMember(i int) (*Member, error) {
	mn, err := freshMnemonic()
	if err != nil {
		return nil, err
	}
	id, err := identity.New(mn)
	if err != nil {
		return nil, err
	}
	home := filepath.Join(n.Dir, "node"+strconv.Itoa(i))
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(home, "mnemonic"), []byte(mn+"\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}
	if n.opts.QUIC {
		cfg.P2P.Listen = append(cfg.P2P.Listen, fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port))
	}
	cfg.P2P.HeartbeatInterval = config.Duration{Duration: n.opts.HeartbeatInterval}
	cfg.Chain.ChainID = ChainID
	cfg.Chain.PollInterval = config.Duration{Duration: n.opts.PollInterval}
	cfg.Chain.BatchInterval = config.Duration{Duration: n.opts.BatchInterval}
	cfg.Backup.Replication = n.opts.Replication
	cfg.Backup.WorkFactor = n.opts.WorkFactor
	cfg.Backup.AllowLowWorkFactor = n.opts.AllowLowWorkFactor
	// A real port, written to the config: `ksb status --home` reads the
	// admin address from there, and port 0 would name no listener.
	admin, err := attest.FreeLocalAddr()
	if err != nil {
		return nil, err
	}
	cfg.Admin.Listen = admin
	cfg.Log.Format = "text"
	if i >= n.opts.Nodes {
		// A spare: a holder only.
		return &Member{
			Index: i, Home: home, Mnemonic: mn, ID: id, Address: id.Address(cfg.HRP),
			Config: cfg, Shares: map[string][]byte{},
		}, nil
	}
	ecdsa, err := fixtures.ECDSA(i)
	if err != nil {
		return nil, err
	}
	eddsa, err := fixtures.EdDSA(i)
	if err != nil {
		return nil, err
	}
	shares := map[string][]byte{}
	for _, b := range [][]byte{ecdsa, eddsa} {
		info, err := keyshare.Parse(b)
		if err != nil {
			return nil, err
		}
		shares["localstate-"+info.VaultPubKey+".json"] = b
	}
	return &Member{
		Index: i, Home: home, Mnemonic: mn, ID: id, Address: id.Address(cfg.HRP),
		Config: cfg, Shares: shares,
	}, nil
}

// freePort returns a port on 127.0.0.1 that was free for TCP and UDP (the
// node listens on QUIC too) a moment ago, below the ephemeral range (package
// internal/freeport): it is written to the member's config and bound at
// each start.
func freePort() (int, error) {
	return freeport.Range(1, true)
}

// StartMember starts member i's daemon from its home.
func (n *Network) StartMember(ctx context.Context, i int) error {
	m := n.Members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node != nil {
		return fmt.Errorf("member %d is running", i)
	}
	mn, err := identity.Read(identity.Source{File: filepath.Join(m.Home, "mnemonic")})
	if err != nil {
		return err
	}
	// A registry per start: a restarted daemon registers its collectors
	// afresh, so its counters start from zero.
	reg := prometheus.NewRegistry()
	nd, err := node.New(ctx, node.Options{
		Home: m.Home, Config: m.Config, Mnemonic: mn,
		Logger: n.opts.Logger.With("member", i), Registry: reg,
	})
	if err != nil {
		return fmt.Errorf("member %d: %w", i, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		done <- nd.Run(rctx)
	}()
	<-started
	m.node, m.reg, m.cancel, m.done = nd, reg, cancel, done
	return nil
}

// StopMember stops member i's daemon cleanly (as SIGTERM does).
func (n *Network) StopMember(i int) error {
	m := n.Members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node == nil {
		return nil
	}
	m.cancel()
	var err error
	select {
	case err = <-m.done:
	case <-time.After(stopTimeout):
		err = fmt.Errorf("member %d did not stop within %v", i, stopTimeout)
	}
	m.node, m.cancel, m.done = nil, nil, nil
	return err
}

// WipeMember deletes everything in member i's home but its mnemonic file
// and config: its keyshares and its data, as a lost disk would. The member
// must be stopped.
func (n *Network) WipeMember(i int) error {
	m := n.Members[i]
	if m.Running() {
		return fmt.Errorf("member %d is running", i)
	}
	entries, err := os.ReadDir(m.Home)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "mnemonic" || e.Name() == config.FileName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(m.Home, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// PlaceShares writes every member's share files into its keyshare
// directory, as keygen would at the end of a churn.
func (n *Network) PlaceShares() error {
	for _, m := range n.Members {
		if err := m.PlaceShares(); err != nil {
			return err
		}
	}
	return nil
}

// PlaceShares writes this member's share files into its keyshare directory.
func (m *Member) PlaceShares() error {
	dir := m.KeysharesDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range m.Shares {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// WaitCovered polls the chain's coverage until every vault is safe and every
// member of every vault has at least r holders, and returns that coverage.
func (n *Network) WaitCovered(ctx context.Context, poll time.Duration) (*attest.Coverage, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	var last error
	for {
		cov, err := n.Client.Coverage(ctx, "")
		if err == nil {
			if err = FullyCovered(cov, len(n.Vaults)); err == nil {
				return cov, nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for coverage: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// WaitFresh polls the chain's coverage until every custody of every member
// of every vault has answered a challenge (status fresh) — the chain runs
// epochs, and the holders prove possession — and returns that coverage.
func (n *Network) WaitFresh(ctx context.Context, poll time.Duration) (*attest.Coverage, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	var last error
	for {
		cov, err := n.Client.Coverage(ctx, "")
		if err == nil {
			if err = FullyCovered(cov, len(n.Vaults)); err == nil {
				err = allFresh(cov)
			}
			if err == nil {
				return cov, nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for proofs: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// allFresh reports the first custody of cov that is not fresh.
func allFresh(cov *attest.Coverage) error {
	for _, v := range cov.Vaults {
		for _, m := range v.Members {
			for _, c := range m.Custody {
				if c.Status != "fresh" {
					return fmt.Errorf("vault %s member %s: custody of slot %d at %s is %s", v.PubKey, m.Address, c.Slot, c.Holder, c.Status)
				}
			}
		}
	}
	return nil
}

// FullyCovered reports why cov is not the full coverage of vaults vaults:
// every vault safe and every member with at least the replication target of
// holders.
func FullyCovered(cov *attest.Coverage, vaults int) error {
	if len(cov.Vaults) != vaults {
		return fmt.Errorf("%d vaults on chain, want %d", len(cov.Vaults), vaults)
	}
	for _, v := range cov.Vaults {
		if !v.Safe {
			return fmt.Errorf("vault %s not safe (%d of %d members covered)", v.PubKey, v.Covered, v.Threshold)
		}
		for _, m := range v.Members {
			if len(m.Holders) < int(v.Replication) {
				return fmt.Errorf("vault %s member %s has %d holders, want %d", v.PubKey, m.Address, len(m.Holders), v.Replication)
			}
		}
	}
	return nil
}

// Close stops every member and the chain, and removes the directory if
// Start created it.
func (n *Network) Close() error {
	var errs []error
	for i := range n.Members {
		errs = append(errs, n.StopMember(i))
	}
	if n.Chain != nil {
		errs = append(errs, n.Chain.Stop())
	}
	if n.tempDir {
		errs = append(errs, os.RemoveAll(n.Dir))
	}
	return errors.Join(errs...)
}
