package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/field"
)

// Limits on transactions. DecodeTx checks the encoded size before protobuf
// decoding allocates anything (so what it allocates is bounded by
// MaxTxSize), then every count and length below before the message is used.
const (
	// MaxTxSize caps an encoded transaction. CometBFT's mempool refuses
	// transactions over 1 MiB by default; half of that holds a Prove of
	// MaxProofs proofs of the largest copies (about 480 bytes each) with room
	// to spare.
	MaxTxSize = 512 << 10

	// MaxEntries caps the custodies of one Attest or Release. A holder of the
	// reference network (120 nodes, 240 share versions per churn, r = 3)
	// holds about 6 custodies per churn; 1024 is a whole network's worth.
	MaxEntries = 1024

	// MaxShares caps the share versions of one Commit: a node is a member of
	// a handful of vaults (an ECDSA and an EdDSA one per churn on THORChain).
	MaxShares = 64

	// MaxProofs caps the proofs of one Prove: a holder gets one challenge per
	// counted custody per epoch at most, and 512 × ~480 bytes stays within
	// MaxTxSize.
	MaxProofs = 512

	// MaxSlots is the number of slots a commitment can have: slots 0..r-1 at
	// commit time, then one per repair. A custody id packs the slot into 8
	// bits (CustodyID), and a commitment that needed 250 repairs is better
	// committed again by its owner.
	MaxSlots = 256

	// MaxCommitmentID is the largest commitment id a custody id can carry
	// (56 bits, CustodyID).
	MaxCommitmentID = 1<<56 - 1

	// MaxChainIDLen is CometBFT's own limit on chain IDs.
	MaxChainIDLen = 50

	// MaxAddressLen is the longest string bech32 allows.
	MaxAddressLen = field.MaxAddressLen

	// MaxVaultKeyLen caps a vault public key string: it covers a bech32
	// "thorpub1…" key (~80 characters) and the hex of an uncompressed 65-byte
	// key (130). The push protocol and the store use the same limit
	// (internal/field).
	MaxVaultKeyLen = field.MaxVaultLen

	// MaxMultiaddrs caps a node's multiaddrs: TCP and QUIC on IPv4 and IPv6,
	// private and public, is 8.
	MaxMultiaddrs = 8

	// MaxMultiaddrLen caps one multiaddr string; real ones with DNS names are
	// under 100 characters.
	MaxMultiaddrLen = 256

	// MaxChurnNodes caps the nodes one Churn adds or removes: a THORChain
	// network has ~120 active nodes, so 1024 registers a whole network at once.
	MaxChurnNodes = 1024

	// MaxChurnVaults caps the vaults one Churn creates or retires.
	MaxChurnVaults = 256

	// MaxVaultMembers caps a vault's members; THORChain's asgards have at
	// most a few dozen.
	MaxVaultMembers = 256

	// HashSize is the size of a commitment root and of every path hash
	// (SHA-256).
	HashSize = custody.HashSize

	// MaxCopyPath and MaxCommitPath cap the hashes of a proof's paths: a copy
	// of at most custody.MaxSize bytes has at most 2^14 segments, and a
	// commitment at most custody.MaxCopies = 2^6 copies.
	MaxCopyPath   = 14
	MaxCommitPath = 6
)

// CustodyID names a custody: slot Slot of commitment Commitment. On the wire
// it is one uint64, Commitment << 8 | Slot (PackCustody), so the state key of
// a custody (KeyCustody) follows from the id alone.
type CustodyID = custody.CustodyID

// PackCustody returns the wire form of id: id.Commitment << 8 | id.Slot. The
// caller keeps id.Slot < MaxSlots and id.Commitment ≤ MaxCommitmentID (the
// chain never assigns others).
func PackCustody(id CustodyID) uint64 { return id.Commitment<<8 | id.Slot&0xff }

// UnpackCustody is the inverse of PackCustody.
func UnpackCustody(x uint64) CustodyID { return CustodyID{Commitment: x >> 8, Slot: x & 0xff} }

