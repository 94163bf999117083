package attest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ksb-project/ksb/identity"
)

// DefaultReplication is the replication target r when genesis names none:
// each share version is sealed into 3 copies, each assigned to its own
// holder.
const DefaultReplication = 3

// MaxReplication caps r: more holders than this per share is no longer a
// backup policy but a broadcast. It equals custody.MaxCopies.
const MaxReplication = 64

// MaxGenesisSize caps the application state in a genesis file: 1024 nodes and
// 256 vaults of 256 members fit in well under 4 MiB.
const MaxGenesisSize = 4 << 20

// Assignment strategies (CustodyParams.Strategy).
const (
	// StrategyRandom assigns holders among all eligible active nodes.
	StrategyRandom = "random"
	// StrategyVault assigns holders among the vault's eligible active
	// members.
	StrategyVault = "vault"
)

// Default custody parameters, chosen for the reference network (120 nodes,
// vaults of 40, an ECDSA and an EdDSA share per node, r = 3, a churn about
// every 3 days) at the default block interval of 1 s; docs/attestation.md
// ("Parameters") has the calculation.
//
// One epoch per churn period with rounds of one epoch challenges every
// counted custody once an epoch: 720 proofs of ~400 bytes per churn period,
// about 8.5 % of ADR 004's 20-party bytes and 4.4 % of its 40-party bytes
// (BenchmarkChurnChainBytes measures it). A lost copy is stale at the next
// epoch and failed one epoch later (2R = 2 epochs); a holder that lost
// everything is failed within 2 epochs. Shorter epochs find dead holders
// sooner at more bytes: docs/performance.md has the curve.
const (
	// DefaultEpochBlocks: 72 h of 1 s blocks, THORChain's churn interval.
	DefaultEpochBlocks = 259_200
	// DefaultRoundEpochs: every counted custody is challenged every epoch.
	DefaultRoundEpochs = 1
	// DefaultProofWindow: a holder has an hour of blocks to answer; proving
	// takes it milliseconds, so the hour is for restarts and a busy chain.
	DefaultProofWindow = 3_600
	// DefaultAttestWindow: an assigned holder that has not attested within
	// an hour of blocks (the owner pushes within seconds of its commit) fails
	// and is replaced.
	DefaultAttestWindow = 3_600
	// DefaultRepairWindow: a repair source that has not delivered within
	// 5 minutes of blocks is replaced by another.
	DefaultRepairWindow = 300
	// DefaultRetentionBlocks: superseded and retired commitments stay in
	// state, and holders keep their copies, for a day of blocks after they
	// stop counting.
	DefaultRetentionBlocks = 86_400
)

// MaxWindow caps every block count of CustodyParams: 2^40 blocks is
// 35,000 years of 1 s blocks, and keeps height + window far from overflow.
const MaxWindow = 1 << 40

// MaxRoundEpochs caps the round length.
const MaxRoundEpochs = 1 << 20

// CustodyParams are the genesis parameters of custody: how holders are
// assigned, how often they are challenged, and how long the chain waits.
// Counts of blocks are block heights apart. In a Genesis, a zero field
// takes its default (Default… constants; ProofWindow: the smaller of
// DefaultProofWindow and half of EpochBlocks; DrillInterval: half of
// EpochBlocks).
type CustodyParams struct {
	// Strategy is StrategyRandom or StrategyVault.
	Strategy string `json:"strategy,omitempty"`
	// EpochBlocks is the length of an epoch; epoch e starts at height
	// e·EpochBlocks + 1, when its challenges are derived.
	EpochBlocks int64 `json:"epoch_blocks,omitempty"`
	// RoundEpochs is R: each counted custody is challenged once per round
	// of R epochs (custody.Challenges).
	RoundEpochs uint64 `json:"round_epochs,omitempty"`
	// ProofWindow: a challenge of the epoch starting at height h may be
	// answered in blocks h+1 to h+ProofWindow; 1 ≤ ProofWindow < EpochBlocks.
	ProofWindow int64 `json:"proof_window,omitempty"`
	// AttestWindow: a custody not attested by the end of block
	// assigned+AttestWindow fails (and is replaced).
	AttestWindow int64 `json:"attest_window,omitempty"`
	// RepairWindow: a repair's source that has not delivered (the
	// replacement has not attested) by the end of block
	// drawn+RepairWindow is replaced by a new one.
	RepairWindow int64 `json:"repair_window,omitempty"`
	// RetentionBlocks: a superseded or retired commitment and its
	// custodies (and a retired vault) are deleted RetentionBlocks after.
	RetentionBlocks int64 `json:"retention_blocks,omitempty"`
	// DrillInterval: the chain accepts at most one Drill per owner per
	// DrillInterval blocks.
	DrillInterval int64 `json:"drill_interval,omitempty"`
}

func (c CustodyParams) withDefaults() CustodyParams {
	if c.Strategy == "" {
		c.Strategy = StrategyRandom
	}
	if c.EpochBlocks == 0 {
		c.EpochBlocks = DefaultEpochBlocks
	}
	if c.RoundEpochs == 0 {
		c.RoundEpochs = DefaultRoundEpochs
	}
	if c.ProofWindow == 0 {
		c.ProofWindow = max(1, min(DefaultProofWindow, c.EpochBlocks/2))
	}
	if c.AttestWindow == 0 {
		c.AttestWindow = DefaultAttestWindow
	}
	if c.RepairWindow == 0 {
		c.RepairWindow = DefaultRepairWindow
	}
	if c.RetentionBlocks == 0 {
		c.RetentionBlocks = DefaultRetentionBlocks
	}
	if c.DrillInterval == 0 {
		c.DrillInterval = max(1, c.EpochBlocks/2)
	}
	return c
}

