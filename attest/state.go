package attest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ksb-project/ksb/attest/internal/statestore"
)

// State keys. Every key of the state tree starts with "s/" (prefState);
// each is one leaf of the IAVL tree whose root is the app hash (see
// internal/statestore). Addresses and vault keys never contain '/', so the
// separators are unambiguous. The keys of commitments, custodies, challenges
// and the rest are in keys.go.
const (
	keyParams = "s/params"
	prefNode  = "s/node/"  // + address → attestpb.NodeRecord
	prefVault = "s/vault/" // + vault key → attestpb.VaultRecord
	prefState = "s/"
)

// kv is the state as a transaction (or a read of the committed state) sees
// it. It is the one seam between the application's logic and the store that
// keeps its state: nothing outside this file, the App's block lifecycle
// (NewApp, InitChain, FinalizeBlock, Commit) and the query plumbing
// (stateproof.go) names the store.
type kv interface {
	// get returns the value of k, or nil if k is absent.
	get(k string) ([]byte, error)
	set(k string, v []byte) error
	del(k string) error
	// scan calls fn for every key with prefix, in byte order, with its
	// value; fn's error stops the scan and is returned.
	scan(prefix string, fn func(key string, val []byte) error) error
}

// storedEmpty is how the state tree holds a value of no bytes: an ICS23
// proof cannot show an empty value, and a single zero byte is no valid JSON,
// decimal or protobuf encoding, so no state value is ever that byte itself
// (setting it is refused).
const storedEmpty = 0x00

// encodeValue returns the bytes the state tree holds for v.
func encodeValue(k string, v []byte) ([]byte, error) {
	switch {
	case len(v) == 0:
		return []byte{storedEmpty}, nil
	case len(v) == 1 && v[0] == storedEmpty:
		return nil, fmt.Errorf("writing %s: the value 0x00 is reserved for empty values: %w", k, ErrInternal)
	}
	return v, nil
}

// decodeValue inverts encodeValue.
func decodeValue(v []byte) []byte {
	if len(v) == 1 && v[0] == storedEmpty {
		return []byte{}
	}
	return v
}

// treeKV is the working state tree: the block being finalized.
type treeKV struct{ st *statestore.Store }

func (t treeKV) get(k string) ([]byte, error) {
	v, err := t.st.Get([]byte(k))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w: %w", k, ErrInternal, err)
	}
	if v == nil {
		return nil, nil
	}
	return decodeValue(v), nil
}

func (t treeKV) set(k string, v []byte) error {
	ev, err := encodeValue(k, v)
	if err != nil {
		return err
	}
	if err := t.st.Set([]byte(k), ev); err != nil {
		return fmt.Errorf("writing %s: %w: %w", k, ErrInternal, err)
	}
	return nil
}

func (t treeKV) del(k string) error {
	if err := t.st.Delete([]byte(k)); err != nil {
		return fmt.Errorf("deleting %s: %w: %w", k, ErrInternal, err)
	}
	return nil
}

func (t treeKV) scan(prefix string, fn func(key string, val []byte) error) error {
	return scanWith(t.st.Iterate, prefix, fn)
}

// snapKV is a committed version of the state, read-only.
type snapKV struct{ snap *statestore.Snapshot }

func (s snapKV) get(k string) ([]byte, error) {
	v, err := s.snap.Get([]byte(k))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w: %w", k, ErrInternal, err)
	}
	if v == nil {
		return nil, nil
	}
	return decodeValue(v), nil
}

func (s snapKV) set(k string, _ []byte) error {
	return fmt.Errorf("writing %s to committed state: %w", k, ErrInternal)
}

func (s snapKV) del(k string) error {
	return fmt.Errorf("deleting %s from committed state: %w", k, ErrInternal)
}

func (s snapKV) scan(prefix string, fn func(key string, val []byte) error) error {
	return scanWith(s.snap.Iterate, prefix, fn)
}

// scanWith runs a store iteration for kv.scan: fn's own error is returned
// as it is, the store's wrapped in ErrInternal.
func scanWith(iterate func([]byte, func(k, v []byte) error) error, prefix string, fn func(string, []byte) error) error {
	var fnErr error
	err := iterate([]byte(prefix), func(k, v []byte) error {
		fnErr = fn(string(k), decodeValue(v))
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("reading %s*: %w: %w", prefix, ErrInternal, err)
	}
	return err
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
