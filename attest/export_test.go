package attest

import (
	"bytes"
	"fmt"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
)

// StateKeys counts the keys of the last committed state, by the first
// component after "s/" (for the retention test).
func (a *App) StateKeys() (map[string]int, error) {
	out := map[string]int{}
	err := a.view(func(s kv) error {
		return s.scan(prefState, func(key string, _ []byte) error {
			kind, _, _ := strings.Cut(strings.TrimPrefix(key, prefState), "/")
			out[kind]++
			return nil
		})
	})
	return out, err
}

// FinalizeBlockFailingAt runs FinalizeBlock with a store whose write number
// n of the block (counting from 1) fails as a storage failure does.
func FinalizeBlockFailingAt(a *App, req *abci.FinalizeBlockRequest, n int) (*abci.FinalizeBlockResponse, error) {
	return a.finalizeBlock(req, func(s kv) kv { return &failingKV{kv: s, failAt: n} })
}

type failingKV struct {
	kv
	writes, failAt int
}

func (f *failingKV) write() error {
	if f.writes++; f.writes == f.failAt {
		return fmt.Errorf("write %d: injected storage failure: %w", f.writes, ErrInternal)
	}
	return nil
}

func (f *failingKV) set(k string, v []byte) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.kv.set(k, v)
}

func (f *failingKV) del(k string) error {
	if err := f.write(); err != nil {
		return err
	}
	return f.kv.del(k)
}

// BlockWrites finalizes req with a store that counts the block's writes,
// then rolls the block back, and returns the count.
func BlockWrites(a *App, req *abci.FinalizeBlockRequest) (int, error) {
	var f *failingKV
	if _, err := a.finalizeBlock(req, func(s kv) kv { f = &failingKV{kv: s}; return f }); err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return f.writes, a.rollback()
}

// RawState returns every key of the last committed state with the bytes
// the state tree holds for it (an empty value as the one byte 0x00).
func (a *App) RawState() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := a.st.Latest().Iterate([]byte(prefState), func(k, v []byte) error {
		out[string(k)] = bytes.Clone(v)
		return nil
	})
	return out, err
}

// Get reads key k of the last committed state through the application's
// own kv (as the chain's logic sees it).
func (a *App) Get(k string) (v []byte, err error) {
	err = a.view(func(s kv) error { v, err = s.get(k); return err })
	return v, err
}