// Msg is the message a transaction carries: *Commit, *Attest, *Prove,
// *Release, *Drill, *Churn or *UpdateNode.
type Msg interface {
	// Type is the message's name: "commit", "attest", "prove", "release",
	// "drill", "churn" or "update_node".
	Type() string
	// Items is the number of entries the message carries (shares,
	// custodies, proofs; nodes and vaults of a Churn).
	Items() int

	// writes bounds the state keys the message writes with replication r
	// (see MaxBlockWrites).
	writes(r int) int
	validate(hrp string) error
}

// Commit commits the signer's new share versions: one per vault, each
// sealed into r copies (envelope.SealCopies) and committed by the root of
// the copy roots (custody.NewCommitment). The chain numbers each (its
// commitment id), assigns its r holders and supersedes the signer's previous
// commitment for the vault, in the block that carries it.
type Commit struct {
	Shares []ShareCommit
}

// ShareCommit is one share version.
type ShareCommit struct {
	// Vault is the vault's chain index (Vault.Index), not its key.
	Vault uint64
	// Size is the size of every copy, 1 to custody.MaxSize bytes.
	Size uint64
	// Root is the commitment root (custody.Commitment.Root).
	Root [HashSize]byte
}

// Attest says the signer holds its copy of each custody. The chain accepts
// it only from each custody's assigned holder.
type Attest struct {
	Custodies []CustodyID
}

// Prove answers the signer's challenges of epoch Epoch.
type Prove struct {
	Epoch  uint64
	Proofs []SegmentProof
}

// SegmentProof answers one challenge: the challenged segment of the
// custody's copy and its paths (custody.Proof without the indices the chain
// knows).
type SegmentProof struct {
	Custody CustodyID
	// Segment is the challenged segment's index (Challenge.Segment).
	Segment uint64
	// Data is the segment: custody.SegmentSize bytes, fewer for the last.
	Data []byte
	// CopyPath and CommitPath are custody.Proof's paths.
	CopyPath   [][]byte
	CommitPath [][]byte
}

// NewSegmentProof returns the SegmentProof of custody id from p (as
// custody.ProveHeld builds it).
func NewSegmentProof(id CustodyID, p custody.Proof) SegmentProof {
	return SegmentProof{Custody: id, Segment: p.Segment, Data: p.Data, CopyPath: p.CopyPath, CommitPath: p.CommitPath}
}

// Release says the signer no longer holds these custodies' copies: each
// fails, and the chain assigns a replacement.
type Release struct {
	Custodies []CustodyID
}

// DrillResult is the outcome of a restore drill.
type DrillResult uint8

// Drill outcomes (the values of proto DrillResult).
const (
	// DrillOK: the copy opened with the mnemonic and is byte for byte the
	// live share.
	DrillOK DrillResult = 1 + iota
	// DrillUnreachable: the holder did not serve the copy.
	DrillUnreachable
	// DrillBadCopy: the copy served does not match the committed root.
	DrillBadCopy
	// DrillNoDecrypt: it matches the root but does not open.
	DrillNoDecrypt
	// DrillMismatch: it opens but differs from the live share.
	DrillMismatch
)

var drillNames = [...]string{DrillOK: "ok", DrillUnreachable: "unreachable", DrillBadCopy: "bad_copy", DrillNoDecrypt: "no_decrypt", DrillMismatch: "mismatch"}

// String returns "ok", "unreachable", "bad_copy", "no_decrypt", "mismatch"
// or "unknown".
func (r DrillResult) String() string {
	if r.valid() {
		return drillNames[r]
	}
	return "unknown"
}

func (r DrillResult) valid() bool { return r >= DrillOK && r <= DrillMismatch }

// Drill reports the signer's restore drill of one of its custodies. Any
// result but DrillOK fails the custody (and the chain repairs it). The chain
// accepts one Drill per owner per Params.DrillInterval blocks.
type Drill struct {
	Custody CustodyID
	Result  DrillResult
	// Millis is the time the drill took to fetch, check and open the copy.
	Millis uint32
}

