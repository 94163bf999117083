package attest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/ksb-project/ksb/attest/attestpb"
	"github.com/ksb-project/ksb/custody"
)

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
// For each member, the commitment is its newest for this vault; Holders
// are the distinct holders of that commitment's counted custodies:
// attested, not failed, held by an active node. A member is covered with at
// least Replication holders; the vault is Safe when Covered ≥ Threshold,
// i.e. even if every member machine were lost at once, enough shares could
// be recovered to sign. custody.Coverage computes it, for the app and for a
// verifying client alike.
type VaultCoverage struct {
	PubKey      string           `json:"pubkey"`
	Index       uint64           `json:"index"`
	Threshold   uint32           `json:"threshold"`
	Replication uint32           `json:"replication"`
	Covered     int              `json:"covered"`
	Safe        bool             `json:"safe"`
	Retired     bool             `json:"retired,omitempty"`
	Members     []MemberCoverage `json:"members"`
}

// MemberCoverage is one member's backups.
type MemberCoverage struct {
	Address string `json:"address"`
	// Holders are the counted holders' addresses, sorted.
	Holders []string `json:"holders"`
	// Commitment is the member's newest commitment for the vault (0: none)
	// and CommitHeight its block.
	Commitment   uint64 `json:"commitment,omitempty"`
	CommitHeight int64  `json:"commit_height,omitempty"`
	Covered      bool   `json:"covered"`
	// Custody has one entry per slot of the commitment, counted or not.
	Custody []CustodyCoverage `json:"custody"`
	// LastDrillHeight is the block of the member's last restore drill of
	// this commitment (0: none), LastDrillOK its outcome.
	LastDrillHeight int64 `json:"last_drill_height"`
	LastDrillOK     bool  `json:"last_drill_ok"`
}

// CustodyCoverage is one custody as coverage shows it.
type CustodyCoverage struct {
	Holder string `json:"holder"`
	// Status is "pending", "fresh", "stale" or "failed".
	Status          string `json:"status"`
	LastProofHeight int64  `json:"last_proof_height"`
	CommitHeight    int64  `json:"commit_height"`
	Slot            uint64 `json:"slot"`
	CopyIndex       int    `json:"copy"`
	Attested        bool   `json:"attested"`
	// Counted: it adds its holder to Holders.
	Counted bool `json:"counted"`
}

// StateGetter returns the value of one state key, nil if it is absent. The
// app reads its own state with one; a verifying client passes one that
// fetches each key with its proof and verifies it against a trusted app
// hash, so the coverage it computes rests on verified records only.
type StateGetter func(key string) ([]byte, error)

// CoverageKeys lists the key chain ComputeVaultCoverage reads, in order; a
// verifying client reads exactly these, each named by the value of one read
// before: KeyVault, then per member KeyLatest, KeyCommitment and KeyCustody
// for each slot, then KeyNode for each distinct holder.
const CoverageKeys = "vault → latest(member, index) → commitment → custody(commitment, slot) → node(holder)"

// ComputeVaultCoverage computes the coverage of the vault with key pubkey,
// reading only the keys CoverageKeys names, through get, with chain
// parameters p. An unknown vault is ErrNotFound.
func ComputeVaultCoverage(get StateGetter, p *Params, pubkey string) (*VaultCoverage, error) {
	v := &attestpb.VaultRecord{}
	ok, err := getVia(get, KeyVault(pubkey), v)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("vault %s: %w", pubkey, ErrNotFound)
	}
	in := custody.CoverageInput{Members: v.Members, Threshold: int(v.Threshold), Copies: int(p.Replication)}
	holders := map[string]bool{}
	for _, m := range v.Members {
		b, err := get(KeyLatest(m, v.Index))
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		id, err := parseDecimal(KeyLatest(m, v.Index), b)
		if err != nil {
			return nil, err
		}
		c := &attestpb.CommitmentRecord{}
		ok, err := getVia(get, KeyCommitment(id), c)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("member %s: latest commitment %d is absent: %w", m, id, ErrInternal)
		}
		rec := custody.CommitmentRecord{
			ID: id, Owner: c.Owner, Height: c.Height, Superseded: c.SupersededHeight != 0,
			LastDrillHeight: c.LastDrillHeight, LastDrillOK: c.LastDrillOk,
		}
		for slot := uint64(0); slot < uint64(c.Slots); slot++ {
			cu := &attestpb.CustodyRecord{}
			ok, err := getVia(get, KeyCustody(CustodyID{Commitment: id, Slot: slot}), cu)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			rec.Custodies = append(rec.Custodies, custody.CustodyRecord{
				Slot: slot, CopyIndex: int(cu.Copy), Holder: cu.Holder, Status: custody.Status(cu.Status),
				Attested: cu.AttestHeight != 0, LastProofHeight: cu.LastProofHeight,
			})
			holders[cu.Holder] = true
		}
		in.Commitments = append(in.Commitments, rec)
	}
	names := make([]string, 0, len(holders))
	for h := range holders {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		b, err := get(KeyNode(h))
		if err != nil {
			return nil, err
		}
		if b != nil {
			in.Active = append(in.Active, h)
		}
	}
	if in.Copies < 1 {
		in.Copies = 1
	}
	vc, err := custody.Coverage(in)
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w: %w", pubkey, ErrInternal, err)
	}
	out := &VaultCoverage{
		PubKey: pubkey, Index: v.Index, Threshold: v.Threshold, Replication: p.Replication,
		Covered: vc.Covered, Safe: vc.Safe, Retired: v.RetiredHeight != 0, Members: []MemberCoverage{},
	}
	for _, m := range vc.Members {
		mc := MemberCoverage{
			Address: m.Member, Holders: m.Holders, Commitment: m.Commitment, CommitHeight: m.CommitHeight,
			Covered: m.Covered, Custody: []CustodyCoverage{},
			LastDrillHeight: m.LastDrillHeight, LastDrillOK: m.LastDrillOK,
		}
		for _, c := range m.Custody {
			mc.Custody = append(mc.Custody, CustodyCoverage{
				Holder: c.Holder, Status: c.Status.String(), LastProofHeight: c.LastProofHeight,
				CommitHeight: c.CommitHeight, Slot: c.Slot, CopyIndex: c.CopyIndex,
				Attested: c.Attested, Counted: c.Counted,
			})
		}
		out.Members = append(out.Members, mc)
	}
	return out, nil
}

