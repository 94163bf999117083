package sim

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
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
	"github.com/ksb-project/ksb/keyshare"
	"github.com/ksb-project/ksb/node"
)

const (
	// portAttempts bounds the draws of a port free for both TCP and UDP.
	portAttempts = 32

	// stopTimeout bounds one node's clean stop (its in-flight pushes finish
	// within p2p.PushTimeout).
	stopTimeout = time.Minute
)

// member is one simulated node.
type member struct {
	index    int
	home     string
	mnemonic string
	id       *identity.Identity
	address  string
	cfg      config.Node
	traffic  *traffic
	// shares maps file names (localstate-<vault>.json) to what keygen
	// writes for this node.
	shares map[string][]byte

	mu     sync.Mutex
	node   *node.Node
	cancel context.CancelFunc
	done   chan error
}

// vault is one keygen's vault: its key and members (indices into the
// network's members).
type vault struct {
	pubKey    string
	members   []int
	threshold uint32
}

// network is the laid-out simulation.
type network struct {
	cfg       Config
	dir       string
	members   []*member
	vaults    []vault
	authority *identity.Identity
	chain     *attest.Embedded
	client    *attest.Client
	ports     *portPicker
}

// keygenGroups splits n nodes into the fewest groups of at most size
// members, as even as possible: ⌈n/size⌉ groups.
func keygenGroups(n, size int) [][]int {
	g := (n + size - 1) / size
	groups := make([][]int, g)
	for i := range n {
		groups[i%g] = append(groups[i%g], i)
	}
	return groups
}

// layout creates every node's identity, home and configuration, and the
// shares keygen writes: the nodes are split into ⌈N/MaxVaultMembers⌉ groups,
// each of which runs an ECDSA and an EdDSA keygen (two vaults, as THORChain
// has a secp256k1 and an ed25519 key per asgard), so every node has two
// shares.
func layout(cfg Config, dir string) (*network, error) {
	n := &network{cfg: cfg, dir: dir, ports: newPortPicker(cfg.Seed)}
	authMn, err := envelope.GenerateMnemonic()
	if err != nil {
		return nil, err
	}
	if n.authority, err = identity.New(authMn); err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		m, err := n.newMember(i)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		n.members = append(n.members, m)
	}
	for g, group := range keygenGroups(cfg.Nodes, cfg.MaxVaultMembers) {
		for a, synth := range []func(int, uint64) ([][]byte, error){fixtures.SynthECDSAVault, fixtures.SynthEdDSAVault} {
			files, err := synth(len(group), cfg.Seed+uint64(2*g+a))
			if err != nil {
				return nil, fmt.Errorf("keygen %d: %w", g, err)
			}
			info, err := keyshare.Parse(files[0])
			if err != nil {
				return nil, fmt.Errorf("keygen %d: %w", g, err)
			}
			v := vault{pubKey: info.VaultPubKey, members: group, threshold: uint32(math.Ceil(2 * float64(len(group)) / 3))}
			for p, idx := range group {
				n.members[idx].shares["localstate-"+v.pubKey+".json"] = files[p]
			}
			n.vaults = append(n.vaults, v)
		}
	}
	return n, nil
}

