package testnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/config"
	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/keyshare"
)

// Limits of a local network.
const (
	// MaxNodes caps --nodes: every node is a process with a libp2p host and a
	// Badger store; more than this does not fit one machine.
	MaxNodes = 256
	// MaxValidators caps --validators for the same reason (each is a
	// CometBFT process).
	MaxValidators = 64
	// MaxKeyshares caps the files dealt from --keyshares: a few per node.
	MaxKeyshares = 4 * MaxNodes
	// mnemonicAttempts bounds how many fresh mnemonics are drawn until one
	// passes envelope.CheckMnemonic; a fresh 24-word mnemonic fails its
	// entropy check with negligible probability, so one is nearly always
	// enough.
	mnemonicAttempts = 16
)

// DefaultChainID is the chain ID of a testnet unless Options says otherwise.
const DefaultChainID = "ksb-testnet"

// Options describe the network to lay out.
type Options struct {
	// Dir is the directory to create; it must not exist or be empty.
	Dir string
	// Nodes and Validators are the numbers of ksb nodes and chain validators.
	Nodes, Validators int
	// BasePort is the first port used (see the package documentation).
	BasePort int
	// Keyshares, if set, is a directory of keyshare files to deal to the
	// nodes round robin, in name order.
	Keyshares string
	// ChainID defaults to DefaultChainID; HRP to identity.DefaultHRP;
	// Replication to attest.DefaultReplication.
	ChainID     string
	HRP         string
	Replication uint32
	// BlockInterval is the validators' timeout_commit
	// (attest.DefaultBlockInterval if 0).
	BlockInterval time.Duration
	// Custody are the genesis custody parameters; zero fields take their
	// defaults (attest.CustodyParams). `ksb testnet init --epoch-blocks N`
	// sets Custody.EpochBlocks.
	Custody attest.CustodyParams
}

// Layout is what Init wrote.
type Layout struct {
	ChainID   string
	Chains    []Chain
	Nodes     []Node
	Authority string // the authority's home directory
	Vaults    []attest.VaultSpec
}

// Chain is one validator home.
type Chain struct {
	Dir string
	// RPC is the validator's CometBFT RPC URL.
	RPC string
}

// Node is one node home.
type Node struct {
	Dir     string
	Address string
	PeerID  string
	// RPC is the chain RPC URL in the node's config.toml.
	RPC string
	// Keyshares are the files dealt to the node (absolute paths).
	Keyshares []string
}

// Init lays out the network o describes. It checks everything (options,
// every keyshare file) before writing anything, and removes what it wrote
// if a later step fails.
func Init(o Options) (*Layout, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.ChainID == "" {
		o.ChainID = DefaultChainID
	}
	if o.HRP == "" {
		o.HRP = identity.DefaultHRP
	}
	files, infos, err := readKeyshares(o.Keyshares)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(o.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s: %w", o.Dir, ErrDirNotEmpty)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", o.Dir, err)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	l, err := write(o, files, infos)
	if err != nil {
		// Leave nothing half-made behind: the directory was empty.
		if rmErr := removeContents(o.Dir); rmErr != nil {
			return nil, fmt.Errorf("%w (and cleaning up: %v)", err, rmErr)
		}
		return nil, err
	}
	return l, nil
}

func (o Options) check() error {
	switch {
	case o.Dir == "":
		return fmt.Errorf("no directory: %w", ErrBadOptions)
	case o.Nodes < 1 || o.Nodes > MaxNodes:
		return fmt.Errorf("%d nodes, want 1..%d: %w", o.Nodes, MaxNodes, ErrBadOptions)
	case o.Validators < 1 || o.Validators > MaxValidators:
		return fmt.Errorf("%d validators, want 1..%d: %w", o.Validators, MaxValidators, ErrBadOptions)
	case o.BasePort < 1024 || o.BasePort+2*(o.Nodes+o.Validators)-1 > 65535:
		return fmt.Errorf("base port %d: the network needs ports %d..%d, want 1024..65535: %w",
			o.BasePort, o.BasePort, o.BasePort+2*(o.Nodes+o.Validators)-1, ErrBadOptions)
	case o.Replication > attest.MaxReplication:
		return fmt.Errorf("replication %d, at most %d: %w", o.Replication, attest.MaxReplication, ErrBadOptions)
	}
	return nil
}

