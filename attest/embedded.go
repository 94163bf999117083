package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	cmttypes "github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"

	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/internal/freeport"
)

// HomeConfigFile is the file, inside a validator home's config directory,
// that holds the ksb-specific settings of the validator (HomeConfig). The
// rest of the home is CometBFT's usual layout: config/genesis.json,
// config/priv_validator_key.json, config/node_key.json, data/. The
// application state is in data/ksb-app.
const HomeConfigFile = "ksb-chain.toml"

// DefaultBlockInterval is CometBFT's timeout_commit when none is given: the
// chain carries a few transactions per churn, so one block a second is
// plenty.
const DefaultBlockInterval = time.Second

// DefaultTimeoutPropose is how long validators wait for a proposal before
// moving to the next round. CometBFT's 3 s default makes a network with a
// dead validator stall 3 s every time it is the proposer; 1 s is enough on
// the networks ksb runs (local, or a few well-connected validators).
const DefaultTimeoutPropose = time.Second

// HomeConfig is what HomeConfigFile holds.
type HomeConfig struct {
	// Moniker is the validator's name in CometBFT.
	Moniker string `toml:"moniker"`
	// RPCListen is the host:port of the CometBFT RPC.
	RPCListen string `toml:"rpc_listen"`
	// P2PListen is the host:port of CometBFT's peer-to-peer port.
	P2PListen string `toml:"p2p_listen"`
	// PersistentPeers are the other validators, as nodeID@host:port.
	PersistentPeers []string `toml:"persistent_peers"`
	// BlockInterval is CometBFT's timeout_commit.
	BlockInterval config.Duration `toml:"block_interval"`
	// TimeoutPropose is CometBFT's timeout_propose.
	TimeoutPropose config.Duration `toml:"timeout_propose"`
}

// ValidatorHome is one validator of a network laid out by InitNetwork.
type ValidatorHome struct {
	// Dir is the home directory to create.
	Dir string
	// RPCListen and P2PListen are host:port addresses.
	RPCListen string
	P2PListen string
}

// Network describes a chain to lay out with InitNetwork.
type Network struct {
	ChainID    string
	Genesis    Genesis
	Validators []ValidatorHome
	// BlockInterval and TimeoutPropose default to DefaultBlockInterval and
	// DefaultTimeoutPropose.
	BlockInterval  time.Duration
	TimeoutPropose time.Duration
}

// InitNetwork creates one validator home per n.Validators entry: fresh
// validator and node keys, one shared genesis file (each validator with
// power 1, app state n.Genesis) and a HomeConfigFile listing the other
// validators as persistent peers. It refuses to write into a home that
// already has a genesis file.
func InitNetwork(n Network) error {
	if n.ChainID == "" || len(n.ChainID) > MaxChainIDLen {
		return fmt.Errorf("chain ID %q: want 1..%d characters", n.ChainID, MaxChainIDLen)
	}
	if len(n.Validators) == 0 {
		return errors.New("a network needs at least one validator")
	}
	if err := n.Genesis.Validate(); err != nil {
		return err
	}
	appState, err := json.Marshal(n.Genesis)
	if err != nil {
		return fmt.Errorf("encoding genesis: %w", err)
	}
	if n.BlockInterval <= 0 {
		n.BlockInterval = DefaultBlockInterval
	}
	if n.TimeoutPropose <= 0 {
		n.TimeoutPropose = DefaultTimeoutPropose
	}
	vals := make([]cmttypes.GenesisValidator, len(n.Validators))
	peers := make([]string, len(n.Validators))
	for i, v := range n.Validators {
		c := cmtcfg.DefaultConfig()
		c.SetRoot(v.Dir)
		if _, err := os.Stat(c.GenesisFile()); err == nil {
			return fmt.Errorf("%s already has a genesis file", v.Dir)
		}
		for _, d := range []string{filepath.Dir(c.GenesisFile()), filepath.Join(v.Dir, "data")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return err
			}
		}
		pv, err := privval.GenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile(), nil)
		if err != nil {
			return fmt.Errorf("validator key for %s: %w", v.Dir, err)
		}
		pv.Save()
		pub, err := pv.GetPubKey()
		if err != nil {
			return err
		}
		nk, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
		if err != nil {
			return fmt.Errorf("node key for %s: %w", v.Dir, err)
		}
		vals[i] = cmttypes.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 1, Name: filepath.Base(v.Dir)}
		peers[i] = p2p.IDAddressString(nk.ID(), v.P2PListen)
	}
	doc := &cmttypes.GenesisDoc{
		ChainID:         n.ChainID,
		GenesisTime:     cmttime.Now(),
		ConsensusParams: consensusParams(),
		Validators:      vals,
		AppState:        appState,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	for i, v := range n.Validators {
		c := cmtcfg.DefaultConfig()
		c.SetRoot(v.Dir)
		if err := doc.SaveAs(c.GenesisFile()); err != nil {
			return fmt.Errorf("writing genesis: %w", err)
		}
		hc := HomeConfig{
			Moniker:        filepath.Base(v.Dir),
			RPCListen:      v.RPCListen,
			P2PListen:      v.P2PListen,
			BlockInterval:  config.Duration{Duration: n.BlockInterval},
			TimeoutPropose: config.Duration{Duration: n.TimeoutPropose},
		}
		for j, p := range peers {
			if j != i {
				hc.PersistentPeers = append(hc.PersistentPeers, p)
			}
		}
		if err := writeHomeConfig(v.Dir, hc); err != nil {
			return err
		}
	}
	return nil
}