// NodeSpec registers a node: its key and where it listens. The node's address
// and libp2p peer ID are derived from the key.
type NodeSpec struct {
	// PubKey is the 33-byte compressed secp256k1 key, hex.
	PubKey string `json:"pubkey"`
	// Multiaddrs are the node's libp2p listen addresses in canonical form,
	// without a /p2p/ component (the peer ID comes from PubKey).
	Multiaddrs []string `json:"multiaddrs"`
}

// VaultSpec creates a vault.
type VaultSpec struct {
	// PubKey is the vault's public key as `ksb inspect` prints it.
	PubKey string `json:"pubkey"`
	// Members are the addresses of the vault's member nodes.
	Members []string `json:"members"`
	// Threshold is the number of members needed to sign.
	Threshold uint32 `json:"threshold"`
}

// Churn is the authority's change of the network, applied in field order:
// nodes are added, then removed, then vaults created (their members must be
// active after the node changes), then retired. It is also the JSON of
// `ksb chain tx churn FILE`.
type Churn struct {
	AddNodes     []NodeSpec  `json:"add_nodes,omitempty"`
	RemoveNodes  []string    `json:"remove_nodes,omitempty"`
	CreateVaults []VaultSpec `json:"create_vaults,omitempty"`
	RetireVaults []string    `json:"retire_vaults,omitempty"`
}

// UpdateNode replaces the signer's multiaddrs.
type UpdateNode struct {
	Multiaddrs []string
}

// Type implements Msg.
func (*Commit) Type() string { return "commit" }

// Type implements Msg.
func (*Attest) Type() string { return "attest" }

// Type implements Msg.
func (*Prove) Type() string { return "prove" }

// Type implements Msg.
func (*Release) Type() string { return "release" }

// Type implements Msg.
func (*Drill) Type() string { return "drill" }

// Type implements Msg.
func (*Churn) Type() string { return "churn" }

// Type implements Msg.
func (*UpdateNode) Type() string { return "update_node" }

// Items implements Msg.
func (m *Commit) Items() int { return len(m.Shares) }

// Items implements Msg.
func (m *Attest) Items() int { return len(m.Custodies) }

// Items implements Msg.
func (m *Prove) Items() int { return len(m.Proofs) }

// Items implements Msg.
func (m *Release) Items() int { return len(m.Custodies) }

// Items implements Msg.
func (m *Drill) Items() int { return 1 }

// Items implements Msg.
func (m *Churn) Items() int {
	n := len(m.AddNodes) + len(m.RemoveNodes) + len(m.RetireVaults)
	for _, v := range m.CreateVaults {
		n += 1 + len(v.Members)
	}
	return n
}

// Items implements Msg.
func (m *UpdateNode) Items() int { return 1 }

// Writes per item, an upper bound counted against MaxBlockWrites. A share
// writes its commitment, the latest pointer, the owner index, the
// superseded predecessor, its prune timer and the counters, then per slot a
// custody, its holder index and its attestation timer. A released custody
// writes itself and, for its replacement, a custody, two indices, two
// timers and the commitment. A Drill can fail a custody (as a release) and
// writes the commitment and the owner's node record.
const (
	writesPerShare      = 6
	writesPerSlot       = 3
	writesPerAttest     = 2
	writesPerProof      = 2
	writesPerRelease    = 8
	writesPerDrill      = 10
	writesPerChurnItem  = 3
	writesPerTxOverhead = 2 // the account's sequence, and a node record
)

func (m *Commit) writes(r int) int      { return len(m.Shares) * (writesPerShare + writesPerSlot*r) }
func (m *Attest) writes(int) int        { return len(m.Custodies) * writesPerAttest }
func (m *Prove) writes(int) int         { return len(m.Proofs) * writesPerProof }
func (m *Release) writes(int) int       { return len(m.Custodies) * writesPerRelease }
func (m *Drill) writes(int) int         { return writesPerDrill }
func (m *Churn) writes(int) int         { return m.Items() * writesPerChurnItem }
func (m *UpdateNode) writes(int) int    { return 1 }
func txWrites(m Msg, r int) int         { return m.writes(r) + writesPerTxOverhead }
func (m *Commit) validate(string) error { return m.check() }