// readKeyshares returns the regular files of dir in name order, each parsed.
func readKeyshares(dir string) ([]string, []keyshare.Info, error) {
	if dir == "" {
		return nil, nil, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %w", dir, ErrBadKeyshares, err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadKeyshares, err)
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			files = append(files, filepath.Join(abs, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("%s has no files: %w", abs, ErrBadKeyshares)
	}
	if len(files) > MaxKeyshares {
		return nil, nil, fmt.Errorf("%s has %d files, at most %d: %w", abs, len(files), MaxKeyshares, ErrBadKeyshares)
	}
	sort.Strings(files)
	infos := make([]keyshare.Info, len(files))
	for i, f := range files {
		if infos[i], err = keyshare.ParseFile(f); err != nil {
			return nil, nil, fmt.Errorf("%s: %w: %w", f, ErrBadKeyshares, err)
		}
	}
	return files, infos, nil
}

func write(o Options, files []string, infos []keyshare.Info) (*Layout, error) {
	port := func(i int) int { return o.BasePort + i }
	l := &Layout{ChainID: o.ChainID, Authority: filepath.Join(o.Dir, "authority")}
	for i := range o.Validators {
		l.Chains = append(l.Chains, Chain{
			Dir: filepath.Join(o.Dir, fmt.Sprintf("chain%d", i)),
			RPC: fmt.Sprintf("http://127.0.0.1:%d", port(2*i+1)),
		})
	}

	auth, err := newMnemonic(l.Authority)
	if err != nil {
		return nil, err
	}
	g := attest.Genesis{Authority: auth.PubKeyHex(), Replication: o.Replication, HRP: o.HRP, CustodyParams: o.Custody}
	for j := range o.Nodes {
		dir := filepath.Join(o.Dir, fmt.Sprintf("node%d", j))
		id, err := newMnemonic(dir)
		if err != nil {
			return nil, err
		}
		p := port(2*o.Validators + 2*j)
		c := config.Default()
		c.HRP = o.HRP
		c.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", p)}
		c.Chain.RPC = l.Chains[j%o.Validators].RPC
		c.Chain.ChainID = o.ChainID
		c.Admin.Listen = fmt.Sprintf("127.0.0.1:%d", p+1)
		if err := config.Write(filepath.Join(dir, config.FileName), c); err != nil {
			return nil, fmt.Errorf("writing %s config: %w", dir, err)
		}
		for _, sub := range []string{c.Backup.KeysharesDir, c.Store.Dir} {
			if err := os.MkdirAll(config.Path(dir, sub), 0o700); err != nil {
				return nil, err
			}
		}
		addr, err := identity.AddressFromPubKey(id.PubKey(), o.HRP)
		if err != nil {
			return nil, err
		}
		l.Nodes = append(l.Nodes, Node{Dir: dir, Address: addr, PeerID: id.PeerID().String(), RPC: c.Chain.RPC, Keyshares: []string{}})
		g.Nodes = append(g.Nodes, attest.NodeSpec{PubKey: id.PubKeyHex(), Multiaddrs: c.P2P.Listen})
	}

	// Deal the keyshares and register their vaults.
	members := map[string][]string{}
	var vaultOrder []string
	for i, f := range files {
		n := &l.Nodes[i%o.Nodes]
		n.Keyshares = append(n.Keyshares, f)
		v := infos[i].VaultPubKey
		if _, ok := members[v]; !ok {
			vaultOrder = append(vaultOrder, v)
		}
		if !contains(members[v], n.Address) {
			members[v] = append(members[v], n.Address)
		}
	}
	for _, v := range vaultOrder {
		m := len(members[v])
		g.Vaults = append(g.Vaults, attest.VaultSpec{PubKey: v, Members: members[v], Threshold: uint32((2*m + 2) / 3)})
	}
	l.Vaults = g.Vaults
	if len(files) > 0 {
		assign := map[string][]string{}
		for j, n := range l.Nodes {
			assign[fmt.Sprintf("node%d", j)] = n.Keyshares
		}
		b, err := json.MarshalIndent(assign, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(o.Dir, "assignments.json"), append(b, '\n'), 0o644); err != nil {
			return nil, err
		}
	}

	vals := make([]attest.ValidatorHome, o.Validators)
	for i, c := range l.Chains {
		vals[i] = attest.ValidatorHome{
			Dir:       c.Dir,
			P2PListen: fmt.Sprintf("127.0.0.1:%d", port(2*i)),
			RPCListen: fmt.Sprintf("127.0.0.1:%d", port(2*i+1)),
		}
	}
	err = attest.InitNetwork(attest.Network{ChainID: o.ChainID, Genesis: g, Validators: vals, BlockInterval: o.BlockInterval})
	if err != nil {
		return nil, fmt.Errorf("chain homes: %w", err)
	}
	return l, nil
}

// newMnemonic draws a fresh 24-word mnemonic that passes the envelope's
// pre-seal checks and writes it to dir/mnemonic (mode 0600).
func newMnemonic(dir string) (*identity.Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for range mnemonicAttempts {
		m, err := identity.Generate()
		if err != nil {
			return nil, fmt.Errorf("generating a mnemonic: %w", err)
		}
		if envelope.CheckMnemonic(m) != nil {
			continue
		}
		id, err := identity.New(m)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, "mnemonic")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if _, err := f.WriteString(m + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		return id, nil
	}
	return nil, fmt.Errorf("no generated mnemonic passed the envelope checks in %d attempts", mnemonicAttempts)
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// removeContents empties dir.
func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