func homeConfigPath(home string) string { return filepath.Join(home, "config", HomeConfigFile) }

func writeHomeConfig(home string, hc HomeConfig) error {
	var b strings.Builder
	b.WriteString("# ksb attestation chain validator settings (see docs/attestation.md).\n")
	if err := toml.NewEncoder(&b).Encode(hc); err != nil {
		return fmt.Errorf("encoding %s: %w", HomeConfigFile, err)
	}
	return os.WriteFile(homeConfigPath(home), []byte(b.String()), 0o600)
}

// LoadHomeConfig reads a validator home's HomeConfigFile, refusing unknown
// settings.
func LoadHomeConfig(home string) (HomeConfig, error) {
	var hc HomeConfig
	md, err := toml.DecodeFile(homeConfigPath(home), &hc)
	if err != nil {
		return hc, fmt.Errorf("validator home %s: %w", home, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return hc, fmt.Errorf("validator home %s: unknown setting %q", home, und[0].String())
	}
	if hc.RPCListen == "" || hc.P2PListen == "" {
		return hc, fmt.Errorf("validator home %s: rpc_listen and p2p_listen are required", home)
	}
	return hc, nil
}

// EmbeddedConfig configures StartEmbedded.
type EmbeddedConfig struct {
	// Home is the validator home. If it has no HomeConfigFile yet, a
	// single-validator chain is created there from ChainID and Genesis;
	// otherwise the home's own genesis and settings are used and ChainID and
	// Genesis are ignored.
	Home    string
	ChainID string
	Genesis Genesis
	// BlockInterval is timeout_commit for a new home (DefaultBlockInterval
	// if 0); tests use 100–300 ms.
	BlockInterval time.Duration
	// RPCListen and P2PListen ("127.0.0.1:port") override the home's; for a
	// new home, empty means a free port on 127.0.0.1.
	RPCListen string
	P2PListen string
	// Logger receives CometBFT's and the application's logs; nil discards
	// them.
	Logger *slog.Logger
}

// Embedded is a CometBFT validator running the ksb application in this
// process.
type Embedded struct {
	node    *cmtnode.Node
	app     *App
	dbs     *dbProvider
	rpcSrv  *rpcServer // nil until the node has started
	rpc     string
	chainID string
	log     *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// StartEmbedded starts a validator with the ksb application (see
// EmbeddedConfig) and returns once its RPC is listening and, for a lone
// validator, its first block is committed (so queries see the genesis state).
// ctx bounds the start only; stop the node with Stop.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Home == "" {
		return nil, errors.New("embedded chain: no home directory")
	}
	if _, err := os.Stat(homeConfigPath(cfg.Home)); errors.Is(err, os.ErrNotExist) {
		rpc, p2pAddr := cfg.RPCListen, cfg.P2PListen
		var err error
		if rpc == "" {
			if rpc, err = FreeLocalAddr(); err != nil {
				return nil, err
			}
		}
		if p2pAddr == "" {
			if p2pAddr, err = FreeLocalAddr(); err != nil {
				return nil, err
			}
		}
		err = InitNetwork(Network{
			ChainID:       cfg.ChainID,
			Genesis:       cfg.Genesis,
			Validators:    []ValidatorHome{{Dir: cfg.Home, RPCListen: rpc, P2PListen: p2pAddr}},
			BlockInterval: cfg.BlockInterval,
		})
		if err != nil {
			return nil, fmt.Errorf("creating chain home %s: %w", cfg.Home, err)
		}
	}
	hc, err := LoadHomeConfig(cfg.Home)
	if err != nil {
		return nil, err
	}
	if cfg.RPCListen != "" {
		hc.RPCListen = cfg.RPCListen
	}
	if cfg.P2PListen != "" {
		hc.P2PListen = cfg.P2PListen
	}
	return startHome(ctx, cfg.Home, hc, cfg.Logger)
}