func (m *Commit) check() error {
	if len(m.Shares) == 0 {
		return fmt.Errorf("no shares: %w", ErrInvalid)
	}
	if err := checkCount("shares", len(m.Shares), MaxShares); err != nil {
		return err
	}
	seen := make(map[uint64]bool, len(m.Shares))
	for i, s := range m.Shares {
		if s.Vault == 0 {
			return fmt.Errorf("share %d: vault index 0 (vault indices start at 1): %w", i, ErrInvalid)
		}
		if s.Size == 0 || s.Size > custody.MaxSize {
			return fmt.Errorf("share %d: size %d, want 1..%d: %w", i, s.Size, custody.MaxSize, ErrInvalid)
		}
		if s.Root == ([HashSize]byte{}) {
			return fmt.Errorf("share %d: zero root: %w", i, ErrInvalid)
		}
		if seen[s.Vault] {
			return fmt.Errorf("share %d: vault %d committed twice: %w", i, s.Vault, ErrInvalid)
		}
		seen[s.Vault] = true
	}
	return nil
}

func (m *Attest) validate(string) error  { return checkCustodies(m.Custodies) }
func (m *Release) validate(string) error { return checkCustodies(m.Custodies) }

func checkCustodies(ids []CustodyID) error {
	if len(ids) == 0 {
		return fmt.Errorf("no custodies: %w", ErrInvalid)
	}
	if err := checkCount("custodies", len(ids), MaxEntries); err != nil {
		return err
	}
	seen := make(map[CustodyID]bool, len(ids))
	for i, id := range ids {
		if err := checkCustodyID(id); err != nil {
			return fmt.Errorf("custody %d: %w", i, err)
		}
		if seen[id] {
			return fmt.Errorf("custody %d: %d/%d listed twice: %w", i, id.Commitment, id.Slot, ErrInvalid)
		}
		seen[id] = true
	}
	return nil
}

func checkCustodyID(id CustodyID) error {
	if id.Commitment == 0 || id.Commitment > MaxCommitmentID || id.Slot >= MaxSlots {
		return fmt.Errorf("custody %d/%d: commitment 1..%d, slot 0..%d: %w", id.Commitment, id.Slot, uint64(MaxCommitmentID), MaxSlots-1, ErrInvalid)
	}
	return nil
}

func (m *Prove) validate(string) error {
	if len(m.Proofs) == 0 {
		return fmt.Errorf("no proofs: %w", ErrInvalid)
	}
	if err := checkCount("proofs", len(m.Proofs), MaxProofs); err != nil {
		return err
	}
	seen := make(map[CustodyID]bool, len(m.Proofs))
	for i, p := range m.Proofs {
		if err := checkCustodyID(p.Custody); err != nil {
			return fmt.Errorf("proof %d: %w", i, err)
		}
		if seen[p.Custody] {
			return fmt.Errorf("proof %d: custody %d/%d proven twice: %w", i, p.Custody.Commitment, p.Custody.Slot, ErrInvalid)
		}
		seen[p.Custody] = true
		if len(p.Data) == 0 || len(p.Data) > custody.SegmentSize {
			return fmt.Errorf("proof %d: segment of %d bytes, want 1..%d: %w", i, len(p.Data), custody.SegmentSize, ErrInvalid)
		}
		if err := checkPath(p.CopyPath, MaxCopyPath); err != nil {
			return fmt.Errorf("proof %d: copy path: %w", i, err)
		}
		if err := checkPath(p.CommitPath, MaxCommitPath); err != nil {
			return fmt.Errorf("proof %d: commit path: %w", i, err)
		}
	}
	return nil
}