func (c CustodyParams) validate() error {
	if c.Strategy != StrategyRandom && c.Strategy != StrategyVault {
		return fmt.Errorf("strategy %q: want %q or %q: %w", c.Strategy, StrategyRandom, StrategyVault, ErrInvalid)
	}
	for _, w := range []struct {
		name string
		v    int64
		min  int64
	}{
		{"epoch_blocks", c.EpochBlocks, 2},
		{"proof_window", c.ProofWindow, 1},
		{"attest_window", c.AttestWindow, 1},
		{"repair_window", c.RepairWindow, 1},
		{"retention_blocks", c.RetentionBlocks, 1},
		{"drill_interval", c.DrillInterval, 1},
	} {
		if w.v < w.min || w.v > MaxWindow {
			return fmt.Errorf("%s %d: want %d..%d: %w", w.name, w.v, w.min, int64(MaxWindow), ErrInvalid)
		}
	}
	if c.ProofWindow >= c.EpochBlocks {
		return fmt.Errorf("proof_window %d must be shorter than epoch_blocks %d: %w", c.ProofWindow, c.EpochBlocks, ErrInvalid)
	}
	if c.RoundEpochs < 1 || c.RoundEpochs > MaxRoundEpochs {
		return fmt.Errorf("round_epochs %d: want 1..%d: %w", c.RoundEpochs, MaxRoundEpochs, ErrInvalid)
	}
	return nil
}

// Params are the chain's fixed parameters, from genesis; the /params query
// returns them, and they are stored as this JSON at KeyParams.
type Params struct {
	ChainID string `json:"chain_id"`
	// Authority is the authority's 33-byte key, hex; it is account 0.
	Authority        string `json:"authority"`
	AuthorityAddress string `json:"authority_address"`
	// Replication is r: copies per share version, holders per commitment.
	Replication uint32 `json:"replication"`
	HRP         string `json:"hrp"`
	CustodyParams
}

// Genesis is the application state of a chain's genesis file (its
// "app_state"): who the authority is, the replication target, the custody
// parameters, the address prefix, and the nodes and vaults the chain starts
// with.
type Genesis struct {
	// Authority is the hex 33-byte public key whose signature Churn
	// transactions need (account 0).
	Authority string `json:"authority"`
	// Replication is r, the number of copies and holders of each share
	// version; 0 means DefaultReplication.
	Replication uint32 `json:"replication,omitempty"`
	// HRP is the bech32 prefix of node addresses; "" means identity.DefaultHRP.
	HRP string `json:"hrp,omitempty"`
	// CustodyParams: zero fields take their defaults.
	CustodyParams
	// Nodes are the active nodes at genesis; they get accounts 1, 2, … in
	// this order.
	Nodes []NodeSpec `json:"nodes,omitempty"`
	// Vaults are the vaults at genesis, with indices 1, 2, … in this order;
	// their members must be among Nodes.
	Vaults []VaultSpec `json:"vaults,omitempty"`
}

// ParseGenesis decodes genesis app state JSON, refusing unknown fields, and
// validates it.
func ParseGenesis(b []byte) (Genesis, error) {
	var g Genesis
	if len(b) > MaxGenesisSize {
		return g, fmt.Errorf("genesis app state of %d bytes, at most %d: %w", len(b), MaxGenesisSize, ErrTooLarge)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, fmt.Errorf("genesis app state: %w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return g, fmt.Errorf("genesis app state: trailing data: %w", ErrInvalid)
	}
	if err := g.Validate(); err != nil {
		return g, err
	}
	return g, nil
}

// withDefaults fills Replication, HRP and the custody parameters.
func (g Genesis) withDefaults() Genesis {
	if g.Replication == 0 {
		g.Replication = DefaultReplication
	}
	if g.HRP == "" {
		g.HRP = identity.DefaultHRP
	}
	g.CustodyParams = g.CustodyParams.withDefaults()
	return g
}

// Validate checks g: a valid authority key, 1 ≤ r ≤ MaxReplication, custody
// parameters in range, valid nodes and vaults, and vault members among the
// nodes.
func (g Genesis) Validate() error {
	g = g.withDefaults()
	if _, err := parsePubKeyHex(g.Authority); err != nil {
		return fmt.Errorf("genesis authority: %w", err)
	}
	if g.Replication > MaxReplication {
		return fmt.Errorf("genesis replication %d, at most %d: %w", g.Replication, MaxReplication, ErrInvalid)
	}
	if err := g.CustodyParams.validate(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	if len(g.Nodes)+len(g.Vaults) == 0 {
		return nil
	}
	c := &Churn{AddNodes: g.Nodes, CreateVaults: g.Vaults}
	if err := c.validate(g.HRP); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	nodes := make(map[string]bool, len(g.Nodes))
	for _, n := range g.Nodes {
		a, _ := n.validate(g.HRP) // validated above
		nodes[a] = true
	}
	for _, v := range g.Vaults {
		for _, m := range v.Members {
			if !nodes[m] {
				return fmt.Errorf("genesis: vault %s: member %s is not a genesis node: %w", v.PubKey, m, ErrInvalid)
			}
		}
	}
	return nil
}

// Epoch returns the epoch of block height h (h ≥ 1): (h−1) / EpochBlocks.
func (p *Params) Epoch(h int64) uint64 {
	if h < 1 {
		return 0
	}
	return uint64((h - 1) / p.EpochBlocks)
}

// EpochStart returns the first block of epoch e.
func (p *Params) EpochStart(e uint64) int64 { return int64(e)*p.EpochBlocks + 1 }
