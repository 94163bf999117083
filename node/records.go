package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ksb-project/ksb/custody"
	"github.com/ksb-project/ksb/store"
)

// Meta key prefixes of the daemon's own records in the store (see
// store.PutMeta). Every record is JSON.
const (
	// ownPrefix + <vault>: the owner-side state of this node's share of a
	// vault.
	ownPrefix = "own/"
	// ownCopyPrefix + <vault>/<commitment root hex>/<copy index>: one sealed
	// copy of a share version, kept while its commitment is live (the chain
	// may name the owner as a repair's source) and pushed to the holder the
	// chain assigns it to.
	ownCopyPrefix = "owncopy/"
	// attestPrefix + <custody>: a held copy whose attestation is not yet
	// committed.
	attestPrefix = "pending/attest/"
	// releasePrefix + <custody>: a copy this holder lost or dropped whose
	// release is not yet committed.
	releasePrefix = "pending/release/"
	// chainParamsKey: the chain's parameters, as last read (they are fixed
	// at genesis).
	chainParamsKey = "chainparams"
)

// shareRecord is what an owner remembers of one of its shares, so that a
// restart neither re-seals nor re-commits nor re-pushes what is already
// held.
type shareRecord struct {
	Vault     string `json:"vault"`
	File      string `json:"file"`
	Kind      string `json:"kind"`
	Algorithm string `json:"algorithm"`
	// PlainSHA256 is the digest of the share file's bytes: a file rewritten
	// with the same bytes is not sealed again.
	PlainSHA256 string    `json:"plain_sha256"`
	SealedAt    time.Time `json:"sealed_at"`
	// Version is the share version being backed up; Previous the one it
	// replaces, kept (with its copies) until Version's commitment is on
	// chain, since until then Previous is the live one.
	Version  version  `json:"version"`
	Previous *version `json:"previous,omitempty"`
}

// version is one sealed share version: its commitment and what was pushed.
type version struct {
	// Root is the commitment root (hex), Size every copy's size, Copies r.
	Root   string `json:"root"`
	Size   uint64 `json:"size"`
	Copies int    `json:"copies"`
	// CopyRoots are the copies' roots (hex), in copy index order: the
	// commit path of copy i is computed from them.
	CopyRoots []string `json:"copy_roots"`
	// Commitment is the chain's id of the commitment, 0 until the Commit
	// is committed; CommitHeight its block.
	Commitment   uint64 `json:"commitment,omitempty"`
	CommitHeight int64  `json:"commit_height,omitempty"`
	// Pushes are the receipts by slot.
	Pushes map[uint64]pushRecord `json:"pushes,omitempty"`
}

// copyRoots decodes v.CopyRoots.
func (v *version) copyRoots() ([][custody.HashSize]byte, error) {
	out := make([][custody.HashSize]byte, len(v.CopyRoots))
	for i, h := range v.CopyRoots {
		b, err := parseHash(h)
		if err != nil {
			return nil, fmt.Errorf("copy root %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// pushRecord is a holder's receipt for one copy, as the owner keeps it.
type pushRecord struct {
	Holder    string `json:"holder"` // the holder's address
	CopyIndex int    `json:"copy"`
	// ReceiptTime is when the holder stored the copy (its clock); Raw the
	// receipt as received, for re-verification.
	ReceiptTime time.Time `json:"receipt_time"`
	Raw         []byte    `json:"raw"`
	// PushedAt is when this node last pushed the copy.
	PushedAt time.Time `json:"pushed_at"`
}

// custodyKey is the queue key part of a custody: fixed-width hex, so that
// key order is custody order.
func custodyKey(id custody.CustodyID) string {
	return fmt.Sprintf("%016x/%02x", id.Commitment, id.Slot)
}

// parseCustodyKey reads a custodyKey.
func parseCustodyKey(s string) (custody.CustodyID, error) {
	c, sl, ok := strings.Cut(s, "/")
	if !ok || len(c) != 16 || len(sl) != 2 {
		return custody.CustodyID{}, fmt.Errorf("custody key %q", s)
	}
	cn, err1 := strconv.ParseUint(c, 16, 64)
	sn, err2 := strconv.ParseUint(sl, 16, 8)
	if err1 != nil || err2 != nil {
		return custody.CustodyID{}, fmt.Errorf("custody key %q", s)
	}
	return custody.CustodyID{Commitment: cn, Slot: sn}, nil
}

func idString(id custody.CustodyID) string { return fmt.Sprintf("%d/%d", id.Commitment, id.Slot) }

func ownCopyKey(vault, root string, i int) string {
	return fmt.Sprintf("%s%s/%s/%d", ownCopyPrefix, vault, root, i)
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
