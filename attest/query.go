package attest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/ksb-project/ksb/identity"
)

// Node is an active node, as the /nodes query returns it.
type Node struct {
	Address    string   `json:"address"`
	PubKey     string   `json:"pubkey"`
	PeerID     string   `json:"peer_id"`
	Multiaddrs []string `json:"multiaddrs"`
	// Height is the block that added the node (0: genesis).
	Height int64 `json:"height"`
}

// Vault is a vault, as the /vaults query returns it.
type Vault struct {
	PubKey    string   `json:"pubkey"`
	Members   []string `json:"members"`
	Threshold uint32   `json:"threshold"`
	Height    int64    `json:"height"`
	Retired   bool     `json:"retired"`
	// RetiredHeight is the block that retired the vault, if Retired.
	RetiredHeight int64 `json:"retired_height,omitempty"`
}

// Attestation is one holder's statement that it keeps one blob.
type Attestation struct {
	Owner  string `json:"owner"`
	Vault  string `json:"vault"`
	Holder string `json:"holder"`
	// Digest is the sha256 of the sealed blob, lower-case hex.
	Digest string `json:"digest"`
	Size   uint64 `json:"size"`
	// Height is the block of the holder's latest Attest of this blob.
	Height int64 `json:"height"`
}

// Coverage is the answer of /coverage and /coverage/{vault}.
type Coverage struct {
	// Height is the block the answer reflects.
	Height int64 `json:"height"`
	// Replication is the chain's replication target r.
	Replication uint32          `json:"replication"`
	Vaults      []VaultCoverage `json:"vaults"`
}

// VaultCoverage tells whether one vault is recoverable from backups.
//
// For each member, Holders are the distinct active nodes that attest a blob
// of that member for this vault (nodes that churned out do not count). A
// member is covered when it has at least Replication holders; the vault is
// Safe when Covered ≥ Threshold, i.e. even if every member machine were lost
// at once, enough shares could be recovered to sign.
type VaultCoverage struct {
	PubKey      string           `json:"pubkey"`
	Threshold   uint32           `json:"threshold"`
	Replication uint32           `json:"replication"`
	Covered     int              `json:"covered"`
	Safe        bool             `json:"safe"`
	Members     []MemberCoverage `json:"members"`
}

// MemberCoverage is one member's holders.
type MemberCoverage struct {
	Address string   `json:"address"`
	Holders []string `json:"holders"`
}

// Sequence is the answer of /sequence/{address}.
type Sequence struct {
	Address  string `json:"address"`
	Sequence uint64 `json:"sequence"`
}

type nodesAnswer struct {
	Nodes []Node `json:"nodes"`
}

type vaultsAnswer struct {
	Vaults []Vault `json:"vaults"`
}

type attestationsAnswer struct {
	Attestations []Attestation `json:"attestations"`
}

// Query answers the JSON queries over the last committed state (see the
// package documentation for the paths). An unknown path or a bad argument is
// a non-zero code with a log, never an error.
func (a *App) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	a.mu.Lock()
	p, height := a.params, a.height
	a.mu.Unlock()
	var v any
	err := a.view(func(s kv) error {
		var err error
		v, err = query(s, p, req.Path)
		return err
	})
	if err == nil && v == nil {
		err = fmt.Errorf("%q: %w", req.Path, ErrBadQuery)
	}
	if err != nil {
		return &abci.QueryResponse{Code: errCode(err), Log: err.Error(), Codespace: Codespace, Height: height}, nil
	}
	if c, ok := v.(*Coverage); ok {
		c.Height = height
	}
	b, err := json.Marshal(v)
	if err != nil {
		return &abci.QueryResponse{Code: CodeInternal, Log: err.Error(), Codespace: Codespace, Height: height}, nil
	}
	return &abci.QueryResponse{Code: CodeOK, Key: []byte(req.Path), Value: b, Height: height}, nil
}

func query(s kv, p *Params, path string) (any, error) {
	if p == nil {
		return nil, fmt.Errorf("chain not initialised: %w", ErrNotFound)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case path == "/params":
		return p, nil
	case path == "/nodes":
		nodes, err := activeNodes(s)
		return &nodesAnswer{Nodes: nodes}, err
	case path == "/vaults":
		vaults, err := allVaults(s)
		return &vaultsAnswer{Vaults: vaults}, err
	case path == "/coverage":
		return coverage(s, p, "")
	case len(parts) == 2 && parts[0] == "coverage":
		if err := validVaultKey(parts[1]); err != nil {
			return nil, err
		}
		return coverage(s, p, parts[1])
	case len(parts) == 2 && parts[0] == "sequence":
		if err := validAddress(parts[1], p.HRP); err != nil {
			return nil, err
		}
		n, err := getSeq(s, parts[1])
		return &Sequence{Address: parts[1], Sequence: n}, err
	case len(parts) == 3 && parts[0] == "attestations" && (parts[1] == "owner" || parts[1] == "holder"):
		if err := validAddress(parts[2], p.HRP); err != nil {
			return nil, err
		}
		atts, err := attestations(s, parts[1] == "owner", parts[2])
		return &attestationsAnswer{Attestations: atts}, err
	}
	return nil, nil
}