func checkPath(path [][]byte, limit int) error {
	if err := checkCount("hashes", len(path), limit); err != nil {
		return err
	}
	for i, h := range path {
		if len(h) != HashSize {
			return fmt.Errorf("hash %d has %d bytes, want %d: %w", i, len(h), HashSize, ErrInvalid)
		}
	}
	return nil
}

func (m *Drill) validate(string) error {
	if err := checkCustodyID(m.Custody); err != nil {
		return err
	}
	if !m.Result.valid() {
		return fmt.Errorf("drill result %d: %w", m.Result, ErrInvalid)
	}
	return nil
}

func (m *Churn) validate(hrp string) error {
	if len(m.AddNodes)+len(m.RemoveNodes)+len(m.CreateVaults)+len(m.RetireVaults) == 0 {
		return fmt.Errorf("churn changes nothing: %w", ErrInvalid)
	}
	if err := checkCount("add_nodes", len(m.AddNodes), MaxChurnNodes); err != nil {
		return err
	}
	if err := checkCount("remove_nodes", len(m.RemoveNodes), MaxChurnNodes); err != nil {
		return err
	}
	if err := checkCount("create_vaults", len(m.CreateVaults), MaxChurnVaults); err != nil {
		return err
	}
	if err := checkCount("retire_vaults", len(m.RetireVaults), MaxChurnVaults); err != nil {
		return err
	}
	added := make(map[string]bool, len(m.AddNodes))
	for i, n := range m.AddNodes {
		addr, err := n.validate(hrp)
		if err != nil {
			return fmt.Errorf("add_nodes[%d]: %w", i, err)
		}
		if added[addr] {
			return fmt.Errorf("add_nodes[%d]: node %s listed twice: %w", i, addr, ErrInvalid)
		}
		added[addr] = true
	}
	removed := make(map[string]bool, len(m.RemoveNodes))
	for i, a := range m.RemoveNodes {
		if err := validAddress(a, hrp); err != nil {
			return fmt.Errorf("remove_nodes[%d]: %w", i, err)
		}
		if removed[a] || added[a] {
			return fmt.Errorf("remove_nodes[%d]: node %s listed twice: %w", i, a, ErrInvalid)
		}
		removed[a] = true
	}
	created := make(map[string]bool, len(m.CreateVaults))
	for i, v := range m.CreateVaults {
		if err := v.validate(hrp); err != nil {
			return fmt.Errorf("create_vaults[%d]: %w", i, err)
		}
		if created[v.PubKey] {
			return fmt.Errorf("create_vaults[%d]: vault %s listed twice: %w", i, v.PubKey, ErrInvalid)
		}
		created[v.PubKey] = true
	}
	retired := make(map[string]bool, len(m.RetireVaults))
	for i, k := range m.RetireVaults {
		if err := validVaultKey(k); err != nil {
			return fmt.Errorf("retire_vaults[%d]: %w", i, err)
		}
		if retired[k] || created[k] {
			return fmt.Errorf("retire_vaults[%d]: vault %s listed twice: %w", i, k, ErrInvalid)
		}
		retired[k] = true
	}
	return nil
}

func (m *UpdateNode) validate(string) error { return validMultiaddrs(m.Multiaddrs) }

// validate checks n and returns the node's address.
func (n NodeSpec) validate(hrp string) (string, error) {
	pub, err := parsePubKeyHex(n.PubKey)
	if err != nil {
		return "", err
	}
	addr, err := identity.AddressFromPubKey(pub, hrp)
	if err != nil {
		return "", fmt.Errorf("pubkey: %w: %w", ErrInvalid, err)
	}
	if err := validMultiaddrs(n.Multiaddrs); err != nil {
		return "", fmt.Errorf("node %s: %w", addr, err)
	}
	return addr, nil
}

