package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/field"
)

// Limits on transactions. A decoder checks each against the input before it
// allocates anything for it.
const (
	// MaxTxSize caps an encoded transaction. CometBFT's mempool refuses
	// transactions over 1 MiB by default; half of that holds a full Attest of
	// MaxEntries entries (about 200 KB) with room to spare.
	MaxTxSize = 512 << 10

	// MaxEntries caps the entries of one Attest or Release. A holder batches
	// its attestations every few seconds; 1024 entries is far more than one
	// batch of a THORChain-sized network (~240 shares per churn, r = 3).
	MaxEntries = 1024

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

	// MaxBlobSize caps the size an entry may claim: a sealed keyshare is tens
	// of kilobytes, so anything over 1 GiB is an error, not a keyshare.
	MaxBlobSize = field.MaxSize

	// DigestSize is the size of a blob digest (sha256).
	DigestSize = field.DigestSize
)

// Msg is the message a transaction carries: *Attest, *Release, *Churn or
// *UpdateNode.
type Msg interface {
	// Type is the message's name: "attest", "release", "churn" or
	// "update_node".
	Type() string
	// Items is the number of entries, nodes and vaults the message touches,
	// counted against a block's MaxBlockItems.
	Items() int

	field() protowire.Number
	appendBody(b []byte) []byte
	validate(hrp string) error
}

// Entry is one blob a holder attests to keep.
type Entry struct {
	// Owner is the bech32 address of the node the blob belongs to.
	Owner string
	// Vault is the public key of the vault the keyshare is a share of.
	Vault string
	// Digest is the sha256 of the sealed blob.
	Digest [DigestSize]byte
	// Size is the sealed blob's size in bytes.
	Size uint64
}

// Key returns the entry's key (owner, vault, digest).
func (e Entry) Key() EntryKey { return EntryKey{Owner: e.Owner, Vault: e.Vault, Digest: e.Digest} }

// EntryKey names an attestation of one holder: owner, vault and digest.
type EntryKey struct {
	Owner  string
	Vault  string
	Digest [DigestSize]byte
}

// Attest says the signer, an active node, keeps these blobs.
type Attest struct {
	Entries []Entry
}

// Release says the signer no longer keeps these blobs.
type Release struct {
	Entries []EntryKey
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
func (*Attest) Type() string { return "attest" }

// Type implements Msg.
func (*Release) Type() string { return "release" }

// Type implements Msg.
func (*Churn) Type() string { return "churn" }

// Type implements Msg.
func (*UpdateNode) Type() string { return "update_node" }

// Items implements Msg.
func (m *Attest) Items() int { return len(m.Entries) }

// Items implements Msg.
func (m *Release) Items() int { return len(m.Entries) }

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

func (m *Attest) validate(hrp string) error {
	if len(m.Entries) == 0 {
		return fmt.Errorf("no entries: %w", ErrInvalid)
	}
	if err := checkCount("entries", len(m.Entries), MaxEntries); err != nil {
		return err
	}
	seen := make(map[EntryKey]bool, len(m.Entries))
	for i, e := range m.Entries {
		if err := e.validate(hrp); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if seen[e.Key()] {
			return fmt.Errorf("entry %d: repeats an earlier entry: %w", i, ErrInvalid)
		}
		seen[e.Key()] = true
	}
	return nil
}

// Validate reports whether the chain's checks of an entry's content accept e
// in an Attest signed by the node with address holder, on a chain with
// address prefix hrp: the owner's address, the vault key, the size, and
// that the holder is not the owner (see internal/field). The error wraps
// ErrInvalid. These are the checks SignTx runs on every entry; a holder runs
// them on each queued entry so that one entry the chain could never accept
// does not fail its whole batch. The chain's state checks (a live vault, an
// owner that is active or a member) come on top.
func (e Entry) Validate(hrp, holder string) error {
	if err := e.validate(hrp); err != nil {
		return err
	}
	if e.Owner == holder {
		return fmt.Errorf("holder %s attests its own blob: %w", holder, ErrInvalid)
	}
	return nil
}

func (e Entry) validate(hrp string) error {
	if err := e.Key().Validate(hrp); err != nil {
		return err
	}
	if err := field.Size(e.Size); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return nil
}

// Validate reports whether the chain's checks of an entry's content accept k
// in a Release (or as the key of an Attest entry) on a chain with address
// prefix hrp: the owner's address and the vault key. The error wraps
// ErrInvalid.
func (k EntryKey) Validate(hrp string) error {
	if err := validAddress(k.Owner, hrp); err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	return validVaultKey(k.Vault)
}

func (m *Release) validate(hrp string) error {
	if len(m.Entries) == 0 {
		return fmt.Errorf("no entries: %w", ErrInvalid)
	}
	if err := checkCount("entries", len(m.Entries), MaxEntries); err != nil {
		return err
	}
	seen := make(map[EntryKey]bool, len(m.Entries))
	for i, k := range m.Entries {
		if err := k.Validate(hrp); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if seen[k] {
			return fmt.Errorf("entry %d: repeats an earlier entry: %w", i, ErrInvalid)
		}
		seen[k] = true
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
	if len(s) != 66 {
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
