package attest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ksb-project/ksb/identity"
)

// DefaultReplication is the replication target r when genesis names none:
// each member's share should be held by at least 3 distinct active nodes.
const DefaultReplication = 3

// MaxReplication caps r: more holders than this per share is no longer a
// backup policy but a broadcast.
const MaxReplication = 64

// MaxGenesisSize caps the application state in a genesis file: 1024 nodes and
// 256 vaults of 256 members fit in well under 4 MiB.
const MaxGenesisSize = 4 << 20

// Genesis is the application state of a chain's genesis file (its
// "app_state"): who the authority is, the replication target, the address
// prefix, and the nodes and vaults the chain starts with.
type Genesis struct {
	// Authority is the hex 33-byte public key whose signature Churn
	// transactions need.
	Authority string `json:"authority"`
	// Replication is r, the number of distinct active holders each member's
	// share needs to count as covered; 0 means DefaultReplication.
	Replication uint32 `json:"replication,omitempty"`
	// HRP is the bech32 prefix of node addresses; "" means identity.DefaultHRP.
	HRP string `json:"hrp,omitempty"`
	// Nodes are the active nodes at genesis.
	Nodes []NodeSpec `json:"nodes,omitempty"`
	// Vaults are the vaults at genesis; their members must be among Nodes.
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

// withDefaults fills Replication and HRP.
func (g Genesis) withDefaults() Genesis {
	if g.Replication == 0 {
		g.Replication = DefaultReplication
	}
	if g.HRP == "" {
		g.HRP = identity.DefaultHRP
	}
	return g
}

// Validate checks g: a valid authority key, 1 ≤ r ≤ MaxReplication, valid
// nodes and vaults, and vault members among the nodes.
func (g Genesis) Validate() error {
	g = g.withDefaults()
	if _, err := parsePubKeyHex(g.Authority); err != nil {
		return fmt.Errorf("genesis authority: %w", err)
	}
	if g.Replication > MaxReplication {
		return fmt.Errorf("genesis replication %d, at most %d: %w", g.Replication, MaxReplication, ErrInvalid)
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