func (v VaultSpec) validate(hrp string) error {
	if err := validVaultKey(v.PubKey); err != nil {
		return err
	}
	if len(v.Members) == 0 {
		return fmt.Errorf("vault %s has no members: %w", v.PubKey, ErrInvalid)
	}
	if err := checkCount("members", len(v.Members), MaxVaultMembers); err != nil {
		return err
	}
	seen := make(map[string]bool, len(v.Members))
	for i, a := range v.Members {
		if err := validAddress(a, hrp); err != nil {
			return fmt.Errorf("vault %s member %d: %w", v.PubKey, i, err)
		}
		if seen[a] {
			return fmt.Errorf("vault %s: member %s listed twice: %w", v.PubKey, a, ErrInvalid)
		}
		seen[a] = true
	}
	if v.Threshold < 1 || int(v.Threshold) > len(v.Members) {
		return fmt.Errorf("vault %s: threshold %d not in 1..%d: %w", v.PubKey, v.Threshold, len(v.Members), ErrInvalid)
	}
	return nil
}

func checkCount(what string, n, limit int) error {
	if n > limit {
		return fmt.Errorf("%d %s, at most %d: %w", n, what, limit, ErrTooLarge)
	}
	return nil
}

// validAddress checks that a is a canonical (lower-case) bech32 node address
// with prefix hrp (field.Address).
func validAddress(a, hrp string) error {
	if err := field.Address(a, hrp); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return nil
}

// validVaultKey checks that k is a vault key string: 1 to MaxVaultKeyLen
// characters of [A-Za-z0-9._:-] (field.Vault).
func validVaultKey(k string) error {
	if err := field.Vault(k); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return nil
}

func validMultiaddrs(addrs []string) error {
	if len(addrs) == 0 {
		return fmt.Errorf("no multiaddrs: %w", ErrInvalid)
	}
	if err := checkCount("multiaddrs", len(addrs), MaxMultiaddrs); err != nil {
		return err
	}
	seen := make(map[string]bool, len(addrs))
	for _, s := range addrs {
		if len(s) > MaxMultiaddrLen {
			return fmt.Errorf("multiaddr of %d characters, at most %d: %w", len(s), MaxMultiaddrLen, ErrTooLarge)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("multiaddr %q is not UTF-8: %w", s, ErrInvalid)
		}
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("multiaddr %q: %w: %w", s, ErrInvalid, err)
		}
		if m.String() != s {
			return fmt.Errorf("multiaddr %q is not canonical (%q): %w", s, m.String(), ErrInvalid)
		}
		if _, err := m.ValueForProtocol(ma.P_P2P); err == nil {
			return fmt.Errorf("multiaddr %q has a /p2p component; the peer ID comes from the public key: %w", s, ErrInvalid)
		}
		if seen[s] {
			return fmt.Errorf("multiaddr %q listed twice: %w", s, ErrInvalid)
		}
		seen[s] = true
	}
	return nil
}

func parsePubKeyHex(s string) ([]byte, error) {
	if len(s) != 2*pubKeySize {
		return nil, fmt.Errorf("pubkey %q: want 66 hex characters (33-byte compressed secp256k1 key): %w", s, ErrInvalid)
	}
	b, err := hex.DecodeString(s)
	if err != nil || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("pubkey %q: not lower-case hex: %w", s, ErrInvalid)
	}
	if _, err := identity.ParsePubKey(b); err != nil {
		return nil, fmt.Errorf("pubkey %s: %w: %w", s, ErrInvalid, err)
	}
	return b, nil
}

// MaxChurnFileSize caps a churn JSON file: MaxChurnNodes nodes with their
// multiaddrs and MaxChurnVaults vaults of MaxVaultMembers members stay well
// under 16 MiB.
const MaxChurnFileSize = 16 << 20

// ParseChurn decodes the JSON form of a Churn (the file of
// `ksb chain tx churn`), refusing unknown fields and trailing data. Its content
// is checked when the transaction is signed.
func ParseChurn(b []byte) (*Churn, error) {
	if len(b) > MaxChurnFileSize {
		return nil, fmt.Errorf("churn file of %d bytes, at most %d: %w", len(b), MaxChurnFileSize, ErrTooLarge)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	c := &Churn{}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("churn JSON: %w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("churn JSON: trailing data: %w", ErrInvalid)
	}
	return c, nil
}