func (n *network) newMember(i int) (*member, error) {
	mn, err := envelope.GenerateMnemonic()
	if err != nil {
		return nil, err
	}
	id, err := identity.New(mn)
	if err != nil {
		return nil, err
	}
	home := filepath.Join(n.dir, "node"+strconv.Itoa(i))
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	port, err := n.ports.pick(n.cfg.Transport)
	if err != nil {
		return nil, err
	}
	c := config.Default()
	c.P2P.Listen = nil
	if n.cfg.Transport == TransportTCP || n.cfg.Transport == TransportBoth {
		c.P2P.Listen = append(c.P2P.Listen, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	}
	if n.cfg.Transport == TransportQUIC || n.cfg.Transport == TransportBoth {
		c.P2P.Listen = append(c.P2P.Listen, fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port))
	}
	c.P2P.HeartbeatInterval = config.Duration{Duration: n.cfg.HeartbeatInterval}
	c.Chain.ChainID = ChainID
	c.Chain.PollInterval = config.Duration{Duration: n.cfg.PollInterval}
	c.Chain.BatchInterval = config.Duration{Duration: n.cfg.BatchInterval}
	c.Backup.Replication = n.cfg.Replication
	c.Backup.WorkFactor = n.cfg.WorkFactor
	c.Backup.AllowLowWorkFactor = n.cfg.WorkFactor < envelope.MinWorkFactor
	// No admin endpoint: nobody reads it, and at 200 nodes it would be 200
	// more listeners and their goroutines in the measurement.
	c.Admin.Listen = ""
	c.Log.Format = "text"
	return &member{
		index: i, home: home, mnemonic: mn, id: id, address: id.Address(c.HRP),
		cfg: c, traffic: newTraffic(), shares: map[string][]byte{},
	}, nil
}

// Listen ports are drawn from [minPort, maxPort), below Linux's default
// ephemeral range (32768–60999): a port chosen at layout is bound only when
// its node starts, up to a minute later at 200 nodes, and in the ephemeral
// range an outgoing socket (a QUIC dial, an RPC client) may take it in
// between.
const (
	minPort = 10000
	maxPort = 32768
)

// portPicker hands out distinct ports that were free a moment ago.
type portPicker struct {
	rng  *rand.Rand
	used map[int]bool
}

func newPortPicker(seed uint64) *portPicker {
	return &portPicker{rng: rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano()))), used: map[int]bool{}}
}

// pick returns a port on 127.0.0.1 free for the transport's protocols (TCP,
// UDP or both).
func (pp *portPicker) pick(t Transport) (int, error) {
	for range portAttempts {
		port := minPort + pp.rng.IntN(maxPort-minPort)
		if pp.used[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if t != TransportQUIC {
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				continue
			}
			l.Close()
		}
		if t != TransportTCP {
			c, err := net.ListenPacket("udp4", addr)
			if err != nil {
				continue
			}
			c.Close()
		}
		pp.used[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port for %s in %d draws", t, portAttempts)
}

// genesis names the authority, r and the short custody epochs (every
// custody challenged every epoch); the nodes join later (see runner.join)
// and keygen creates the vaults. The other custody parameters keep their
// defaults.
func (n *network) genesis() attest.Genesis {
	return attest.Genesis{
		Authority: n.authority.PubKeyHex(), Replication: uint32(n.cfg.Replication),
		CustodyParams: attest.CustodyParams{EpochBlocks: n.cfg.EpochBlocks, ProofWindow: n.cfg.ProofWindow, RoundEpochs: 1},
	}
}

// startNode starts member i's daemon.
func (n *network) startNode(ctx context.Context, m *member, logger *slog.Logger) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Chain.RPC = n.chain.RPCURL()
	nd, err := node.New(ctx, node.Options{
		Home: m.home, Config: m.cfg, Mnemonic: m.mnemonic,
		Logger: logger.With("node", m.index),
		// A registry of its own without the Go and process collectors
		// node.New would add: they describe the whole process, N times.
		Registry:          prometheus.NewRegistry(),
		BandwidthReporter: m.traffic,
	})
	if err != nil {
		return fmt.Errorf("node %d: %w", m.index, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(rctx) }()
	m.node, m.cancel, m.done = nd, cancel, done
	return nil
}

// stopNode stops member m's daemon cleanly.
func stopNode(m *member) error {
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
		err = fmt.Errorf("node %d did not stop within %v", m.index, stopTimeout)
	}
	m.node, m.cancel, m.done = nil, nil, nil
	return err
}

// placeShares writes m's share files into its keyshare directory, as
// keygen does at the end of a churn.
func placeShares(m *member) error {
	dir := config.Path(m.home, m.cfg.Backup.KeysharesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range m.shares {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
