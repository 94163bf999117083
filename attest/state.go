package attest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
)

// State keys. Everything under "s/" is state and goes into the app hash;
// "m/" holds the height and app hash of the last commit. Addresses and vault
// keys never contain '/', so the separators are unambiguous.
const (
	keyParams  = "s/params"
	prefNode   = "s/node/"  // + address → nodeRecord
	prefVault  = "s/vault/" // + vault key → vaultRecord
	prefAtt    = "s/att/"   // + holder/owner/vault → attRecord
	prefOwn    = "s/own/"   // + owner/holder/vault → "" (index by owner)
	prefSeq    = "s/seq/"   // + address → next sequence, decimal
	prefState  = "s/"
	keyHeight  = "m/height"
	keyAppHash = "m/apphash"

	// stateHashDomain starts the bytes the app hash is computed over.
	stateHashDomain = "ksb/attest/state/v1\x00"
)

// Params are the chain's fixed parameters, from genesis.
type Params struct {
	ChainID          string `json:"chain_id"`
	Authority        string `json:"authority"`
	AuthorityAddress string `json:"authority_address"`
	Replication      uint32 `json:"replication"`
	HRP              string `json:"hrp"`
}

type nodeRecord struct {
	PubKey     string   `json:"pubkey"`
	Multiaddrs []string `json:"multiaddrs"`
	Height     int64    `json:"height"`
}

type vaultRecord struct {
	Members       []string `json:"members"`
	Threshold     uint32   `json:"threshold"`
	Height        int64    `json:"height"`
	Retired       bool     `json:"retired,omitempty"`
	RetiredHeight int64    `json:"retired_height,omitempty"`
}

// attRecord is a holder's attestation of the blob it keeps for one owner and
// vault. A holder keeps one blob per owner and vault (a new one replaces the
// old), so the chain keeps one attestation of it, keyed without the digest:
// attesting another digest replaces the record. (Keyed with the digest, one
// node could grow the state — which the app hash reads whole every block —
// by MaxBlockItems made-up digests a block, without bound.)
type attRecord struct {
	Digest string `json:"digest"` // lower-case hex sha256 of the blob
	Size   uint64 `json:"size"`
	Height int64  `json:"height"`
}

// kv is the state as a transaction (or a read of the committed state) sees
// it. It is the one seam between the application's logic and the store that
// keeps its state: nothing outside this file and the App's block lifecycle
// (NewApp, InitChain, FinalizeBlock, Commit) names the store.
type kv interface {
	// get returns the value of k, or nil if k is absent.
	get(k string) ([]byte, error)
	set(k string, v []byte) error
	del(k string) error
	// scan calls fn for every key with prefix, in byte order, with its
	// value; fn's error stops the scan and is returned.
	scan(prefix string, fn func(key string, val []byte) error) error
}

// txnKV is a Badger transaction.
type txnKV struct{ txn *badger.Txn }

func (t txnKV) get(k string) ([]byte, error) {
	it, err := t.txn.Get([]byte(k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w: %w", k, ErrInternal, err)
	}
	v, err := it.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w: %w", k, ErrInternal, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (t txnKV) set(k string, v []byte) error {
	if err := t.txn.Set([]byte(k), v); err != nil {
		return fmt.Errorf("writing %s: %w: %w", k, ErrInternal, err)
	}
	return nil
}

func (t txnKV) del(k string) error {
	if err := t.txn.Delete([]byte(k)); err != nil {
		return fmt.Errorf("deleting %s: %w: %w", k, ErrInternal, err)
	}
	return nil
}

func (t txnKV) scan(prefix string, fn func(key string, val []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	it := t.txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("reading %s: %w: %w", it.Item().Key(), ErrInternal, err)
		}
		if err := fn(string(it.Item().Key()), v); err != nil {
			return err
		}
	}
	return nil
}

// overlay buffers one transaction's writes over the block's, so that a
// transaction that fails half-way changes nothing.
type overlay struct {
	parent kv
	writes map[string][]byte // nil value: deleted
	order  []string
}

func newOverlay(parent kv) *overlay {
	return &overlay{parent: parent, writes: make(map[string][]byte)}
}

func (o *overlay) get(k string) ([]byte, error) {
	if v, ok := o.writes[k]; ok {
		return v, nil
	}
	return o.parent.get(k)
}

func (o *overlay) put(k string, v []byte) {
	if _, ok := o.writes[k]; !ok {
		o.order = append(o.order, k)
	}
	o.writes[k] = v
}

func (o *overlay) set(k string, v []byte) error {
	if v == nil {
		v = []byte{}
	}
	o.put(k, v)
	return nil
}

func (o *overlay) del(k string) error { o.put(k, nil); return nil }

// scan merges the buffered writes under prefix into the parent's keys, in
// byte order: a buffered value replaces the parent's, a buffered delete
// hides it.
func (o *overlay) scan(prefix string, fn func(key string, val []byte) error) error {
	var mine []string
	for _, k := range o.order {
		if strings.HasPrefix(k, prefix) {
			mine = append(mine, k)
		}
	}
	sort.Strings(mine)
	emit := func(k string) error {
		if v := o.writes[k]; v != nil {
			return fn(k, v)
		}
		return nil
	}
	i := 0
	err := o.parent.scan(prefix, func(k string, v []byte) error {
		for ; i < len(mine) && mine[i] < k; i++ {
			if err := emit(mine[i]); err != nil {
				return err
			}
		}
		if i < len(mine) && mine[i] == k {
			i++
			return emit(k)
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	for ; i < len(mine); i++ {
		if err := emit(mine[i]); err != nil {
			return err
		}
	}
	return nil
}

// flush writes the buffered writes to the parent, in the order they were
// first made.
func (o *overlay) flush() error {
	for _, k := range o.order {
		var err error
		if v := o.writes[k]; v == nil {
			err = o.parent.del(k)
		} else {
			err = o.parent.set(k, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func getJSON(s kv, k string, v any) (bool, error) {
	b, err := s.get(k)
	if err != nil || b == nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decoding %s: %w: %w", k, ErrInternal, err)
	}
	return true, nil
}

// setJSON stores v as JSON. encoding/json writes struct fields in declaration
// order, so the bytes, and the app hash over them, are deterministic.
func setJSON(s kv, k string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w: %w", k, ErrInternal, err)
	}
	return s.set(k, b)
}

func getSeq(s kv, addr string) (uint64, error) {
	b, err := s.get(prefSeq + addr)
	if err != nil || b == nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sequence of %s: %w: %w", addr, ErrInternal, err)
	}
	return n, nil
}

func setSeq(s kv, addr string, n uint64) error {
	return s.set(prefSeq+addr, []byte(strconv.FormatUint(n, 10)))
}

func attKey(holder, owner, vault string) string {
	return prefAtt + holder + "/" + owner + "/" + vault
}

func ownKey(holder, owner, vault string) string {
	return prefOwn + owner + "/" + holder + "/" + vault
}

// splitKey3 splits "a/b/c" after prefix into its three parts.
func splitKey3(key, prefix string) (a, b, c string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(key, prefix), "/")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// stateHash computes the app hash over every state key the transaction
// sees, its own pending writes included.
func stateHash(txn *badger.Txn) ([]byte, error) {
	h := sha256.New()
	h.Write([]byte(stateHashDomain))
	var lenBuf [binary.MaxVarintLen64]byte
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefState)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(k)))])
		h.Write(k)
		err := item.Value(func(v []byte) error {
			h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(v)))])
			h.Write(v)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("hashing state: %w: %w", ErrInternal, err)
		}
	}
	return h.Sum(nil), nil
}

func sortedUnique(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