func startHome(ctx context.Context, home string, hc HomeConfig, logger *slog.Logger) (*Embedded, error) {
	c := cmtcfg.DefaultConfig()
	c.SetRoot(home)
	c.Moniker = hc.Moniker
	if c.Moniker == "" {
		c.Moniker = filepath.Base(home)
	}
	c.RPC.ListenAddress = "tcp://" + hc.RPCListen
	c.P2P.ListenAddress = "tcp://" + hc.P2PListen
	c.P2P.PersistentPeers = strings.Join(hc.PersistentPeers, ",")
	c.P2P.AddrBookStrict = false // validators on one machine use 127.0.0.1
	c.P2P.AllowDuplicateIP = true
	c.Consensus.TimeoutCommit = hc.BlockInterval.Duration //nolint:staticcheck // still CometBFT v1.0's block pacing
	if c.Consensus.TimeoutCommit <= 0 {
		c.Consensus.TimeoutCommit = DefaultBlockInterval //nolint:staticcheck
	}
	if hc.TimeoutPropose.Duration > 0 {
		c.Consensus.TimeoutPropose = hc.TimeoutPropose.Duration
	}
	c.Instrumentation.Prometheus = false
	if err := c.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("chain home %s: %w", home, err)
	}

	var clog cmtlog.Logger = cmtlog.NewNopLogger()
	if logger != nil {
		clog = slogAdapter{logger}
	} else {
		logger = slog.New(slog.DiscardHandler)
	}
	dbs := &dbProvider{log: logger}
	nodeKey, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("chain home %s: %w", home, err)
	}
	if _, err := os.Stat(c.PrivValidatorKeyFile()); err != nil {
		return nil, fmt.Errorf("chain home %s: %w", home, err)
	}
	pv := privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())

	app, err := NewApp(filepath.Join(c.DBDir(), "ksb-app"), logger)
	if err != nil {
		return nil, err
	}
	n, err := cmtnode.NewNode(ctx, c, pv, nodeKey,
		// One lock per ABCI connection (consensus, mempool, query), not one
		// for all: App is safe for concurrent use, and a query — anyone
		// may send one over RPC — must never hold up a block.
		proxy.NewConnSyncLocalClientCreator(app),
		cmtnode.DefaultGenesisDocProviderFunc(c),
		dbs.open,
		cmtnode.DefaultMetricsProvider(c.Instrumentation),
		clog,
	)
	if err != nil {
		dbs.closeLeftovers()
		app.Close()
		return nil, fmt.Errorf("starting chain node in %s: %w", home, err)
	}
	e := &Embedded{node: n, app: app, dbs: dbs, rpc: "http://" + hc.RPCListen, chainID: n.GenesisDoc().ChainID, log: logger}
	// The RPC is served by rpcServer, not by the node, so that Stop can
	// drain it before the node closes its stores. The node keeps its RPC
	// address in its configuration until here (it reports it in /status);
	// clearing it now keeps Node.OnStart from serving the RPC itself.
	rpcCfg := *c.RPC
	c.RPC.ListenAddress = ""
	if err := n.Start(); err != nil {
		e.Stop()
		return nil, fmt.Errorf("starting chain node in %s: %w", home, err)
	}
	if e.rpcSrv, err = startRPC(n, &rpcCfg, clog); err != nil {
		e.Stop()
		return nil, fmt.Errorf("starting chain node in %s: %w", home, err)
	}
	if len(hc.PersistentPeers) == 0 {
		// A lone validator commits its first block (and with it the
		// genesis state queries read) within one block interval.
		if err := e.waitHeight(ctx, 1); err != nil {
			e.Stop()
			return nil, err
		}
	}
	return e, nil
}