func activeNodes(s kv) ([]Node, error) {
	nodes := []Node{}
	err := s.scan(prefNode, func(key string, val []byte) error {
		var r nodeRecord
		if err := json.Unmarshal(val, &r); err != nil {
			return fmt.Errorf("%s: %w: %w", key, ErrInternal, err)
		}
		n := Node{Address: strings.TrimPrefix(key, prefNode), PubKey: r.PubKey, Multiaddrs: r.Multiaddrs, Height: r.Height}
		if pub, err := parsePubKeyHex(r.PubKey); err == nil {
			if id, err := identity.PeerIDFromPubKey(pub); err == nil {
				n.PeerID = id.String()
			}
		}
		nodes = append(nodes, n)
		return nil
	})
	return nodes, err
}

func allVaults(s kv) ([]Vault, error) {
	vaults := []Vault{}
	err := s.scan(prefVault, func(key string, val []byte) error {
		var r vaultRecord
		if err := json.Unmarshal(val, &r); err != nil {
			return fmt.Errorf("%s: %w: %w", key, ErrInternal, err)
		}
		vaults = append(vaults, Vault{
			PubKey: strings.TrimPrefix(key, prefVault), Members: r.Members, Threshold: r.Threshold,
			Height: r.Height, Retired: r.Retired, RetiredHeight: r.RetiredHeight,
		})
		return nil
	})
	return vaults, err
}

func attestations(s kv, byOwner bool, addr string) ([]Attestation, error) {
	atts := []Attestation{}
	prefix := prefAtt + addr + "/"
	if byOwner {
		prefix = prefOwn + addr + "/"
	}
	err := s.scan(prefix, func(key string, val []byte) error {
		a, b, vault, ok := splitKey3(key, prefix[:len(prefix)-len(addr)-1])
		if !ok {
			return fmt.Errorf("state key %q: %w", key, ErrInternal)
		}
		att := Attestation{Holder: a, Owner: b, Vault: vault}
		if byOwner {
			att.Owner, att.Holder = a, b
			var err error
			if val, err = s.get(attKey(att.Holder, att.Owner, vault)); err != nil {
				return err
			}
		}
		var r attRecord
		if err := json.Unmarshal(val, &r); err != nil {
			return fmt.Errorf("%s: %w: %w", key, ErrInternal, err)
		}
		att.Digest, att.Size, att.Height = r.Digest, r.Size, r.Height
		atts = append(atts, att)
		return nil
	})
	return atts, err
}

// coverage computes the coverage of one vault (or of every live vault when
// vault is "").
func coverage(s kv, p *Params, vault string) (*Coverage, error) {
	vaults, err := allVaults(s)
	if err != nil {
		return nil, err
	}
	active := map[string]bool{}
	nodes, err := activeNodes(s)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		active[n.Address] = true
	}
	// Each member's attestations are read once, whatever the number of
	// vaults it is a member of: active holders by vault, per member. (Read
	// once per vault instead, a query over V vaults of a member with A
	// attestations cost V×A reads: anyone can ask for /coverage over RPC.)
	byMember := map[string]map[string][]string{}
	holdersOf := func(m string) (map[string][]string, error) {
		if hv, ok := byMember[m]; ok {
			return hv, nil
		}
		hv := map[string][]string{}
		err := s.scan(prefOwn+m+"/", func(key string, _ []byte) error {
			owner, holder, vk, ok := splitKey3(key, prefOwn)
			if !ok || owner != m {
				return fmt.Errorf("state key %q: %w", key, ErrInternal)
			}
			if active[holder] {
				hv[vk] = append(hv[vk], holder)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		byMember[m] = hv
		return hv, nil
	}
	c := &Coverage{Replication: p.Replication, Vaults: []VaultCoverage{}}
	for _, v := range vaults {
		if vault != "" && v.PubKey != vault || vault == "" && v.Retired {
			continue
		}
		vc := VaultCoverage{PubKey: v.PubKey, Threshold: v.Threshold, Replication: p.Replication, Members: []MemberCoverage{}}
		for _, m := range v.Members {
			hv, err := holdersOf(m)
			if err != nil {
				return nil, err
			}
			holders := sortedUnique(append([]string{}, hv[v.PubKey]...))
			if len(holders) >= int(p.Replication) {
				vc.Covered++
			}
			vc.Members = append(vc.Members, MemberCoverage{Address: m, Holders: holders})
		}
		vc.Safe = vc.Covered >= int(v.Threshold)
		c.Vaults = append(c.Vaults, vc)
	}
	if vault != "" && len(c.Vaults) == 0 {
		return nil, fmt.Errorf("vault %s: %w", vault, ErrNotFound)
	}
	sort.Slice(c.Vaults, func(i, j int) bool { return c.Vaults[i].PubKey < c.Vaults[j].PubKey })
	return c, nil
}
