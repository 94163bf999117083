package node

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ksb-project/ksb/attest"
	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/field"
	"github.com/ksb-project/ksb/store"
)

// Meta key prefixes of the daemon's own records in the store (see
// store.PutMeta). Every record is JSON.
const (
	// ownPrefix + <vault>: the owner-side state of this node's share of a vault.
	ownPrefix = "own/"
	// ownBlobPrefix + <vault>: the sealed blob of that share, kept so a holder
	// that churns out can be replaced without sealing again.
	ownBlobPrefix = "ownblob/"
	// attestPrefix + <owner hex>/<vault>/<digest hex>: an accepted blob whose
	// attestation is not yet committed.
	attestPrefix = "pending/attest/"
	// releasePrefix + <owner hex>/<vault>/<digest hex>: a dropped blob whose
	// release is not yet committed.
	releasePrefix = "pending/release/"
	// retiredPrefix + <vault>: when this node first saw the vault retired.
	retiredPrefix = "retired/"
)

// shareRecord is what an owner remembers of one of its shares, so that a
// restart neither re-seals nor re-pushes what is already held.
type shareRecord struct {
	Vault     string `json:"vault"`
	File      string `json:"file"`
	Kind      string `json:"kind"`
	Algorithm string `json:"algorithm"`
	// PlainSHA256 is the digest of the share file's bytes: a file rewritten with
	// the same bytes is not sealed again.
	PlainSHA256 string    `json:"plain_sha256"`
	Digest      string    `json:"digest"` // sha256 of the sealed blob, hex
	Size        int64     `json:"size"`
	SealedAt    time.Time `json:"sealed_at"`
	// Holders maps a holder's pubkey (hex) to its receipt.
	Holders map[string]receiptRecord `json:"holders"`
	// Previous are the holders of the share's previous version, tried first
	// so that they replace (and release) the obsolete blob.
	Previous []string `json:"previous,omitempty"`
}

// receiptRecord is a holder's signed receipt as the owner keeps it.
type receiptRecord struct {
	PeerID    string    `json:"peer_id"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"` // hex
	Raw       []byte    `json:"raw"`       // the receipt as received, for re-verification
	// PushedAt is when this node last pushed the blob to the holder (the
	// receipt's Time is when the holder first stored it).
	PushedAt time.Time `json:"pushed_at"`
}

// pendingEntry is a holder-side attestation or release waiting for the chain.
type pendingEntry struct {
	Owner  string `json:"owner"` // the owner's node address
	Vault  string `json:"vault"`
	Digest string `json:"digest"` // hex
	Size   int64  `json:"size"`
}

// key is the entry's queue key: one per (owner, vault, digest), so queueing
// the same entry twice is harmless.
func (p pendingEntry) key(prefix string) string {
	return prefix + p.Owner + "/" + p.Vault + "/" + p.Digest
}

// chainEntry is the entry as a chain message carries it. Whether the chain
// accepts its owner, vault and size is for attest.Entry.Validate to say.
func (p pendingEntry) chainEntry() (attest.Entry, error) {
	d, err := field.ParseDigestHex(p.Digest)
	if err != nil {
		return attest.Entry{}, err
	}
	if p.Size < 0 {
		return attest.Entry{}, fmt.Errorf("%w: %d", field.ErrSize, p.Size)
	}
	return attest.Entry{Owner: p.Owner, Vault: p.Vault, Digest: d, Size: uint64(p.Size)}, nil
}

// pendingOf is the queue entry of a held blob.
func (n *Node) pendingOf(e store.Entry) pendingEntry {
	owner, _ := identity.AddressFromPubKey(e.Owner, n.cfg.HRP) // the store only keeps valid keys
	return pendingEntry{Owner: owner, Vault: e.Vault, Digest: hex.EncodeToString(e.Digest[:]), Size: e.Size}
}

func putJSON(st *store.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	return st.PutMeta(key, b)
}

// getJSON reads key into v; found is false when the key is absent.
func getJSON(st *store.Store, key string, v any) (found bool, err error) {
	b, err := st.GetMeta(key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
}

// scanJSON decodes every record under prefix, in key order.
func scanJSON[T any](st *store.Store, prefix string) (map[string]T, []string, error) {
	out := map[string]T{}
	var keys []string
	err := st.ScanMeta(prefix, func(k string, b []byte) error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("decoding %s: %w", k, err)
		}
		out[k] = v
		keys = append(keys, k)
		return nil
	})
	sort.Strings(keys)
	return out, keys, err
}