// waitHeight waits until the application has committed height h.
func (e *Embedded) waitHeight(ctx context.Context, h int64) error {
	tick := time.NewTicker(commitPollInterval)
	defer tick.Stop()
	for {
		if got, _ := e.app.AppHash(); got >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for block %d: %w", h, ctx.Err())
		case <-tick.C:
		}
	}
}

// RPCURL returns the node's CometBFT RPC address ("http://127.0.0.1:port").
func (e *Embedded) RPCURL() string { return e.rpc }

// ChainID returns the chain's ID.
func (e *Embedded) ChainID() string { return e.chainID }

// App returns the node's application.
func (e *Embedded) App() *App { return e.app }

// Stop stops the node and closes the application state. It may be called
// more than once. The RPC stops first, after the requests it is answering
// (at most timeout_broadcast_tx_commit + rpcDrainMargin), so no request reads
// a store the node has closed.
func (e *Embedded) Stop() error {
	e.stopOnce.Do(func() {
		if e.rpcSrv != nil {
			if err := e.rpcSrv.shutdown(); err != nil {
				e.log.Warn("stopping the chain RPC", "err", err)
			}
		}
		if err := e.node.Stop(); err != nil {
			// Never started (or already stopped): nothing to wait for.
			e.stopErr = fmt.Errorf("stopping chain node: %w", err)
		} else {
			e.node.Wait()
		}
		if err := e.dbs.closeLeftovers(); err != nil && e.stopErr == nil {
			e.stopErr = fmt.Errorf("closing chain databases: %w", err)
		}
		if err := e.app.Close(); err != nil && e.stopErr == nil {
			e.stopErr = fmt.Errorf("closing app state: %w", err)
		}
	})
	return e.stopErr
}

// FreeLocalAddr returns "127.0.0.1:port" for a TCP port that was free a
// moment ago, below the kernel's ephemeral range so that no outbound
// connection or port-0 listener takes it before it is bound (package
// internal/freeport).
func FreeLocalAddr() (string, error) {
	a, err := freeport.Addr()
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return a, nil
}

// slogAdapter gives CometBFT a log.Logger that writes to a *slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (s slogAdapter) Debug(msg string, kv ...any) { s.l.Debug(msg, stringers(kv)...) }
func (s slogAdapter) Info(msg string, kv ...any)  { s.l.Info(msg, stringers(kv)...) }
func (s slogAdapter) Error(msg string, kv ...any) { s.l.Error(msg, stringers(kv)...) }
func (s slogAdapter) With(kv ...any) cmtlog.Logger {
	return slogAdapter{s.l.With(stringers(kv)...)}
}

// stringers replaces values with a String method by its result: CometBFT
// logs hashes as HexBytes, which slog would print as raw bytes.
func stringers(kv []any) []any {
	for i, v := range kv {
		if st, ok := v.(fmt.Stringer); ok && i%2 == 1 {
			kv[i] = st.String()
		}
	}
	return kv
}

// consensusParams are CometBFT's defaults but for block.max_bytes, -1:
// CometBFT then hands PrepareProposal the whole mempool instead of its first
// 4 MiB in arrival order, and the application bounds a block itself by
// MaxBlockWrites (PrepareProposal, ProcessProposal; no message carries more
// than about 700 bytes per write it counts, so such a block is under 3 MB).
// With the default, a few active nodes that fill their mempool allowance
// (MaxPendingPerSigner transactions each) hid every later transaction from
// PrepareProposal, and so from its turn-taking between signers, for as many
// blocks as it took to work through all but the last 4 MiB of theirs.
// CheckTx bounds the mempool PrepareProposal reads: MaxPendingPerSigner
// transactions per active node.
func consensusParams() *cmttypes.ConsensusParams {
	p := cmttypes.DefaultConsensusParams()
	p.Block.MaxBytes = -1
	return p
}