func getVia(get StateGetter, k string, m proto.Message) (bool, error) {
	b, err := get(k)
	if err != nil || b == nil {
		return false, err
	}
	return true, decodeRec(k, b, m)
}

func parseDecimal(k string, b []byte) (uint64, error) {
	var n uint64
	if len(b) == 0 || len(b) > 20 {
		return 0, fmt.Errorf("decoding %s: %w", k, ErrInternal)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("decoding %s: %w", k, ErrInternal)
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

// coverage computes the coverage of one vault (or of every live vault when
// vault is "") from the state s: ComputeCoverage over s's reads.
func coverage(s kv, p *Params, vault string) (*Coverage, error) {
	return ComputeCoverage(s.get, p, vault)
}

// ComputeCoverage computes the coverage of the vault with key vault, or of
// every live vault when vault is "", reading only keys it can name, through
// get, with chain parameters p (ReadParams). The vaults are listed from
// KeyCounters (next_vault) and KeyVaultIndex(1 … next_vault−1) — an index
// whose key is absent belongs to a deleted vault —, never by a scan, so a
// client that verifies each read gets an answer no RPC could have left a
// vault out of. Vaults are in public-key order; Height is left 0 for the
// caller to set. The app's /coverage and `ksb coverage --verify` both run it.
func ComputeCoverage(get StateGetter, p *Params, vault string) (*Coverage, error) {
	c := &Coverage{Replication: p.Replication, Vaults: []VaultCoverage{}}
	if vault != "" {
		vc, err := ComputeVaultCoverage(get, p, vault)
		if err != nil {
			return nil, err
		}
		c.Vaults = append(c.Vaults, *vc)
		return c, nil
	}
	cnt := &attestpb.Counters{}
	ok, err := getVia(get, keyCounters, cnt)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s is absent: %w", keyCounters, ErrNotFound)
	}
	var keys []string
	for i := uint64(1); i < cnt.NextVault; i++ {
		pk, err := get(KeyVaultIndex(i))
		if err != nil {
			return nil, err
		}
		if pk == nil {
			continue // deleted
		}
		v := &attestpb.VaultRecord{}
		ok, err := getVia(get, KeyVault(string(pk)), v)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("vault index %d names %s, which is absent: %w", i, pk, ErrInternal)
		}
		if v.RetiredHeight == 0 {
			keys = append(keys, string(pk))
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		vc, err := ComputeVaultCoverage(get, p, k)
		if err != nil {
			return nil, err
		}
		c.Vaults = append(c.Vaults, *vc)
	}
	return c, nil
}

// ReadParams reads the chain parameters (KeyParams, JSON) through get.
func ReadParams(get StateGetter) (*Params, error) {
	b, err := get(keyParams)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%s is absent: chain not initialised: %w", keyParams, ErrNotFound)
	}
	p := &Params{}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("decoding %s: %w: %w", keyParams, ErrInternal, err)
	}
	return p, nil
}

// DecodeStateValue turns the bytes the state tree holds for a key (what
// /state returns and its proof proves) into the value the application reads:
// the stored form of an empty value, the single byte 0x00, is empty; every
// other value is itself. A nil value (absent) stays nil.
func DecodeStateValue(v []byte) []byte {
	if v == nil {
		return nil
	}
	return decodeValue(v)
}

func hexRoot(b []byte) string { return hex.EncodeToString(b) }
